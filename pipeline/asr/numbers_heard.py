"""Phone numbers written with a digit too few or too many, restored by listening to the turn again.

Said digit by digit, a phone number often has a digit twice in a row ("一三六一一二二四四五五"). Whisper
base writes one of such a pair more often than not ("一三六一二四四五"), at every beam width, and now and
then drops a mobile's leading 一; less often it writes a digit too many ("一八八一零零零一二三四五",
"189-01-202-03-04"). The text cannot tell which digit was doubled or which one is extra; the audio can.

For a digit run that is one to ``MAX_MISSING`` digits short of a number a caller gives (a mainland mobile,
a Beijing landline), every way of putting the missing digits back (saying a heard digit twice, or a
leading 一 for a mobile) that makes a valid number is a candidate; for a run one digit too long, every
way of leaving one digit out. Each candidate is scored against the turn's audio by the same model (the
log-probability of the turn's text with the candidate in it, teacher forced), in Chinese numerals and in
Arabic ones, whichever the model finds likelier: it writes numbers both ways, and one way can rank the
candidates where the other cannot. The likeliest is kept, unless it is much less likely than what was
first written (``MAX_LOSS_PER_DIGIT`` per digit changed). Runs that are already valid, or too far off,
are left alone.

What was restored is listed in the transcript's options (``number_repairs``), and a callback number
made of restored digits goes to review: the digits are the model's best guess at what it heard.

Example: the caller's turn "电话一五八一二二三三四四" (10 digits) has candidates 一五五八…, 一五八八…,
一五八一一…; scored against the audio, "电话一五八一一二二三三四四" wins.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from pipeline.asr.audio import SAMPLE_RATE
from pipeline.asr.windows import Window
from pipeline.text.numerals import DIGIT_VALUES
from pipeline.text.phones import is_phone_number
from pipeline.transcript import Segment, Word

_CHINESE = "零一二三四五六七八九"
#: five or more digits, in either script, with at most one hyphen or space between two of them
_D = f"[{''.join(DIGIT_VALUES)}]"
_RUN = re.compile(f"{_D}(?:[-\\s]?{_D}){{4,}}")
#: digits that may be missing from one run; more, and the run is not restored
MAX_MISSING = 3
#: a restoration may be at most this much less likely (natural log) than the text first written, per
#: digit put back; beyond it the audio does not support the extra digits
MAX_LOSS_PER_DIGIT = 6.0
#: more candidates than this and the run is left as written (the choice would be a guess)
MAX_CANDIDATES = 96
#: audio kept either side of the turn when it is scored again, seconds
PAD_S = 0.3

#: scores texts against audio: (samples at 16 kHz, texts, language) → one log-probability per text
Scorer = Callable[[np.ndarray, Sequence[str], str], list[float]]


@dataclass(frozen=True)
class Restoration:
    """One way of mending a run: ``pieces[i]`` replaces the run's ``i``-th character (a digit kept, said
    twice, or left out as "")."""

    pieces: tuple[str, ...]

    @property
    def text(self) -> str:
        return "".join(self.pieces)


def arabic(spoken: str) -> str:
    """'一三八幺' → '1381', '189-01' → '18901': the digits of a run, separators left out."""
    return "".join(DIGIT_VALUES[ch] for ch in spoken if ch in DIGIT_VALUES)


def spellings(digits: str) -> tuple[str, str]:
    """The two ways the recogniser writes a number: '1381' → ('一三八一', '1381')."""
    return "".join(_CHINESE[int(d)] for d in digits), digits


def _short_by(digits: str) -> list[tuple[bool, int]]:
    """(prefix a 一?, digits to double) for each number plan this run may be short of."""
    n = len(digits)
    plans: list[tuple[bool, int]] = []
    if digits[0] == "1" and 11 - MAX_MISSING <= n < 11:
        plans.append((False, 11 - n))
    if digits[0] in "3456789" and 11 - MAX_MISSING <= n < 11:
        plans.append((True, 10 - n))  # the leading 1 of a mobile lost, perhaps with other digits
    body = digits[3:] if digits.startswith("010") else digits
    if body and body[0] in "2345689" and 8 - MAX_MISSING <= len(body) < 8:
        plans.append((False, 8 - len(body)))
    return plans


def _long_by(digits: str) -> bool:
    """True when the run is one digit longer than a mobile or a Beijing landline."""
    body = digits[3:] if digits.startswith("010") else digits
    return (digits[0] == "1" and len(digits) == 12) or (body[:1] in set("2345689") and len(body) == 9)


def restorations(spoken: str) -> list[Restoration]:
    """Every way of making the spoken digit run ``spoken`` a valid phone number by saying up to
    ``MAX_MISSING`` of its digits twice (and, for a mobile, a leading 一), or by leaving out one digit
    of a run that has one too many; [] for a run that is valid already, has no such restoration, or
    has more than ``MAX_CANDIDATES``."""
    digits = arabic(spoken)
    if len(digits) < 5 or is_phone_number(digits):
        return []
    positions = [i for i, ch in enumerate(spoken) if ch in DIGIT_VALUES]
    chinese = any(ch in DIGIT_VALUES and not ch.isascii() for ch in spoken)
    found: dict[str, Restoration] = {}

    def consider(pieces: list[str]) -> bool:
        candidate = Restoration(tuple(pieces))
        number = arabic(candidate.text)
        if number not in found and is_phone_number(number):
            found[number] = candidate
        return len(found) <= MAX_CANDIDATES

    # Chinese numerals without 十/百/千 are digits said one by one; a run in Arabic figures may be an
    # amount or a year the recogniser wrote as such, so it is mended only as a mobile one digit short
    # or one too long (no amount said on the line has ten or twelve figures and starts with a 1)
    near_mobile = digits[0] == "1" and len(digits) in (10, 12)
    for prefix, doubled in _short_by(digits) if chinese or near_mobile else ():
        for chosen in itertools.combinations(positions, doubled):
            pieces = [ch * 2 if i in chosen else ch for i, ch in enumerate(spoken)]
            if prefix:
                pieces[positions[0]] = "一" + pieces[positions[0]]
            if not consider(pieces):
                return []
    if _long_by(digits) and (chinese or near_mobile):
        for left_out in positions:
            if not consider(["" if i == left_out else ch for i, ch in enumerate(spoken)]):
                return []
    return list(found.values())


def _rewrite_words(segment: Segment, start: int, spoken: str, chosen: Restoration) -> tuple[Word, ...]:
    """The segment's words with the run's characters replaced by the restoration's pieces (each word
    keeps its timing; a doubled digit shares its word's)."""
    if "".join(w.text for w in segment.words) != segment.text:
        return segment.words
    out: list[Word] = []
    offset = 0
    for word in segment.words:
        text = []
        for i, ch in enumerate(word.text, offset):
            text.append(chosen.pieces[i - start] if start <= i < start + len(spoken) else ch)
        offset += len(word.text)
        out.append(replace(word, text="".join(text)))
    return tuple(out)


def _turn_samples(window: Window, segment: Segment) -> np.ndarray | None:
    for w0, w1, c0, _ in window.regions:
        if abs(c0 - segment.start) < 1e-3:
            a = max(0, int((w0 - PAD_S) * SAMPLE_RATE))
            b = min(len(window.samples), int((w1 + PAD_S) * SAMPLE_RATE))
            return window.samples[a:b]
    return None


def restore_numbers(window: Window, segments: Sequence[Segment], score: Scorer,
                    language: str) -> tuple[list[Segment], list[dict[str, object]]]:
    """The window's segments with short phone numbers restored, and a record of each restoration.

    Only Mandarin turns are looked at (English numbers are words, and are not merged this way)."""
    if language != "zh":
        return list(segments), []
    out: list[Segment] = []
    record: list[dict[str, object]] = []
    for segment in segments:
        for match in list(_RUN.finditer(segment.text)):
            spoken = match.group()
            candidates = restorations(spoken)
            samples = _turn_samples(window, segment) if candidates else None
            if samples is None:
                continue
            head, tail = segment.text[:match.start()], segment.text[match.end():]
            heard, *scores = _likeliest(samples, head, tail, [arabic(spoken)] + [arabic(c.text) for c in candidates],
                                        score, language)
            best = max(range(len(candidates)), key=lambda i: scores[i])
            chosen = candidates[best]
            changed = abs(len(arabic(chosen.text)) - len(arabic(spoken)))
            if scores[best] < heard - MAX_LOSS_PER_DIGIT * changed:
                continue
            record.append({
                "speaker": segment.speaker, "start": segment.start, "end": segment.end,
                "heard": spoken, "restored": chosen.text, "digits": arabic(chosen.text),
                "candidates": len(candidates), "logprob_heard": round(heard, 2),
                "logprob_restored": round(scores[best], 2),
            })
            segment = replace(segment, text=head + chosen.text + tail,
                              words=_rewrite_words(segment, match.start(), spoken, chosen))
            break  # one number per turn: a second run moved with this one
        out.append(segment)
    return out, record


def _likeliest(samples: np.ndarray, head: str, tail: str, numbers: Sequence[str], score: Scorer,
               language: str) -> list[float]:
    """For each digit string, the log-probability of the turn with it written in, in whichever script
    (Chinese or Arabic numerals) the model finds likelier."""
    texts = [head + spelt + tail for digits in numbers for spelt in spellings(digits)]
    scores = score(samples, texts, language)
    return [max(scores[2 * i], scores[2 * i + 1]) for i in range(len(numbers))]


__all__ = ["MAX_LOSS_PER_DIGIT", "MAX_MISSING", "Restoration", "Scorer", "arabic", "is_phone_number",
           "restorations", "restore_numbers", "spellings"]
