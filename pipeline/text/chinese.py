"""Chinese text as every layer reads it: Simplified characters, half-width forms, language by script.

Every function here keeps character offsets: the output has exactly the length of the input, so a span
found in the normalised text is the same span of the original (evidence spans, word timings and the
gazetteer's matches all rely on it).

Example::

    >>> to_simplified("我們這裡停電了")
    '我们这里停电了'
    >>> fold("ＡＢＣ１２３ Hello")
    'abc123 hello'
    >>> detect_language("我们小区停水了"), detect_language("There's a pothole on Elm Street")
    ('zh', 'en')
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

HAN = re.compile(r"[\u3400-\u9fff]")
_LATIN = re.compile(r"[A-Za-z]")


@cache
def _converter() -> Any:
    import opencc

    return opencc.OpenCC("t2s")


@cache
def _conversions() -> tuple[re.Pattern[str], dict[int, str]]:
    """The characters t2s changes, and the one-character conversion of each (built once, in one call)."""
    chars = [chr(c) for c in range(0x3400, 0xA000)]
    converted = _converter().convert("\n".join(chars)).split("\n")
    table = {ord(a): b for a, b in zip(chars, converted, strict=True) if a != b and len(b) == 1}
    return re.compile("[" + "".join(sorted(chr(c) for c in table)) + "]"), table


def to_simplified(text: str) -> str:
    """Traditional → Simplified (OpenCC ``t2s``), same length as the input.

    Text without a character t2s would change is returned as it is, without calling OpenCC. Otherwise
    the phrase-level conversion is used when it keeps the length (nearly always), else each character
    is converted on its own so that offsets stay aligned.
    """
    if not text:
        return text
    changed, table = _conversions()
    if not changed.search(text):
        return text
    out = _converter().convert(text)
    return out if len(out) == len(text) else text.translate(table)


_WIDE = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)}
# full-width punctuation is kept (it is how Chinese text separates clauses); letters and digits fold
for _cp in (0xFF0C, 0xFF01, 0xFF1F, 0xFF1B, 0xFF1A, 0xFF08, 0xFF09):
    _WIDE.pop(_cp, None)
_WIDE[0x3000] = 0x20
_LOWER = {cp: cp + 32 for cp in range(ord("A"), ord("Z") + 1)}


def halfwidth(text: str) -> str:
    """Full-width letters, digits and signs → ASCII; ideographic space → space (length kept)."""
    return text.translate(_WIDE)


def lower(text: str) -> str:
    """ASCII-only lower-casing (``str.lower`` may change the length of some non-ASCII letters)."""
    return text.translate(_LOWER)


def fold(text: str) -> str:
    """The matching form: Simplified, half-width, lower-case. Same length as ``text``."""
    return lower(halfwidth(to_simplified(text)))


def has_han(text: str) -> bool:
    """True when ``text`` holds a Chinese character."""
    return HAN.search(text) is not None


def detect_language(text: str) -> str:
    """``zh`` when Han characters make up a fair share of the letters, else ``en``."""
    han = len(HAN.findall(text))
    latin = len(_LATIN.findall(text))
    if han == 0:
        return "en"
    # one Han character carries about as much as a four-letter word
    return "zh" if han * 4 >= latin * 0.5 else "en"


__all__ = ["HAN", "detect_language", "fold", "halfwidth", "has_han", "lower", "to_simplified"]
