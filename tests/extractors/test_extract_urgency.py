"""Urgency tiers, due times, vulnerable groups and routing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from extract_helpers import RECEIVED, ticket_of

URGENCY = [
    ("我们小区停水了", "urgent"),
    ("我们这片停电三个小时了", "urgent"),
    ("暖气一点都不热，没有暖气", "urgent"),
    ("楼上漏水，天花板一直滴水", "normal"),
    ("楼下装修噪音太大", "normal"),
    ("楼道里有很大的煤气味", "emergency"),
    ("燃气泄漏了，味道特别大", "emergency"),
    ("对面楼着火了，冒黑烟", "emergency"),
    ("對面樓著火了", "emergency"),
    ("不是着火，就是邻居烧烤油烟大", "normal"),
    ("有人打架，有人受伤流血了", "emergency"),
    ("没有人受伤，就是两车刮了一下堵在路口", "normal"),
    ("暴雨把家里淹了，水都漫进屋里了", "emergency"),
    ("马路中间有个大坑，很危险", "urgent"),
    ("井盖丢了", "urgent"),
    ("大风把树刮倒了横在路上", "urgent"),
    ("家里有刚出生的孩子，楼下饭店油烟太大", "normal"),
    ("我想咨询一下孩子入学的事", "normal"),
    ("There's smoke coming out of the apartment next door, I think it's on fire", "emergency"),
    ("I smell gas in the hallway", "emergency"),
    ("Someone is hurt and bleeding on the sidewalk", "emergency"),
    ("Our heating has been off for three days", "urgent"),
    ("There is a pothole on Elm Street", "urgent"),
    ("My neighbour's dog barks all night", "normal"),
    ("It's not urgent, but the street light outside my house is out", "normal"),
    ("no fire, just a lot of dust from the construction site", "normal"),
    ("我给你们打电话是想感谢一下你们上次帮我们解决了停水的问题", "normal"),   # praise for a solved outage
    ("热水器漏电，手一碰就麻", "urgent"),
    ("我们小区门口的人行道砖都翘起来了，老人走路容易绊倒", "urgent"),
    # a cue split by the caller's own words (gapped cues)
    ("我家暖气从上周开始就一直不热", "urgent"),
    ("我家暖器这两天都不热了", "urgent"),
    ("小区的暖气昨天晚上突然停了", "urgent"),
    ("暖气费太贵了，不热的话能退吗", "normal"),
    ("The heating in our building is still not working", "urgent"),
    ("Half the street lost power, the power just went out an hour ago", "urgent"),
    # a risk of injury is not an injury
    ("There is a deep hole in the road by the bus stop and somebody could get hurt", "urgent"),
    ("马路中间有个大坑，骑车的人很容易受伤", "urgent"),
]


@pytest.mark.parametrize(("sentence", "category", "department"), [
    ("There is a deep hole in the road by the bus stop and somebody could get hurt", "traffic.road",
     "北京市交通委员会"),
    ("My neighbour fell down the stairs, he is hurt and bleeding", "public_safety.emergency", "120"),
])
def test_a_risk_of_injury_keeps_the_hazards_category(sentence: str, category: str, department: str) -> None:
    draft = ticket_of(sentence)
    assert (draft.category, draft.department) == (category, department)


@pytest.mark.parametrize(("sentence", "urgency"), URGENCY)
def test_urgency(sentence: str, urgency: str) -> None:
    assert ticket_of(sentence).urgency == urgency


@pytest.mark.parametrize(("sentence", "hours"), [("我们小区停水了", 24), ("楼道里有煤气味", 2), ("楼下太吵了", 168)])
def test_due_at_is_received_plus_limit(sentence: str, hours: int) -> None:
    assert ticket_of(sentence).due_at == RECEIVED + timedelta(hours=hours)


VULNERABLE = [
    ("家里有刚出生的孩子，停水了做饭洗澡都没法弄", ["child"]),
    ("家里有个七十多岁的老人，腿脚不好", ["disabled", "elderly"]),
    ("我奶奶八十多了住在六楼，下不了楼", ["elderly"]),
    ("我老婆怀孕了，楼上装修太吵", ["pregnant"]),
    ("我是残疾人，坐轮椅，小区门口台阶太高", ["disabled"]),
    ("家里没有老人也没有孩子，就是停电不方便", []),
    ("我们楼好多独居老人", ["elderly"]),
    ("孩子才三岁，晚上吵得睡不着", ["child"]),
    ("盲人出门很不方便", ["disabled"]),
    ("家里老人小孩都有", ["child", "elderly"]),
    ("我儿子今年要上小学，想问一下入学的事", ["child"]),
    ("我儿子三十多了，在公司被拖欠工资", []),
    ("楼下饭店油烟太大了", []),
    ("小区广场舞的大妈们音响开得太大了", []),
    ("家裡有個剛出生的嬰兒", ["child"]),
    ("My 80-year-old mother lives alone", ["elderly"]),
    ("My mother is eighty one and it's freezing", ["elderly"]),
    ("We have a newborn baby at home", ["child"]),
    ("My wife is pregnant and the noise is unbearable", ["pregnant"]),
    ("My wife is expecting and we have had no heat for days", ["pregnant"]),
    ("I use a wheelchair and the ramp is broken", ["disabled"]),
    ("I want to enroll my daughter in the local school", ["child"]),
    ("There are no kids in our building", []),
    ("The pothole is on Elm Street", []),
]


@pytest.mark.parametrize(("sentence", "groups"), VULNERABLE)
def test_vulnerable(sentence: str, groups: list[str]) -> None:
    assert sorted(ticket_of(sentence).vulnerable) == groups


DEPARTMENT = [
    ("我是朝阳区的，楼上漏水", "朝阳区住房和城乡建设委员会"),
    ("海淀区这边楼下饭店油烟太大", "海淀区生态环境局"),
    ("楼下饭店油烟太大", "北京市生态环境局"),
    ("东城区我们小区停水了", "北京市自来水集团"),
    ("丰台区我们这停电了", "国网北京市电力公司"),
    ("我家煤气费怎么交", "北京燃气集团"),
    ("楼道里有很大的煤气味", "119"),
    ("对面楼着火了", "119"),
    ("有人晕倒了，昏迷不醒，快叫救护车", "120"),
    ("楼下有人打架，还拿着刀", "110"),
    ("电梯里困了人，已经半个多小时了", "119"),
    ("My elderly father fell in the bathroom and can't get up", "120"),
    ("Someone broke into my car last night", "110"),
    ("通州区马路上有个大坑", "通州区交通委员会"),
    ("昌平区路灯坏了", "昌平区城市管理委员会"),
    ("西城区这边的养老驿站助餐怎么申请", "西城区民政局"),
    ("我想表扬一下", "北京市人民政府"),
    ("There's a pothole on Elm Street", "北京市交通委员会"),
]


@pytest.mark.parametrize(("sentence", "department"), DEPARTMENT)
def test_department(sentence: str, department: str) -> None:
    assert ticket_of(sentence).department == department


AMOUNTS = [
    ("交了两万定金，房款一共一百三十三万元", [20000, 1330000]),
    ("健身房办卡花了八千块，现在不给退", [8000]),
    ("老板欠了我们三个月工资，每个月五千元", [5000]),
    ("楼下太吵了", []),
    ("I paid $1,200 for a gym membership and they won't refund me", [1200]),
    ("they owe me twelve hundred dollars in wages", [1200]),
]


@pytest.mark.parametrize(("sentence", "amounts"), AMOUNTS)
def test_amounts(sentence: str, amounts: list[float]) -> None:
    assert list(ticket_of(sentence).amounts) == amounts
