"""Domain vocabulary: Mandarin place names and hotline terms that the recogniser heard as sound-alikes.

A small speech model writes what it hears with the characters it knows best: 丰台区 comes out as 疯台区,
金融街街道 as 金融接街道, 市民服务热线 as 是民服务乐宪, 电话畅通 as 电话唱通. Cloud recognisers take a
custom vocabulary for this; here the transcript is corrected after decoding, against

* the Beijing gazetteer (districts, street offices and towns), through its own sound-alike recovery, and
* a list of hotline terms kept as data (``pipeline/asr/data/zh_terms.txt``), matched by toneless pinyin.

Only equal-length replacements are made, so every character offset (evidence spans, word timings) stays
valid, and each one is recorded with what was heard. Rules for a term of ``n`` characters, compared
syllable by syllable with every reading of each character:

* ``n <= 4``: every syllable must be the same (a homophone spelling: 造音扰民 → 噪音扰民);
* ``n == 5``: one syllable may be a near one (``pipeline.text.pinyin.near``: same final with a confusable
  initial, l/r, z/zh, n/l…, or same initial with an/ang, en/eng, in/ing…);
* ``n == 6``: up to two syllables may be near ones;
* ``n >= 7``: one syllable may differ in any way, or two may be near ones.

Half the syllables must already sound right (the same character, or another of the same sound: 是民服务
乐宪 has 服务, 是 for 市 and 宪 for 线), one character at least must be the same, and what was heard is
left alone when it is itself a term or part of one (相关部门办理 is part of 转交相关部门办理, so it is not
turned into 相关部门处理).

Example::

    vocab = DomainVocabulary.load()
    vocab.correct_text("您好是民服务乐宪我住在疯台区")
    # → ("您好市民服务热线我住在丰台区", [Correction(2, 8, "是民服务乐宪", "市民服务热线", "term"), ...])
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from functools import cache
from importlib import resources

from pipeline.text import pinyin
from pipeline.text.chinese import HAN
from pipeline.transcript import Transcript

log = logging.getLogger(__name__)

#: a sound-alike place is taken when the gazetteer scores it at least this high
PLACE_MIN_SCORE = 0.9
#: suffixes a place may be said without (中关村 for 中关村街道)
_PLACE_SUFFIXES = ("街道", "地区", "镇", "乡", "区")

@dataclass(frozen=True)
class Correction:
    """One replacement in a text: ``heard`` at ``start:end`` became ``corrected`` (same length)."""

    start: int
    end: int
    heard: str
    corrected: str
    rule: str
    """``place`` (the gazetteer) or ``term`` (the hotline terms)."""


def _compare(heard: str, term: str) -> tuple[int, int, int, int] | None:
    """(same characters, other characters of the same sound, near syllables, other syllables) of two
    equal-length Han strings."""
    same = homophones = near = other = 0
    for h, t in zip(heard, term, strict=True):
        if h == t:
            same += 1
            continue
        if not HAN.match(h):
            return None
        rh, rt = pinyin.readings(h), pinyin.readings(t)
        if rh & rt:
            homophones += 1
            continue
        if any(pinyin.near(a, b) for a in rh for b in rt):
            near += 1
        else:
            other += 1
    return same, homophones, near, other


def _accept(heard: str, term: str) -> bool:
    if heard == term:
        return False
    compared = _compare(heard, term)
    if compared is None:
        return False
    same, homophones, near, other = compared
    n = len(term)
    if n <= 4:
        return near == other == 0
    if same == 0 or (same + homophones) * 2 < n:
        return False
    if n == 5:
        return other == 0 and near <= 1
    if n == 6:
        return other == 0 and near <= 2
    return (other == 1 and near == 0) or (other == 0 and near <= 2)


class DomainVocabulary:
    """Corrects sound-alike spellings of places and hotline terms in recognised Mandarin."""

    def __init__(self, terms: Iterable[str], gazetteer: object | None = None) -> None:
        cleaned = sorted({t.strip() for t in terms if t.strip()}, key=lambda t: (-len(t), t))
        bad = [t for t in cleaned if len(t) < 4 or not all(HAN.match(ch) for ch in t)]
        if bad:
            raise ValueError(f"vocabulary terms must be 4 or more Chinese characters: {bad[:5]}")
        self.terms: tuple[str, ...] = tuple(cleaned)
        self._gazetteer = gazetteer
        # every term under each pair of adjacent readings it contains: a term with one wrong syllable
        # still shares an exact pair with what was heard when it is 4 or more characters long
        self._pairs: dict[tuple[str, str], list[tuple[str, int]]] = {}
        for term in self.terms:
            for k in range(len(term) - 1):
                for a in pinyin.readings(term[k]):
                    for b in pinyin.readings(term[k + 1]):
                        self._pairs.setdefault((a, b), []).append((term, k))

    @classmethod
    def load(cls) -> DomainVocabulary:
        """The shipped hotline terms and the Beijing gazetteer."""
        from pipeline.extractors.gazetteer import Gazetteer

        text = resources.files("pipeline.asr.data").joinpath("zh_terms.txt").read_text("utf-8")
        terms = [line.split("#", 1)[0].strip() for line in text.splitlines()]
        return cls([t for t in terms if t], Gazetteer.load())

    # -- places ---------------------------------------------------------------------------------------
    def _places(self, text: str) -> list[Correction]:
        if self._gazetteer is None:
            return []
        out = []
        for m in self._gazetteer.find(text):  # type: ignore[attr-defined]
            if m.rule != "gazetteer.pinyin" or m.score < PLACE_MIN_SCORE or m.kind not in ("district", "street"):
                continue
            heard = text[m.start:m.end]
            forms = [m.name] + [m.name[: -len(s)] for s in _PLACE_SUFFIXES if m.name.endswith(s)]
            target = next((f for f in forms if len(f) == len(heard) and f != heard), None)
            if target and all(HAN.match(ch) for ch in heard):
                out.append(Correction(m.start, m.end, heard, target, "place"))
        return out

    # -- terms ----------------------------------------------------------------------------------------
    def _terms(self, text: str) -> list[Correction]:
        syllables = [pinyin.readings(ch) for ch in text]
        candidates: set[tuple[int, str]] = set()
        for i in range(len(text) - 1):
            if not (HAN.match(text[i]) and HAN.match(text[i + 1])):
                continue
            for a in syllables[i]:
                for b in syllables[i + 1]:
                    for term, k in self._pairs.get((a, b), ()):
                        start = i - k
                        if start >= 0 and start + len(term) <= len(text):
                            candidates.add((start, term))
        out = []
        for start, term in candidates:
            heard = text[start: start + len(term)]
            if _accept(heard, term) and not self._is_vocabulary(heard):
                out.append(Correction(start, start + len(term), heard, term, "term"))
        return out

    def _is_vocabulary(self, heard: str) -> bool:
        return any(heard in term for term in self.terms)

    # -- whole texts ----------------------------------------------------------------------------------
    def correct_text(self, text: str) -> tuple[str, list[Correction]]:
        """``text`` with sound-alike places and terms respelled, and the corrections made."""
        if not HAN.search(text):
            return text, []
        chosen: list[Correction] = []
        # places first (the gazetteer knows its context), then the longest terms
        for corr in self._places(text) + sorted(self._terms(text), key=lambda c: (-(c.end - c.start), c.start)):
            if all(corr.end <= c.start or corr.start >= c.end for c in chosen):
                chosen.append(corr)
        chosen.sort(key=lambda c: c.start)
        chars = list(text)
        for corr in chosen:
            chars[corr.start:corr.end] = corr.corrected
        return "".join(chars), chosen

    def correct(self, transcript: Transcript) -> Transcript:
        """The transcript with each Mandarin segment corrected; the corrections go in its options."""
        if transcript.language != "zh":
            return transcript
        segments = []
        record: list[dict[str, object]] = []
        for index, seg in enumerate(transcript.segments):
            text, corrections = self.correct_text(seg.text)
            segments.append(replace(seg, text=text) if corrections else seg)
            record += [{"segment": index, "start": c.start, "heard": c.heard, "corrected": c.corrected,
                        "rule": c.rule} for c in corrections]
        if not record:
            return transcript
        log.info("vocabulary: %d sound-alike spellings corrected", len(record))
        options = {**transcript.options, "vocabulary_corrections": record}
        return replace(transcript, segments=tuple(segments), options=options)


@cache
def default_vocabulary() -> DomainVocabulary:
    """The shipped vocabulary, loaded once per process."""
    return DomainVocabulary.load()


def correct_transcript(transcript: Transcript) -> Transcript:
    """``default_vocabulary().correct(transcript)``."""
    return default_vocabulary().correct(transcript)


__all__: Sequence[str] = ("Correction", "DomainVocabulary", "correct_transcript", "default_vocabulary")
