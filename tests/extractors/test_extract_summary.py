"""Summary line and location fields as the ticket shows them."""

from __future__ import annotations

import pytest
from extract_helpers import ticket_of

ZH_SUMMARY = [
    # (turns, must start with, must contain)
    (["我是海淀区中关村街道的居民，我们楼下的饭店油烟特别大，窗户都不敢开"], "海淀区中关村街道", ["油烟"]),
    (["喂你好我是海淀区上地街道的我们小区门口那条路上有个大坑"], "海淀区上地街道", ["大坑"]),
    (["你好，我想反映一下，东城区东花市街道停水了，家里有刚出生的孩子"], "东城区东花市街道", ["停水", "孩子"]),
    (["楼上漏水，把我家天花板泡了"], "楼上漏水", []),
    (["我們家暖氣不熱"], "我们家暖气不热", []),
]


@pytest.mark.parametrize(("turns", "prefix", "parts"), ZH_SUMMARY)
def test_zh_summary(turns: list[str], prefix: str, parts: list[str]) -> None:
    summary = ticket_of(*turns).summary
    assert summary.startswith(prefix)
    for part in parts:
        assert part in summary
    assert "我是" not in summary and "你好" not in summary
    assert len(summary) <= 60


def test_summary_skips_the_agent_and_contact_details() -> None:
    draft = ticket_of(("agent", "您好，市民服务热线，请问有什么可以帮您？"),
                      ("caller", "昌平区回龙观这边路灯坏了好几盏"),
                      ("agent", "您贵姓？"), ("caller", "我姓高，电话一三九一一零二三四五六"))
    assert "路灯" in draft.summary
    assert "热线" not in draft.summary and "一三九" not in draft.summary


def test_english_summary() -> None:
    draft = ticket_of("Hi, I'm calling about the street lights on Cedar Lane, they have been out for a week.")
    assert draft.summary.startswith("The street lights on Cedar Lane")
    assert draft.language == "en"


def test_english_address_is_kept() -> None:
    draft = ticket_of("There's a big pothole right in front of 42 Maple Avenue.")
    assert draft.address == "42 Maple Avenue"
    assert "pothole" in draft.summary


LOCATION = [
    ("我住在朝阳区和平街街道煤炭科技苑社区", ("朝阳区", "和平街街道", "煤炭科技苑社区")),
    ("我是海淀区中关村街道的", ("海淀区", "中关村街道", None)),
    ("我们楼下饭店油烟太大", (None, None, None)),
]


@pytest.mark.parametrize(("sentence", "place"), LOCATION)
def test_location_fields(sentence: str, place: tuple[str | None, ...]) -> None:
    draft = ticket_of(sentence)
    assert (draft.district, draft.street, draft.community) == place
    if draft.district:
        ev = draft.evidence["district"][0]
        assert ev.text and ev.speaker == "caller"


def test_agent_place_words_are_not_the_callers_location() -> None:
    draft = ticket_of(("agent", "请问您在哪个区？是朝阳区吗？"), ("caller", "不是，我在通州区，停电了"))
    assert draft.district == "通州区"
