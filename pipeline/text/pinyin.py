"""How Chinese characters sound, and which sounds a listener or a recogniser takes for each other.

One sound-alike model serves every layer that recovers a word from a mis-hearing: the transcript's
vocabulary respelling (市民服务热线 written 是民服务乐宪), the gazetteer's place recovery (海电区 →
海淀区) and surnames said as a homophone (我姓張 / 我姓章). Readings come from pypinyin (toneless);
initials and finals from pypinyin's own ``to_initials`` / ``to_finals`` (non-strict: y and w count as
initials, so ``yan`` is y + an, as speakers hear it).

The confusion table (``near``) lists what telephone audio and regional accents blur:

* initials heard alike: plosives among themselves (b p d t g k), f/h, the three sibilant rows
  (z zh j, c ch q, s sh x), l/n/r, m/n, and the glides y/w with none;
* finals heard alike: front and back nasals (an/ang, en/eng, in/ing, ian/iang, uan/uang), o/uo, e/o,
  un/ong, ou/ong.

``loose`` merges the distinctions that are lost most often (zh/z, ch/c, sh/s, n/l, -ng/-n) for indexing.

Example::

    >>> reading("海"), sorted(readings("长"))
    ('hai', ['chang', 'zhang'])
    >>> near("tai", "pai"), near("jie", "lie"), near("an", "ang")
    (True, False, True)
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache

from rapidfuzz.distance import Indel

from pipeline.text.chinese import HAN

INITIAL_GROUPS: tuple[frozenset[str], ...] = (
    frozenset({"b", "p", "d", "t", "g", "k"}), frozenset({"f", "h"}), frozenset({"z", "zh", "j"}),
    frozenset({"c", "ch", "q"}), frozenset({"s", "sh", "x"}), frozenset({"l", "n", "r"}),
    frozenset({"m", "n"}), frozenset({"y", "w", ""}),
)
NEAR_FINALS: tuple[frozenset[str], ...] = tuple(frozenset(pair) for pair in (
    ("an", "ang"), ("en", "eng"), ("in", "ing"), ("ian", "iang"), ("uan", "uang"), ("o", "uo"), ("e", "o"),
    ("un", "ong"), ("ou", "ong"),
))
#: how each digit is read out
DIGIT_READINGS = ("ling", "yi", "er", "san", "si", "wu", "liu", "qi", "ba", "jiu")


@cache
def _pinyin_dict() -> Mapping[int, str]:
    from pypinyin.pinyin_dict import pinyin_dict

    return pinyin_dict


@cache
def reading(ch: str) -> str:
    """The toneless default reading of one character; "" for a character without one (digits, Latin)."""
    from pypinyin.contrib.tone_convert import to_normal

    raw = _pinyin_dict().get(ord(ch)) if len(ch) == 1 else None
    return to_normal(raw.split(",")[0]) if raw else ""


@cache
def readings(ch: str) -> frozenset[str]:
    """Every toneless reading of a character; any other character reads as itself."""
    if not HAN.match(ch):
        return frozenset({ch})
    from pypinyin import Style, pinyin

    return frozenset(pinyin(ch, style=Style.NORMAL, heteronym=True)[0])


@cache
def split(syllable: str) -> tuple[str, str]:
    """(initial, final) of a toneless syllable, y and w counted as initials: ``yan`` → ("y", "an")."""
    from pypinyin.contrib.tone_convert import to_finals, to_initials

    initial = to_initials(syllable, strict=False)
    if not initial or initial == syllable:
        return "", syllable
    return initial, to_finals(syllable, strict=False)


def near(a: str, b: str) -> bool:
    """Two different toneless syllables a listener could take for each other (the table above)."""
    (ia, fa), (ib, fb) = split(a), split(b)
    if fa == fb:
        return ia != ib and any(ia in group and ib in group for group in INITIAL_GROUPS)
    return ia == ib and frozenset((fa, fb)) in NEAR_FINALS


def loose(syllable: str) -> str:
    """The syllable with the most often lost distinctions merged: zh/z ch/c sh/s, n/l, -ng/-n."""
    if syllable[:2] in ("zh", "ch", "sh"):
        syllable = syllable[0] + syllable[2:]
    elif syllable[:1] == "n":
        syllable = "l" + syllable[1:]
    if syllable.endswith(("eng", "ing")):
        syllable = syllable[:-1]
    return syllable


@cache
def similarity(a: str, b: str) -> float:
    """Letter similarity of two syllables, 0..1 (normalised Indel distance)."""
    return float(Indel.normalized_similarity(a, b))


def number_reading(digits: str) -> list[str] | None:
    """How a run of Arabic digits is read out: 10 → shi, 18 → shi ba, 25 → er shi wu, 301 → san ling yi;
    None for more than four digits."""
    if len(digits) > 4:
        return None
    if len(digits) > 2 or digits.startswith("0"):
        return [DIGIT_READINGS[int(d)] for d in digits]
    value = int(digits)
    if value < 10:
        return [DIGIT_READINGS[value]]
    tens, ones = divmod(value, 10)
    out = ([] if tens == 1 else [DIGIT_READINGS[tens]]) + ["shi"]
    return out + ([DIGIT_READINGS[ones]] if ones else [])


__all__ = ["DIGIT_READINGS", "INITIAL_GROUPS", "NEAR_FINALS", "loose", "near", "number_reading", "reading",
           "readings", "similarity", "split"]
