"""Whisper's known failure modes are removed after decoding, and nothing else is."""

from __future__ import annotations

import pytest

from pipeline.textclean import clean_segments, collapse_loops, is_hallucination, to_simplified
from pipeline.transcript import Segment


@pytest.mark.parametrize("text", [
    "字幕由Amara.org社群提供", "请不吝点赞 订阅 转发 打赏支持明镜与点点栏目", "Thanks for watching!",
    "謝謝觀看", "   ", "。。。", "Please subscribe.",
])
def test_hallucinations_are_recognised(text: str) -> None:
    assert is_hallucination(to_simplified(text))


@pytest.mark.parametrize("text", [
    "谢谢您，我们小区停水了", "Thanks, the street light on Oak Street is out", "我在朝阳区和平街街道",
    "好的", "Thank you.",
])
def test_real_speech_is_kept(text: str) -> None:
    assert not is_hallucination(text)


@pytest.mark.parametrize(("text", "expected"), [
    ("好的好的好的好的好的", "好的"),
    ("电话是一三九，一三九，一三九，一三九，一三九", "电话是一三九"),
    ("we need help we need help we need help we need help", "we need help"),
    ("好的好的", "好的好的"),  # said twice is speech, not a loop
])
def test_loops_collapse(text: str, expected: str) -> None:
    assert collapse_loops(text).strip(" ，,") == expected


def test_traditional_becomes_simplified() -> None:
    assert to_simplified("請問您貴姓？聯繫電話是多少") == "请问您贵姓？联系电话是多少"


def test_clean_segments_drops_repeated_lines_and_credits() -> None:
    segs = [Segment(0, 1, "caller", "我们楼下很吵"), Segment(1, 2, "caller", "我们楼下很吵"),
            Segment(2, 3, "caller", "我们楼下很吵"), Segment(3, 4, "caller", "字幕由Amara.org社群提供"),
            Segment(4, 5, "agent", "好的")]
    assert [s.text for s in clean_segments(segs, language="zh")] == ["我们楼下很吵", "我们楼下很吵", "好的"]
