"""Category and request type from the caller's words: clean and ASR-noisy sentences of our own."""

from __future__ import annotations

import pytest
from extract_helpers import ticket_of

CATEGORY_CASES = [
    # (caller sentence, category, request_type)
    ("我们小区从前天开始停水了，到现在都没来水", "utilities.water", "help"),
    ("我们小区从前天开始停水了到现在都没来水", "utilities.water", "help"),          # no punctuation
    ("我們小區從前天開始停水了，到現在都沒來水", "utilities.water", "help"),          # Traditional
    ("家里自来水发黄，水质有问题，不敢喝", "utilities.water", "help"),
    ("这两天水压特别低，楼上根本没水用", "utilities.water", "help"),
    ("我们这片儿突然停电了，冰箱里东西都要坏了", "utilities.power", "help"),
    ("我们这片儿突然停電了", "utilities.power", "help"),
    ("整栋楼都没电了已经三个小时了", "utilities.power", "help"),
    ("家里暖气不热，屋里才十几度", "utilities.heating", "help"),
    ("暖氣一點都不熱", "utilities.heating", "help"),
    ("供暖都一个礼拜了我家暖气片还是凉的", "utilities.heating", "help"),
    ("我们楼道里有很大的煤气味，怕是漏气了", "utilities.gas", "help"),
    ("燃气公司说好今天来通气，到现在也没人来", "utilities.gas", "help"),
    ("楼上漏水，把我家天花板都泡了", "housing.repair", "help"),
    ("卫生间墙面一直渗水", "housing.repair", "help"),
    ("楼上露水把我家天花板泡了", "housing.repair", "help"),                          # homophone
    ("我们是老小区，想加装电梯，但是一楼住户反对", "housing.elevator_retrofit", "help"),
    ("我们楼想家装电梯一楼不同意", "housing.elevator_retrofit", "help"),               # homophone
    ("物业公司收了物业费什么都不管，垃圾都没人收", "housing.property_management", "complaint"),
    ("小区电梯坏了一个星期了物业也不修", "housing.property_management", "help"),
    ("开发商一直不给办房产证", "housing.real_estate_contract", "complaint"),
    ("签了购房合同交了定金，现在开发商说不卖了", "housing.real_estate_contract", "complaint"),
    ("小区里天天有人乱停车，把消防通道都堵了", "traffic.parking", "complaint"),
    ("我想问一下居住证明怎么办停车证", "traffic.parking", "consultation"),
    ("我们门口马路上有个大坑，晚上骑车特别危险", "traffic.road", "report"),
    ("路口的井盖丢了，很危险", "traffic.road", "report"),
    ("公交站的站牌被撞坏了", "traffic.road", "report"),
    ("我们这条街的路灯坏了好几盏，晚上黑漆漆的", "city.street_light", "report"),
    ("路灯一到晚上就不亮", "city.street_light", "report"),
    ("我们楼的门牌号掉了，快递都找不到", "city.house_numbering", "help"),
    ("小区门口的垃圾好几天没人清运了，臭得不行", "city.sanitation", "complaint"),
    ("楼下装修噪音太大了，早上七点就开始砸墙", "environment.noise", "complaint"),
    ("广场舞的音响声音特别大，晚上十点还在跳", "environment.noise", "complaint"),
    ("楼下的饭店油烟特别大，窗户都不敢开", "environment.pollution", "complaint"),
    ("附近工厂晚上偷排污水，河里都是臭味", "environment.pollution", "report"),
    ("健身房办了预付卡，现在老板跑路了不给退款", "market.consumer_dispute", "complaint"),
    ("那家饭店后厨特别脏，到处都是蟑螂", "market.food_safety", "report"),
    ("超市卖过期食品", "market.food_safety", "report"),
    ("公司拖欠工资三个月了，老板一直不给", "labour.wage_arrears", "help"),
    ("工地包工头欠薪，我们十几个工人都没拿到钱", "labour.wage_arrears", "help"),
    ("面试的时候说不要女的，这是就业歧视", "labour.employment_discrimination", "complaint"),
    ("我想咨询一下社区养老驿站的助餐怎么申请", "social.elderly_care", "consultation"),
    ("医院挂号太难了，医生态度也很差", "health.medical", "complaint"),
    ("我想咨询一下孩子明年上小学入学需要什么材料", "education.school", "consultation"),
    ("对面楼着火了，冒了好多黑烟", "public_safety.fire", "help"),
    ("對面樓著火了", "public_safety.fire", "help"),
    ("楼下有人打架，有人受伤了，流了很多血", "public_safety.emergency", "help"),
    ("昨天暴雨小区门口积水特别深", "weather.disaster", "report"),
    ("大风把路边的大树刮倒了，横在马路上", "weather.disaster", "report"),
    ("我要表扬一下我们社区的王书记，特别负责", "other", "praise"),
    ("我建议在我们小区门口增设一个公交站", "traffic.road", "suggestion"),
    ("我要举报一家无证经营的小饭馆，后厨很脏", "market.food_safety", "report"),
    # English
    ("There's a huge pothole on Maple Avenue, someone is going to get hurt", "traffic.road", "report"),
    ("Our water has been off since yesterday morning", "utilities.water", "help"),
    ("The power went out in our whole building", "utilities.power", "help"),
    ("Our heating has been off for two days", "utilities.heating", "help"),
    ("My upstairs neighbour plays loud music every night", "environment.noise", "complaint"),
    ("The restaurant downstairs blows fumes into our window", "environment.pollution", "complaint"),
    ("How do I apply for a residential parking permit?", "traffic.parking", "consultation"),
    ("The street lights on my road have been out for a week", "city.street_light", "report"),
    ("The gym took my membership money and refuses to refund me", "market.consumer_dispute", "complaint"),
    ("My employer hasn't paid my wages for two months", "labour.wage_arrears", "help"),
    ("I'd like to know how to enroll my son in the local school", "education.school", "consultation"),
    ("I can smell gas in the stairwell", "utilities.gas", "help"),
    ("A tree fell across the road after the storm", "weather.disaster", "report"),
    ("I want to praise the nurse at the clinic, she went above and beyond", "health.medical", "praise"),
    ("I'd like to suggest adding a crosswalk near the school", "traffic.road", "suggestion"),
    ("The garbage hasn't been collected for a week", "city.sanitation", "complaint"),
    ("我们楼的下水道堵了，污水都返到家里了", "housing.repair", "help"),
    ("我家孩子在学校被同学欺负了，老师也不管", "education.school", "complaint"),
    ("隔壁邻居在楼道里养鸡，味道特别大", "environment.pollution", "complaint"),
    ("热水器漏电，手一碰就麻", "utilities.power", "help"),
    ("地铁站口有很多黑车在拉客", "traffic.road", "report"),
    ("我们这边的公园晚上太黑了，建议多装点灯", "city.street_light", "suggestion"),
    ("我买的房子开发商延期交房一年多了", "housing.real_estate_contract", "complaint"),
    ("我是外卖员，公司扣了我三个月的工资不发", "labour.wage_arrears", "help"),
    ("电梯里困了人，已经半个多小时了", "public_safety.emergency", "help"),
    ("I'd like to report a broken water main flooding the street outside 88 Harbor Road", "utilities.water",
     "report"),
    ("My elderly father fell in the bathroom and can't get up", "public_safety.emergency", "help"),
    ("Can you tell me when the recycling is collected in my area", "city.sanitation", "consultation"),
    ("Our apartment has had no hot water for a week and the landlord ignores us", "utilities.water", "help"),
    ("I was charged twice for my parking permit and I want a refund", "traffic.parking", "complaint"),
    ("Someone broke into my car last night", "public_safety.emergency", "help"),
]


@pytest.mark.parametrize(("sentence", "category", "request_type"), CATEGORY_CASES)
def test_category_and_request_type(sentence: str, category: str, request_type: str) -> None:
    draft = ticket_of(sentence)
    assert draft.category == category
    assert draft.request_type == request_type
    if category != "other":
        assert draft.evidence["category"], "a category found from cues has evidence"


AMBIGUOUS = [
    # (caller sentence, category, urgency): smoke from a grill is pollution, smoke out of a window is fire
    ("There's smoke coming from the barbecue place downstairs every evening and it smells terrible",
     "environment.pollution", "normal"),
    ("There is smoke coming out of my neighbour's window", "public_safety.fire", "emergency"),
    ("饭店烟囱天天冒烟，熏得人受不了", "environment.pollution", "normal"),
    ("楼下饭店着火了", "public_safety.fire", "emergency"),
    ("cigarette smoke in the stairwell every night", "environment.pollution", "normal"),
    ("装修公司收了钱不干活", "market.consumer_dispute", "normal"),
    ("楼上装修电钻声太大", "environment.noise", "normal"),
    ("I was fired from my job and they still owe me wages", "labour.wage_arrears", "normal"),
    ("被坑了，健身房办卡不给退钱", "market.consumer_dispute", "normal"),
]


@pytest.mark.parametrize(("sentence", "category", "urgency"), AMBIGUOUS)
def test_ambiguous_words_in_context(sentence: str, category: str, urgency: str) -> None:
    draft = ticket_of(sentence)
    assert (draft.category, draft.urgency) == (category, urgency)


NEGATED = [
    ("不是着火，是楼下烧烤的烟飘上来了，油烟很大", "environment.pollution"),
    ("没有着火，就是楼道里堆满了垃圾", "city.sanitation"),
    ("It's not a fire, just loud music from next door all night", "environment.noise"),
]


@pytest.mark.parametrize(("sentence", "category"), NEGATED)
def test_negated_cues_do_not_count(sentence: str, category: str) -> None:
    assert ticket_of(sentence).category == category


def test_category_comes_from_the_caller_not_the_agent() -> None:
    draft = ticket_of(("agent", "您好，是停水还是停电？"), ("caller", "楼下装修太吵了，噪音特别大"))
    assert draft.category == "environment.noise"


def test_no_cue_is_other_and_flagged() -> None:
    draft = ticket_of("你好，我就是想说一下那个事儿")
    assert draft.category == "other"
    assert "category" in draft.needs_review


def test_close_categories_are_flagged() -> None:
    draft = ticket_of("楼下饭店的噪音和油烟都很大")
    assert draft.category in ("environment.noise", "environment.pollution")
    assert "category" in draft.needs_review
