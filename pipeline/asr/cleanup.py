"""Cleaning of raw recogniser output: Simplified Chinese, known hallucinations, repetition loops.

Whisper was trained on subtitles, so on silence, music or line noise it can write the credits it saw
there ("字幕由Amara.org社群提供", "请不吝点赞 订阅 转发", "Thanks for watching!"), and on hard audio it can
loop on one phrase. Given an initial prompt, it can also write the prompt back when it hears nothing
it can use (a ringback tone comes out as "The caller reports a problem and gives the phone number.").
These are removed here, after decoding, whatever the engine.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import replace
from difflib import SequenceMatcher
from functools import cache

from pipeline.transcript import Segment

#: phrases that Whisper produces without speech; a segment that is mostly one of these is dropped
HALLUCINATIONS = (
    "字幕由amara.org社群提供", "字幕由amara.org社区提供", "amara.org", "请不吝点赞订阅转发打赏支持明镜与点点栏目",
    "请不吝点赞订阅转发", "点赞订阅转发打赏", "明镜与点点栏目", "字幕志愿者", "中文字幕志愿者", "优优独播剧场",
    "yoyo television series exclusive", "谢谢观看", "感谢观看", "欢迎订阅", "订阅我的频道", "字幕组",
    "thanks for watching", "thank you for watching", "please subscribe", "subtitles by the amara.org community",
    "like and subscribe", "see you in the next video",
)
_PUNCT = re.compile(r"[\s\W_]+", re.UNICODE)
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?", re.UNICODE)
#: a segment is the prompt written back when this share of its letters (and at least PROMPT_ECHO_MIN)
#: come from the prompt in order, in runs of PROMPT_ECHO_RUN or more; a phrase an agent really says
#: ("您好，请问您贵姓", "City services hotline, how can I help you?") is shorter or mostly its own
PROMPT_ECHO_SHARE = 0.8
PROMPT_ECHO_MIN = 12
PROMPT_ECHO_RUN = 4
#: a shorter stretch copied from the prompt is dropped only when the recogniser itself doubts it: its
#: words' mean probability (scored against the audio without the prompt) is under this. A greeting the
#: agent really says scores 0.8-1.0; "请问您贵姓" written for a caller's bare "您好" scored 0.08
PROMPT_COPY_MAX_PROBABILITY = 0.2
PROMPT_COPY_MIN = 2
#: a unit of 1-12 characters repeated 4+ times in a row is a decoding loop, not speech; so is a longer
#: phrase (13-60 characters) said three times over
_SEP = r"[\s，,、。.!?！？;；]*"
_LOOP = re.compile(rf"(.{{1,12}}?)(?:{_SEP}\1){{3,}}", re.DOTALL)
_LONG_LOOP = re.compile(rf"(.{{13,60}}?)(?:{_SEP}\1){{2,}}", re.DOTALL)
#: a digit said over and over is a phone number or an amount ("一三八八八八八八八八八"), not a loop
_DIGITS = set("0123456789０１２３４５６７８９零〇幺一二两三四五六七八九十")


def _key(text: str) -> str:
    return _PUNCT.sub("", unicodedata.normalize("NFKC", text).lower())


def is_hallucination(text: str) -> bool:
    """True when a segment is (mostly) one of Whisper's known no-speech phrases."""
    key = _key(text)
    if not key:
        return True
    for phrase in HALLUCINATIONS:
        p = _key(phrase)
        if p in key and len(p) >= 0.6 * len(key):
            return True
    return False


def is_prompt_echo(text: str, prompt: str | None) -> bool:
    """True when a segment is mostly a stretch of the decoder's initial prompt, copied.

    >>> is_prompt_echo("The caller reports a problem.", "Hotline call. The caller reports a problem and a place.")
    True
    >>> is_prompt_echo("City services hotline, how can I help you?", "City services hotline call.")
    False
    """
    if not prompt:
        return False
    key, source = _key(text), _key(prompt)
    if len(key) < PROMPT_ECHO_MIN:
        return False
    blocks = SequenceMatcher(None, key, source, autojunk=False).get_matching_blocks()
    copied = sum(b.size for b in blocks if b.size >= PROMPT_ECHO_RUN)
    return copied >= PROMPT_ECHO_MIN and copied >= PROMPT_ECHO_SHARE * len(key)


def _all_prompt_words(text: str, prompt: str) -> bool:
    """True when a text written in words (Latin script) uses only words of the prompt, in any order:
    "The caller and" from "The caller reports a problem and gives ...". Chinese is not split in words,
    and its common characters are in every prompt, so it must be a stretch of the prompt instead."""
    words = _words(text)
    if len(words) < 2 or any(not w.isascii() for w in words):
        return False
    return set(words) <= _prompt_words(prompt)


def _words(text: str) -> list[str]:
    return _WORD.findall(unicodedata.normalize("NFKC", text).lower())


@cache
def _prompt_words(prompt: str) -> frozenset[str]:
    """The words of a prompt, read once (the same prompt is checked against every segment)."""
    return frozenset(_words(prompt))


def is_improbable_prompt_copy(segment: Segment, prompt: str | None) -> bool:
    """True when a segment's whole text is a stretch of the prompt (in English: made only of the
    prompt's words) and its words were barely heard.

    On a second of audio the decoder can continue the prompt instead of transcribing: a caller's
    "您好" came out as the prompt's next words, "请问您贵姓". Too short for ``is_prompt_echo``, such a
    copy is told from the same phrase really said by the word probabilities, which are scored against
    the audio alone. Segments without word probabilities are kept.

    >>> from pipeline.transcript import Word
    >>> heard = (Word(0.2, 0.4, "请问", 0.02), Word(0.4, 0.8, "您贵姓", 0.1))
    >>> seg = Segment(0.2, 0.8, "mixed", "请问您贵姓", words=heard)
    >>> is_improbable_prompt_copy(seg, "您好，请问您贵姓？")
    True
    """
    if not prompt or not segment.words:
        return False
    key = _key(segment.text)
    if len(key) < PROMPT_COPY_MIN or not (key in _key(prompt) or _all_prompt_words(segment.text, prompt)):
        return False
    mean = sum(w.probability for w in segment.words) / len(segment.words)
    return mean < PROMPT_COPY_MAX_PROBABILITY


def collapse_loops(text: str) -> str:
    """Cut a phrase repeated four or more times in a row (a long one: three times) down to one
    occurrence; one or two digits repeated are a number and stay.

    >>> collapse_loops("好的好的好的好的好的")
    '好的'
    >>> collapse_loops("电话一三八八八八八八八八八")
    '电话一三八八八八八八八八八'
    """

    def keep_one(match: re.Match[str]) -> str:
        unit = match.group(1)
        if len(unit.strip()) <= 2 and set(unit.strip()) <= _DIGITS:
            return match.group(0)
        return unit

    return _LONG_LOOP.sub(keep_one, _LOOP.sub(keep_one, text))


def has_loop(text: str) -> bool:
    """True when the decoder looped somewhere in ``text`` (see ``collapse_loops``).

    >>> has_loop("我姓张？我姓张？我姓张？我姓张？"), has_loop("电话一三八八八八八八八八八")
    (True, False)
    """
    return collapse_loops(text) != text


def clean_segments(segments: Iterable[Segment], *, language: str, prompt: str | None = None) -> list[Segment]:
    """Drop hallucinated segments, the prompt written back, and repetition loops, including one segment
    repeated over and over."""
    out: list[Segment] = []
    for seg in segments:
        text = collapse_loops(seg.text).strip()
        if not text or is_hallucination(text) or is_prompt_echo(text, prompt) \
                or is_improbable_prompt_copy(seg, prompt):
            continue
        if len(out) >= 2 and _key(out[-1].text) == _key(text) == _key(out[-2].text) \
                and out[-1].speaker == seg.speaker:
            continue  # the same line a third time in a row: a loop across segments
        out.append(replace(seg, text=text) if text != seg.text else seg)
    return out
