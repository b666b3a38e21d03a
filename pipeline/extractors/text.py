"""Text preparation for the extractors: Simplified characters, half-width forms, language by script.

Every function here keeps character offsets: the output has exactly the length of the input, so a span
found in the prepared text is the same span of ``Transcript.text``.

What it does not do: it does not fix homophones (the rule files list common ASR confusions as cues
instead) and it does not turn spoken numbers into digits (``numbers.py`` reads them where needed).

Example::

    >>> to_simplified("我們這裡停電了")
    '我们这里停电了'
    >>> fold("ＡＢＣ１２３ Hello")
    'abc123 hello'
"""

from __future__ import annotations

import re
from dataclasses import replace
from functools import lru_cache

from pipeline.transcript import Transcript

_HAN = re.compile(r"[\u3400-\u9fff]")
_LATIN = re.compile(r"[A-Za-z]")


@lru_cache(maxsize=1)
def _converter():  # type: ignore[no-untyped-def]
    import opencc

    return opencc.OpenCC("t2s")


@lru_cache(maxsize=4096)
def _char_t2s(ch: str) -> str:
    out = _converter().convert(ch)
    return out if len(out) == 1 else ch


def to_simplified(text: str) -> str:
    """Traditional → Simplified (OpenCC ``t2s``), same length as the input.

    Phrase-level conversion is used when it keeps the length (nearly always); otherwise each
    character is converted on its own so offsets stay aligned.
    """
    if not text or not _HAN.search(text):
        return text
    out = _converter().convert(text)
    if len(out) == len(text):
        return out
    return "".join(_char_t2s(ch) for ch in text)


_WIDE = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)}
# full-width punctuation is kept (it is how Chinese text separates clauses); letters and digits fold
for _cp in (0xFF0C, 0xFF01, 0xFF1F, 0xFF1B, 0xFF1A, 0xFF08, 0xFF09):
    _WIDE.pop(_cp, None)
_WIDE[0x3000] = 0x20


def halfwidth(text: str) -> str:
    """Full-width letters, digits and signs → ASCII; ideographic space → space (length kept)."""
    return text.translate(_WIDE)


def lower(text: str) -> str:
    """ASCII-only lower-casing (``str.lower`` may change the length of some non-ASCII letters)."""
    return text.translate(_LOWER)


_LOWER = {cp: cp + 32 for cp in range(ord("A"), ord("Z") + 1)}


def fold(text: str) -> str:
    """The matching form: Simplified, half-width, lower-case. Same length as ``text``."""
    return lower(halfwidth(to_simplified(text)))


def detect_language(text: str) -> str:
    """``zh`` when Han characters make up a fair share of the letters, else ``en``.

    >>> detect_language("我们小区停水了")
    'zh'
    >>> detect_language("There's a pothole on Elm Street")
    'en'
    """
    han = len(_HAN.findall(text))
    latin = len(_LATIN.findall(text))
    if han == 0:
        return "en"
    # one Han character carries about as much as a four-letter word
    return "zh" if han * 4 >= latin * 0.5 else "en"


def prepare(transcript: Transcript) -> Transcript:
    """The transcript with Simplified, half-width segment texts (offsets unchanged)."""
    segments = tuple(replace(s, text=halfwidth(to_simplified(s.text))) for s in transcript.segments)
    return replace(transcript, segments=segments)
