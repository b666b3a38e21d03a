"""Cleaning of raw recogniser output: Simplified Chinese, known hallucinations, repetition loops.

Whisper was trained on subtitles, so on silence, music or line noise it can write the credits it saw
there ("字幕由Amara.org社群提供", "请不吝点赞 订阅 转发", "Thanks for watching!"), and on hard audio it can
loop on one phrase. These are removed here, after decoding, whatever the engine.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import replace
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
#: a unit of 1-12 characters repeated 4+ times in a row is a decoding loop, not speech
_LOOP = re.compile(r"(.{1,12}?)(?:[\s，,、。.]*\1){3,}", re.DOTALL)


@cache
def _t2s():  # type: ignore[no-untyped-def]
    import opencc

    return opencc.OpenCC("t2s")


def to_simplified(text: str) -> str:
    """Traditional → Simplified Chinese (OpenCC), leaving other scripts alone."""
    return _t2s().convert(text) if text else text


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


def collapse_loops(text: str) -> str:
    """Cut a phrase repeated four or more times in a row down to one occurrence.

    >>> collapse_loops("好的好的好的好的好的")
    '好的'
    """
    return _LOOP.sub(lambda m: m.group(1), text)


def clean_segments(segments: Iterable[Segment], *, language: str) -> list[Segment]:
    """Drop hallucinated segments and repetition loops, including one segment repeated over and over."""
    out: list[Segment] = []
    for seg in segments:
        text = collapse_loops(seg.text).strip()
        if not text or is_hallucination(text):
            continue
        if len(out) >= 2 and _key(out[-1].text) == _key(text) == _key(out[-2].text) \
                and out[-1].speaker == seg.speaker:
            continue  # the same line a third time in a row: a loop across segments
        out.append(replace(seg, text=text) if text != seg.text else seg)
    return out
