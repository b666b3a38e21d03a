"""Whisper's known failure modes are removed after decoding, and nothing else is."""

from __future__ import annotations

import pytest

from pipeline.asr.cleanup import (
    clean_segments,
    collapse_loops,
    is_hallucination,
    is_improbable_prompt_copy,
    is_prompt_echo,
)
from pipeline.text.chinese import to_simplified
from pipeline.transcript import Segment, Word


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


SENTENCE = "我们会转给相关部门核实处理。"


@pytest.mark.parametrize(("text", "expected"), [
    (SENTENCE * 3, SENTENCE),
    ("Z Gonzalez'DrayZ Gonzalez'DrayZ Gonzalez'Dray", "Z Gonzalez'Dray"),  # a long unit, said three times
    ("手机号是一三八八八八八八八八八", "手机号是一三八八八八八八八八八"),  # a number, not a loop
    ("一共三千三百三十三元", "一共三千三百三十三元"),
    (SENTENCE * 2, SENTENCE * 2),  # twice may be said; three times is a loop
])
def test_long_loops_collapse_and_numbers_stay(text: str, expected: str) -> None:
    assert collapse_loops(text) == expected


EN_PROMPT = "City services hotline call. The caller reports a problem and gives their name, address and phone number."
ZH_PROMPT = "以下是北京12345市民服务热线的通话录音。您好，请问您贵姓？我姓张，电话一三九一一零二二三四四。"


@pytest.mark.parametrize(("text", "prompt", "echo"), [
    ("The caller reports a problem and gives the phone number.", EN_PROMPT, True),
    ("以下是北京12345市民服务热线的通话录音", ZH_PROMPT, True),
    ("我姓张，电话一三九一一零二二三四四。", ZH_PROMPT, True),
    ("City services hotline, how can I help you?", EN_PROMPT, False),  # the agent's own greeting
    ("您好，请问您贵姓？", ZH_PROMPT, False),  # said on every call: too short to be an echo
    ("您好，12345市民服务热线，请问有什么可以帮您？", ZH_PROMPT, False),
    ("The caller reports a problem.", None, False),
])
def test_the_prompt_written_back_is_recognised(text: str, prompt: str | None, echo: bool) -> None:
    assert is_prompt_echo(text, prompt) is echo


def test_clean_segments_drops_the_prompt_written_back() -> None:
    segs = [Segment(0, 1, "agent", "City services hotline, how can I help you?"),
            Segment(1, 2, "caller", "The caller reports a problem and gives the phone number.")]
    assert [s.text for s in clean_segments(segs, language="en", prompt=EN_PROMPT)] == [segs[0].text]


def _heard(text: str, *probabilities: float) -> Segment:
    """A segment with a probability for each word (English) or character (Chinese)."""
    step = 0.2
    pairs = enumerate(zip(text.split() if text.isascii() else text, probabilities, strict=True))
    words = tuple(Word(i * step, (i + 1) * step, ch, p) for i, (ch, p) in pairs)
    return Segment(0.0, step * len(words), "mixed", text, words=words)


@pytest.mark.parametrize(("segment", "copied"), [
    (_heard("请问您贵姓", 0.01, 0.02, 0.06, 0.01, 0.28), True),   # a bare "您好" continued from the prompt
    (_heard("请问您贵姓", 0.99, 1.0, 0.98, 0.84, 0.42), False),   # the agent asking, clearly heard
    (_heard("您贵姓", 0.99, 0.97, 0.51), False),
    (_heard("我姓王", 0.05, 0.04, 0.03), False),                  # doubtful, but not the prompt's words
    (_heard("我姓张", 0.05, 0.04, 0.03), True),
    (_heard("好", 0.01), False),                                  # one character is no copy
    (Segment(0.0, 1.0, "mixed", "请问您贵姓"), False),             # no word probabilities: kept
])
def test_a_short_stretch_of_the_prompt_barely_heard_is_a_copy(segment: Segment, copied: bool) -> None:
    assert is_improbable_prompt_copy(segment, ZH_PROMPT) is copied
    kept = clean_segments([segment], language="zh", prompt=ZH_PROMPT)
    assert kept == ([] if copied else [segment])


@pytest.mark.parametrize(("segment", "copied"), [
    (_heard("The caller and", 0.0001, 0.00002, 0.04), True),      # a tone, written as the prompt's words
    (_heard("The caller and", 0.95, 0.9, 0.97), False),           # the same words, clearly heard
    (_heard("My name is Sarah", 0.05, 0.04, 0.03, 0.02), False),  # doubtful, but not the prompt's words
    (_heard("phone number", 0.01, 0.02), True),
    (_heard("hello", 0.01), False),                               # doubtful, not in the prompt
])
def test_english_made_of_the_prompts_words_barely_heard_is_a_copy(segment: Segment, copied: bool) -> None:
    """English is checked word by word, in any order: the decoder strings the prompt's words together."""
    assert is_improbable_prompt_copy(segment, EN_PROMPT) is copied
    assert clean_segments([segment], language="en", prompt=EN_PROMPT) == ([] if copied else [segment])
