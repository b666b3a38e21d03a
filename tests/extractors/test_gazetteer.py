"""Gazetteer: districts, streets, communities and addresses from callers' words (clean and as recognised)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.errors import ConfigError
from pipeline.extractors.gazetteer import DATA_PATH, DISTRICTS, Gazetteer, Location

N = None


@pytest.fixture(scope="module")
def gaz() -> Gazetteer:
    return Gazetteer.load()


# text → district, street, community, address
CASES_ZH: list[tuple[str, str | None, str | None, str | None, str | None]] = [
    # --- clean, full names ---
    ("我住在朝阳区和平街街道煤炭科技苑社区", "朝阳区", "和平街街道", "煤炭科技苑社区", N),
    ("我是海淀区中关村街道的居民", "海淀区", "中关村街道", N, N),
    ("东城区东花市街道这边", "东城区", "东花市街道", N, N),
    ("西城区什刹海街道", "西城区", "什刹海街道", N, N),
    ("石景山区八角街道的一个小区", "石景山区", "八角街道", N, N),
    ("顺义区后沙峪镇", "顺义区", "后沙峪镇", N, N),
    ("房山区良乡镇", "房山区", "良乡镇", N, N),
    ("门头沟区潭柘寺镇那边的路", "门头沟区", "潭柘寺镇", N, N),
    ("怀柔区雁栖镇", "怀柔区", "雁栖镇", N, N),
    ("平谷区金海湖镇", "平谷区", "金海湖镇", N, N),
    ("密云区古北口镇", "密云区", "古北口镇", N, N),
    ("延庆区八达岭镇", "延庆区", "八达岭镇", N, N),
    ("昌平区天通苑北街道", "昌平区", "天通苑北街道", N, N),
    ("丰台区右安门街道", "丰台区", "右安门街道", N, N),
    ("通州区永顺镇", "通州区", "永顺镇", N, N),
    ("大兴区西红门镇", "大兴区", "西红门镇", N, N),
    ("朝阳区十八里店地区", "朝阳区", "十八里店地区", N, N),
    ("北京市东城区景山街道", "东城区", "景山街道", N, N),
    ("我家在丰台区长辛店镇", "丰台区", "长辛店镇", N, N),
    ("房山区大安山乡", "房山区", "大安山乡", N, N),
    ("延庆区珍珠泉乡", "延庆区", "珍珠泉乡", N, N),
    ("顺义区杨镇", "顺义区", "杨镇", N, N),
    ("通州区于家务回族乡", "通州区", "于家务回族乡", N, N),
    ("密云区檀营满族蒙古族乡", "密云区", "檀营满族蒙古族乡", N, N),
    ("房山区城关街道", "房山区", "城关街道", N, N),
    ("海淀区温泉镇", "海淀区", "温泉镇", N, N),
    # --- bare names and aliases: the district is inferred ---
    ("我家在回龙观", "昌平区", "回龙观街道", N, N),
    ("望京这边", "朝阳区", "望京街道", N, N),
    ("三里屯那边的酒吧太吵了", "朝阳区", "三里屯街道", N, N),
    ("亦庄的工厂", "大兴区", "亦庄镇", N, N),
    ("我住良乡", "房山区", "良乡镇", N, N),
    ("崔各庄乡", "朝阳区", "崔各庄地区", N, N),
    ("南磨房乡", "朝阳区", "南磨房地区", N, N),
    ("十八里店这块", "朝阳区", "十八里店地区", N, N),
    ("崇外这边", "东城区", "崇文门外街道", N, N),
    ("广外那边", "西城区", "广安门外街道", N, N),
    ("于家务那边", "通州区", "于家务回族乡", N, N),
    ("长哨营乡", "怀柔区", "长哨营满族乡", N, N),
    ("朝阳门附近", "东城区", "朝阳门街道", N, N),
    ("德胜门外", "西城区", "德胜街道", N, N),
    ("酒仙桥那边", "朝阳区", "酒仙桥街道", N, N),
    ("潘家园旧货市场", "朝阳区", "潘家园街道", N, N),
    ("苹果园地铁站", "石景山区", "苹果园街道", N, N),
    ("宋庄的画家村", "通州区", "宋庄镇", "画家村", N),
    ("天通苑那边", "昌平区", N, N, N),
    ("卢沟桥乡", "丰台区", "卢沟桥街道", N, N),
    ("方庄地区", "丰台区", "方庄街道", N, N),
    ("回龙观地区", "昌平区", N, N, N),
    # --- Arabic numerals for the numbers in names ---
    ("18里店", "朝阳区", "十八里店地区", N, N),
    ("3里屯那边", "朝阳区", "三里屯街道", N, N),
    ("住在13陵镇", "昌平区", "十三陵镇", N, N),
    ("9棵树这边", "通州区", "九棵树街道", N, N),
    ("西3旗", "海淀区", "西三旗街道", N, N),
    # --- district alone ---
    ("我在海淀上班", "海淀区", N, N, N),
    ("东城这边", "东城区", N, N, N),
    ("在朝阳住", "朝阳区", N, N, N),
    ("北京朝阳", "朝阳区", N, N, N),
    ("朝阳这边", "朝阳区", N, N, N),
    ("朝阳和平街", "朝阳区", "和平街街道", N, N),
    ("我们门头沟", "门头沟区", N, N, N),
    ("住在石景山", "石景山区", N, N, N),
    ("大兴机场附近", "大兴区", N, N, N),
    ("密云水库", "密云区", N, N, N),
    ("延庆那边", "延庆区", N, N, N),
    ("平谷的桃", "平谷区", N, N, N),
    ("怀柔", "怀柔区", N, N, N),
    ("房山区", "房山区", N, N, N),
    ("我要到通州去", "通州区", N, N, N),
    # --- sound-alike recognition errors ---
    ("海电区", "海淀区", N, N, N),
    ("丰太区", "丰台区", N, N, N),
    ("鋒排區那边", "丰台区", N, N, N),
    ("和平节那边", "朝阳区", "和平街街道", N, N),
    ("我在中官村上班", "海淀区", "中关村街道", N, N),
    ("大兴区黄村真", "大兴区", "黄村镇", N, N),
    ("通州永顺真", "通州区", "永顺镇", N, N),
    ("东花10街道", "东城区", "东花市街道", N, N),
    ("回龙馆那边", "昌平区", "回龙观街道", N, N),
    ("潘家圆", "朝阳区", "潘家园街道", N, N),
    ("酒仙侨", "朝阳区", "酒仙桥街道", N, N),
    ("天通院北街道", "昌平区", "天通苑北街道", N, N),
    ("海淀区学院路接道", "海淀区", "学院路街道", N, N),
    ("门头勾区", "门头沟区", N, N, N),
    ("石景珊区", "石景山区", N, N, N),
    ("大型区", "大兴区", N, N, N),
    ("昌平区回龙观接到通知", "昌平区", "回龙观街道", N, N),
    ("朝阳区望京街到", "朝阳区", "望京街道", N, N),
    ("海淀区西北望镇", "海淀区", "西北旺镇", N, N),
    ("房山区琉璃合镇", "房山区", "琉璃河镇", N, N),
    ("海淀区北太平张街道", "海淀区", "北太平庄街道", N, N),
    ("朝阳区首都机常街道", "朝阳区", "首都机场街道", N, N),
    ("东华们街道那边", "东城区", "东华门街道", N, N),
    ("我们街道说了", N, N, N, N),
    ("八里庄街到", N, "八里庄街道", N, N),
    # --- inside a district the caller named, one syllable and the suffix may both be misheard ---
    ("通州区宋当阵那边", "通州区", "宋庄镇", N, N),
    ("我是密云区的古北扣阵", "密云区", "古北口镇", N, N),
    ("通州区我想去看看", "通州区", N, N, N),
    ("门头沟区大峪街段那边", "门头沟区", "大峪街道", N, N),
    ("朝阳区酒仙桥街等一下", "朝阳区", "酒仙桥街道", N, N),
    ("丰台区东高低街等着", "丰台区", "东高地街道", N, N),
    ("丰台区我们接到通知", "丰台区", N, N, N),
    ("朝阳区他们说真的不管", "朝阳区", N, N, N),
    # --- Traditional characters, spaces, no punctuation ---
    ("北京市豐臺區右安門街道", "丰台区", "右安门街道", N, N),
    ("海澱區學院路街道", "海淀区", "学院路街道", N, N),
    ("門頭溝區", "门头沟区", N, N, N),
    ("通州區宋莊鎮", "通州区", "宋庄镇", N, N),
    ("什剎海那邊", "西城区", "什刹海街道", N, N),
    ("海 淀 区 中 关 村", "海淀区", "中关村街道", N, N),
    ("朝阳区 和平街 煤炭科技苑社区", "朝阳区", "和平街街道", "煤炭科技苑社区", N),
    ("我住朝阳区和平街煤炭科技苑社区楼下的饭馆天天吵", "朝阳区", "和平街街道", "煤炭科技苑社区", N),
    # --- communities ---
    ("我住在煤炭科技苑社区", N, N, "煤炭科技苑社区", N),
    ("大兴区西红门村", "大兴区", "西红门镇", "西红门村", N),
    ("西红门村", "大兴区", "西红门镇", "西红门村", N),
    ("大兴区魏善庄镇半壁店村", "大兴区", "魏善庄镇", "半壁店村", N),
    ("丰台区卢沟桥乡大井村", "丰台区", "卢沟桥街道", "大井村", N),
    ("我在南湖东园社区", N, N, "南湖东园社区", N),
    ("东城区交道口街道菊儿社区", "东城区", "交道口街道", "菊儿社区", N),
    ("我们是和平里社区的", "东城区", "和平里街道", "和平里社区", N),
    ("家住翠微路社区", N, N, "翠微路社区", N),
    ("我们是昌平区北七家镇东三旗村的", "昌平区", "北七家镇", "东三旗村", N),
    ("海淀区上地街道上地西里社区", "海淀区", "上地街道", "上地西里社区", N),
    ("北京市煤炭科技苑社区", N, N, "煤炭科技苑社区", N),
    ("一个叫幸福社区的地方", N, N, "幸福社区", N),
    ("我们小区位于阳光社区", N, N, "阳光社区", N),
    ("跑到隔壁村去了", N, N, N, N),
    ("下乡进村", N, N, N, N),
    # --- addresses ---
    ("金隅小区3号楼2单元", N, N, N, "金隅小区3号楼2单元"),
    ("我家住在西街十八号", N, N, N, "西街十八号"),
    ("通州区永顺镇西街十八号", "通州区", "永顺镇", N, "西街十八号"),
    ("通州区永顺镇西大街", "通州区", "永顺镇", N, "西大街"),
    ("北京市朝阳区和平街街道煤炭科技苑社区3号楼2单元301", "朝阳区", "和平街街道", "煤炭科技苑社区",
     "3号楼2单元301"),
    ("丰台区右安门街道翠林小区五号楼", "丰台区", "右安门街道", N, "翠林小区五号楼"),
    ("我家在望京西路8号院", "朝阳区", "望京街道", N, "望京西路8号院"),
    ("海淀区中关村大街27号", "海淀区", "中关村街道", N, "中关村大街27号"),
    ("幸福路3号院金隅小区2号楼", N, N, N, "幸福路3号院金隅小区2号楼"),
    ("住在回龙观东大街", "昌平区", "回龙观街道", N, "回龙观东大街"),
    ("我们是阳光花园小区的", N, N, N, "阳光花园小区"),
    ("大兴区黄村镇兴华大街三十二号", "大兴区", "黄村镇", N, "兴华大街三十二号"),
    ("我住在３号楼那个单元", N, N, N, N),
    ("我住在金隅小区３号楼", N, N, N, "金隅小区3号楼"),
    ("位于金隅小区3号楼", N, N, N, "金隅小区3号楼"),
    ("坐3路公交车", N, N, N, N),
    ("家里3口人", N, N, N, N),
    ("这里1号楼", N, N, N, N),
    ("昨晚大风小区门口的树倒了", N, N, N, N),
    ("大兴区黄村镇那条主路上有坑", "大兴区", "黄村镇", N, N),
    ("昌平区回龙观那条小路", "昌平区", "回龙观街道", N, N),
    # --- no place: everything stays empty ---
    ("你好，我想咨询一下社保的问题", N, N, N, N),
    ("我们这个小区的电梯坏了", N, N, N, N),
    ("我们村里停水了", N, N, N, N),
    ("农村合作医疗怎么报销", N, N, N, N),
    ("城中村的垃圾没人管", N, N, N, N),
    ("我想去海边去玩", N, N, N, N),
    ("这个地区的房价太高", N, N, N, N),
    ("新城区建设", N, N, N, N),
    ("上帝保佑", N, N, N, N),
    ("今天天气真好真的", N, N, N, N),
    ("他们说真的没办法", N, N, N, N),
    ("光明正大地做事", N, N, N, N),
    ("我们胜利了", N, N, N, N),
    ("平房漏水了", N, N, N, N),
    ("八角茴香", N, N, N, N),
    ("天桥上的灯坏了", N, N, N, N),
    ("路灯坏了好几天", N, N, N, N),
    ("马路上有个大坑", N, N, N, N),
    ("大型区域停电", N, N, N, N),
    ("我在外地打工", N, N, N, N),
    ("一个社区医院", N, N, N, N),
    ("村委会不管", N, N, N, N),
    ("我们社区不管", N, N, N, N),
    ("这个村太穷了", N, N, N, N),
    ("美丽乡村建设", N, N, N, N),
    ("东风汽车的售后", N, N, N, N),
    ("我是河北人", N, N, N, N),
    ("张镇长来过了", N, N, N, N),
    ("温泉水很热", N, N, N, N),
    ("我上地铁了", N, N, N, N),
    ("东四环附近堵车", N, N, N, N),
    ("小区前门有垃圾", N, N, N, N),
    ("每天早上看朝阳", N, N, N, N),
    ("迎着朝阳去跑步", N, N, N, N),
    ("朝阳曲和平街", "朝阳区", "和平街街道", N, N),
    ("我在朝阳去那边", "朝阳区", N, N, N),
    ("初升的朝阳很美", N, N, N, N),
    ("我想问一下怎么办", N, N, N, N),
    ("我打的是12345", N, N, N, N),
    ("这个片区老是停电", N, N, N, N),
    ("我们这个城镇", N, N, N, N),
    ("回家乡看看", N, N, N, N),
    ("亚太地区的发展", N, N, N, N),
    ("河北正在下大雨", N, N, N, N),
    ("大兴安岭的木材", N, N, N, N),
    ("不能大兴土木", N, N, N, N),
    ("要正本清源", N, N, N, N),
    ("商场的产品区", N, N, N, N),
    ("相应乡亲们都同意", N, N, N, N),
    ("周末去度假村", N, N, N, N),
    ("干部走村串户", N, N, N, N),
    ("古老的村落", N, N, N, N),
    ("他是梨园子弟", N, N, N, N),
    ("高岭土矿", N, N, N, N),
    ("我们古北口正在修路", "密云区", "古北口镇", N, N),
    ("", N, N, N, N),
]


@pytest.mark.parametrize(("text", "district", "street", "community", "address"), CASES_ZH)
def test_resolve_zh(gaz: Gazetteer, text: str, district: str | None, street: str | None,
                    community: str | None, address: str | None) -> None:
    loc = gaz.resolve(text)
    assert (loc.district, loc.street, loc.community, loc.address) == (district, street, community, address)
    for m in loc.matches:  # every value comes with its span in the text as given
        assert text[m.start:m.end] == m.surface, m
    if any((district, street, community, address)):
        assert loc.matches and 0 < loc.confidence <= 1
    else:
        assert loc.matches == () and loc.confidence == 0.0


CASES_EN: list[tuple[str, str | None, str | None, str | None]] = [
    ("I live at 42 Maple Avenue and the street light is out", N, N, "42 Maple Avenue"),
    ("My address is 1830 Oak Street, Apartment 5B.", N, N, "1830 Oak Street, Apartment 5B"),
    ("I live in Chaoyang District near Sanlitun", "朝阳区", "三里屯街道", N),
    ("Haidian District, near Zhongguancun", "海淀区", "中关村街道", N),
    ("We are in the Wangjing area, 12 Lotus Road", "朝阳区", "望京街道", "12 Lotus Road"),
    ("I waited 2 hours on the street", N, N, N),
    ("The chaoyang sunrise was beautiful", N, N, N),
    ("Hello, my water has been off since Monday", N, N, N),
    ("Tongzhou District, 7 Canal Street", "通州区", N, "7 Canal Street"),
    ("I live in Huilongguan", "昌平区", "回龙观街道", N),
]


@pytest.mark.parametrize(("text", "district", "street", "address"), CASES_EN)
def test_resolve_en(gaz: Gazetteer, text: str, district: str | None, street: str | None,
                    address: str | None) -> None:
    loc = gaz.resolve(text, language="en")
    assert (loc.district, loc.street, loc.address) == (district, street, address)
    for m in loc.matches:
        assert text[m.start:m.end] == m.surface


def test_english_address_needs_language_en(gaz: Gazetteer) -> None:
    assert gaz.resolve("I live at 42 Maple Avenue", language="zh").address is None


# --- inference and conflicts ---------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "district", "street", "inferred"), [
    ("我家在回龙观", "昌平区", "回龙观街道", True),
    ("昌平区回龙观", "昌平区", "回龙观街道", False),
    ("和平街街道", "朝阳区", "和平街街道", True),
    ("海淀区八里庄", "海淀区", "八里庄街道", False),
    ("朝阳区八里庄街道", "朝阳区", "八里庄街道", False),
    ("东花10街道", "东城区", "东花市街道", True),
])
def test_district_inferred_from_street(gaz: Gazetteer, text: str, district: str, street: str,
                                       inferred: bool) -> None:
    loc = gaz.resolve(text)
    got = (loc.district, loc.street, loc.district_inferred, loc.conflict)
    assert got == (district, street, inferred, None)


def test_street_in_two_districts_without_district_said(gaz: Gazetteer) -> None:
    loc = gaz.resolve("我住八里庄")
    assert loc.street == "八里庄街道"
    assert loc.district is None and not loc.district_inferred
    assert {m.district for m in gaz.find("我住八里庄")} == {"朝阳区", "海淀区"}
    assert loc.confidence < 0.9


@pytest.mark.parametrize(("text", "district", "street", "conflict"), [
    ("海淀区和平街街道", "海淀区", "和平街街道",
     "street 和平街街道 belongs to 朝阳区, caller said 海淀区"),
    ("我是丰台区的，住在回龙观", "丰台区", "回龙观街道",
     "street 回龙观街道 belongs to 昌平区, caller said 丰台区"),
    ("通州区望京", "通州区", "望京街道",
     "street 望京街道 belongs to 朝阳区, caller said 通州区"),
    ("西城区八里庄", "西城区", "八里庄街道",
     "street 八里庄街道 belongs to 朝阳区 / 海淀区, caller said 西城区"),
])
def test_conflicting_street_is_kept_and_flagged(gaz: Gazetteer, text: str, district: str, street: str,
                                                conflict: str) -> None:
    loc = gaz.resolve(text)
    assert (loc.district, loc.street, loc.conflict) == (district, street, conflict)
    assert not loc.district_inferred
    assert loc.confidence <= 0.6


def test_district_matching_the_street_wins_among_several_said(gaz: Gazetteer) -> None:
    loc = gaz.resolve("我在朝阳区上班，住在海淀区中关村")
    assert (loc.district, loc.street, loc.conflict) == ("海淀区", "中关村街道", None)


# --- find: matches, rules, scores ------------------------------------------------------------------------

def test_find_reports_rules_scores_and_spans(gaz: Gazetteer) -> None:
    text = "北京 海澱區，和平節，回龍觀，18里店"
    found = gaz.find(text)
    by_name = {m.name: m for m in found}
    assert by_name["海淀区"].rule == "gazetteer.exact" and by_name["海淀区"].score == 1.0
    assert by_name["海淀区"].surface == "海澱區"
    assert by_name["和平街街道"].rule == "gazetteer.pinyin" and 0.8 <= by_name["和平街街道"].score < 1.0
    assert by_name["回龙观街道"].rule == "gazetteer.alias"
    assert by_name["十八里店地区"].surface == "18里店"
    for m in found:
        assert text[m.start:m.end] == m.surface


def test_near_miss_needs_the_suffix_written(gaz: Gazetteer) -> None:
    assert gaz.resolve("锋排区").district == "丰台区"
    assert gaz.resolve("锋排").district is None
    assert gaz.find("锋排区")[0].score < gaz.find("丰太区")[0].score < 1.0


def test_location_is_frozen(gaz: Gazetteer) -> None:
    loc = gaz.resolve("朝阳区")
    assert isinstance(loc, Location)
    with pytest.raises(AttributeError):
        loc.district = "海淀区"  # type: ignore[misc]


# --- the data file -------------------------------------------------------------------------------------

def test_bundled_data(gaz: Gazetteer) -> None:
    assert gaz.version
    districts = {e.name for e in gaz.entries if e.kind == "district"}
    assert districts == set(DISTRICTS)
    streets = [e for e in gaz.entries if e.kind == "street"]
    assert 320 <= len(streets) <= 370
    assert {e.district for e in streets} == set(DISTRICTS)
    for name in ("和平街街道", "永顺镇", "回龙观街道", "中关村街道", "三里屯街道", "黄村镇", "林校路街道",
                 "清源街道", "兴丰街道", "东花市街道", "什刹海街道"):
        assert any(e.name == name for e in streets), name


def test_load_is_cached() -> None:
    assert Gazetteer.load() is Gazetteer.load(DATA_PATH)


MINIMAL = """
version: "t1"
districts:
{districts}
places:
  朝阳区:
    - 和平街街道
    - {{name: 望京街道, bare: true}}
"""


def _districts_yaml(skip: str | None = None, extra: str | None = None) -> str:
    names = [d for d in DISTRICTS if d != skip] + ([extra] if extra else [])
    return "\n".join(f"  {d}: {{short: {d[:-1]}, english: X}}" for d in names)


def test_small_valid_file(tmp_path: Path) -> None:
    path = tmp_path / "g.yaml"
    path.write_text(MINIMAL.format(districts=_districts_yaml()), encoding="utf-8")
    gaz = Gazetteer.load(path)
    assert gaz.version == "t1"
    loc = gaz.resolve("望京这边")
    assert (loc.district, loc.street, loc.district_inferred) == ("朝阳区", "望京街道", True)
    assert gaz.resolve("回龙观").street is None  # not in this file


@pytest.mark.parametrize(("body", "message"), [
    (MINIMAL.format(districts=_districts_yaml(extra="浦东新区")), "unknown district"),
    (MINIMAL.format(districts=_districts_yaml(skip="延庆区")), "districts missing: 延庆区"),
    (MINIMAL.format(districts=_districts_yaml()).replace("    - 和平街街道", "    - 和平街街道\n" * 2),
     "duplicate name 和平街街道"),
    (MINIMAL.format(districts=_districts_yaml()).replace('version: "t1"', ""), "missing field 'version'"),
    (MINIMAL.format(districts=_districts_yaml()).replace("{name: 望京街道, bare: true}", "{bare: true}"),
     "has no 'name'"),
    (MINIMAL.format(districts=_districts_yaml()).replace("和平街街道", "和平街"), "does not end with"),
    (MINIMAL.format(districts=_districts_yaml()).replace("bare: true", "bare: true, colour: red"),
     "unknown field(s) colour"),
    (MINIMAL.format(districts=_districts_yaml()).replace("  朝阳区:\n", "  上海区:\n"), "unknown district"),
    (MINIMAL.format(districts=_districts_yaml()).replace("english: X", "english: ''", 1),
     "missing field 'english'"),
    (MINIMAL.format(districts=_districts_yaml()).replace("bare: true", "bare: true, pinyin: wang jing"),
     "'pinyin' must give one syllable per character"),
    (MINIMAL.format(districts=_districts_yaml()).replace("bare: true", "bare: true, reject_followed_by: 长"),
     "'reject_followed_by' must be a list"),
    ("version: [unclosed", "not readable YAML"),
    ("- just\n- a list\n", "top level must be a mapping"),
])
def test_broken_file_is_a_config_error(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        Gazetteer.load(path)
    assert message in str(info.value)
    assert str(path) in str(info.value)


def test_entry_reading_and_vetoes_from_the_file(tmp_path: Path) -> None:
    body = MINIMAL.format(districts=_districts_yaml()).replace(
        "{name: 望京街道, bare: true}",
        "{name: 望京街道, bare: true, pinyin: wang qing jie dao, reject_preceded_by: [希]}",
    )
    path = tmp_path / "g.yaml"
    path.write_text(body, encoding="utf-8")
    gaz = Gazetteer.load(path)
    assert gaz.resolve("望青街道").street == "望京街道"  # heard as the file says it is read
    assert Gazetteer.load().resolve("望青街道").street is None
    assert gaz.resolve("希望京剧团").street is None
    assert gaz.resolve("望京那边").street == "望京街道"


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot be read"):
        Gazetteer.load(tmp_path / "nope.yaml")


def test_every_office_survives_one_misheard_character(gaz: Gazetteer) -> None:
    """Each office name with one stem character replaced by a common character that sounds the same
    (as a recogniser writes it) still resolves to that office, and never to another one."""
    from collections import Counter, defaultdict

    from pypinyin import lazy_pinyin
    from pypinyin.phrases_dict import phrases_dict

    common = Counter(c for phrase in phrases_dict for c in phrase)
    by_sound: dict[str, list[str]] = defaultdict(list)
    for ch, _ in common.most_common(4000):
        by_sound[lazy_pinyin(ch)[0]].append(ch)
    tried = recovered = 0
    for entry in gaz.entries:
        if entry.kind != "street":
            continue
        for i, ch in enumerate(entry.stem):
            alternatives = [c for c in by_sound.get(lazy_pinyin(ch)[0], []) if c != ch]
            if not alternatives:
                continue
            misheard = entry.name[:i] + alternatives[0] + entry.name[i + 1:]
            loc = gaz.resolve(f"{entry.district}{misheard}的")
            tried += 1
            recovered += loc.street == entry.name
            assert loc.street in (None, entry.name), (misheard, loc.street)
    assert tried > 500
    assert recovered / tried >= 0.9, (recovered, tried)
