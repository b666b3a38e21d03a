"""How the gazetteer hears a text: one sound token per character, and how close a heard stem is to a name's.

The sounds themselves (readings, the confusion table, the accent merges) come from ``pipeline.text.pinyin``,
which the transcript's vocabulary respelling and the surname extractor share; this module only lays them
out the way the place matchers index them: a string of ``loose-syllable|`` tokens, digits read as numbers.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from pipeline.text import pinyin

# Score of a sound-alike match: all syllables equal without tones / equal after merging accents
# (zh-z, n-l, in-ing ...) / one syllable only rhyming, anchored on a literally written suffix.
SCORE_HOMOPHONE = 0.95

SCORE_LOOSE = 0.9

SCORE_NEAR = 0.9

DIGITS = re.compile(r"[0-9]+")

#: the suffixes as heard (街道 / 镇 / 乡 / 地区 in loose pinyin), at a syllable start of the sound string
SUFFIX_SOUND = re.compile(r"(?<![a-z#])(?:jie\|d[a-z]+\||zen\||xiang\||di\|qu\|)")

SUFFIX_KEYS = {"街道": "jie|dao|", "镇": "zen|", "乡": "xiang|", "地区": "di|qu|"}



class _LooseTokens(dict[str, str]):
    """Character → ``loose-syllable|`` token for the sound index; characters without a reading, digits
    included, give ``#|``, which no name contains. One ``|`` per character."""

    def __missing__(self, ch: str) -> str:
        syl = "" if ch.isdigit() else pinyin.reading(ch)
        token = pinyin.loose(syl) + "|" if syl else "#|"
        self[ch] = token
        return token



TOKENS = _LooseTokens()



def stem_score(
    strict: Sequence[str], loose: Sequence[str], stem: Sequence[str], *, lenient: float | None,
) -> float | None:
    """Mean similarity of a written stem to a name's stem, syllable by syllable; None when more than one
    syllable is off, or the one off is too far: it must rhyme, or share ``lenient`` of its letters."""
    total = 0.0
    missed = False
    for got_s, got_l, want in zip(strict, loose, stem, strict=True):
        if got_s == want:
            total += 1.0
        elif got_l == pinyin.loose(want):
            total += 0.9
        elif missed or not got_s:
            return None
        else:
            sim = pinyin.similarity(got_s, want)
            if not (pinyin.near(got_s, want) or (lenient is not None and sim >= lenient)):
                return None
            missed = True
            total += min(sim, 0.7)
    return total / len(stem) if stem else None



def sound_tokens(norm: str) -> list[str]:
    """One sound token per character; a digit run is read as a number, on its last character."""
    toks = [TOKENS[c] for c in norm]
    for m in DIGITS.finditer(norm):
        reading = pinyin.number_reading(m.group())
        for i in range(m.start(), m.end()):
            toks[i] = ""
        toks[m.end() - 1] = "#|" if reading is None else "".join(pinyin.loose(s) + "|" for s in reading)
    return toks



def strict_syllables(chars: str) -> list[str]:
    out: list[str] = []
    pos = 0
    for m in DIGITS.finditer(chars):
        out.extend(pinyin.reading(c) or "#" for c in chars[pos:m.start()])
        out.extend(pinyin.number_reading(m.group()) or ["#"])
        pos = m.end()
    out.extend(pinyin.reading(c) or "#" for c in chars[pos:])
    return out
