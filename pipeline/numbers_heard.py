"""Phone numbers written short: digits the recogniser merged, restored by listening to the turn again.

Said digit by digit, a phone number often has a digit twice in a row ("一三六一一二二四四五五"). Whisper
base writes one of such a pair more often than not ("一三六一二四四五"), at every beam width, and now and
then drops a mobile's leading 一. The text cannot tell which digit was doubled; the audio can.

For a digit run that is one to ``MAX_MISSING`` digits short of a number a caller gives (a mainland mobile,
a Beijing landline), every way of putting the missing digits back (saying a heard digit twice, or a
leading 一 for a mobile) that makes a valid number is written into the turn's text, and each of these
texts is scored against the turn's audio by the same model (the log-probability of its tokens, teacher
forced). The likeliest is kept, unless it is much less likely than what was first written
(``MAX_LOSS_PER_DIGIT`` per digit put back). Runs that are already valid, or too far off, are left alone.

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

from pipeline.audio import SAMPLE_RATE
from pipeline.transcript import Segment, Word
from pipeline.windows import Window

#: spoken digits as the recogniser writes them in Mandarin, and their values
DIGIT_VALUES = {"零": "0", "〇": "0", "幺": "1", "一": "1", "二": "2", "两": "2", "三": "3", "四": "4",
                "五": "5", "六": "6", "七": "7", "八": "8", "九": "9"}
_RUN = re.compile(f"[{''.join(DIGIT_VALUES)}]{{5,}}")
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
    """One way of putting missing digits back: ``pieces[i]`` replaces the run's ``i``-th character."""

    pieces: tuple[str, ...]

    @property
    def text(self) -> str:
        return "".join(self.pieces)


def arabic(spoken: str) -> str:
    """'一三八幺' → '1381'."""
    return "".join(DIGIT_VALUES[ch] for ch in spoken)


def is_phone_number(digits: str) -> bool:
    """True when ``digits`` is, whole, a number a caller gives: a mainland mobile or a Beijing
    landline (eight digits, or ``010`` and eight)."""
    from pipeline.extractors.callback import validate_number

    number, rule = validate_number(digits, "zh")
    if number is None:
        return False
    if rule == "callback:cn_mobile":
        return number == digits
    return rule.startswith("callback:beijing_landline") and number.removeprefix("010") == digits.removeprefix("010")


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


def restorations(spoken: str) -> list[Restoration]:
    """Every way of making the spoken digit run ``spoken`` a valid phone number by saying up to
    ``MAX_MISSING`` of its digits twice (and, for a mobile, a leading 一); [] for a run that is valid
    already, has no such restoration, or has more than ``MAX_CANDIDATES``."""
    digits = arabic(spoken)
    if is_phone_number(digits):
        return []
    found: dict[str, Restoration] = {}
    for prefix, doubled in _short_by(digits):
        for chosen in itertools.combinations(range(len(spoken)), doubled):
            pieces = [ch * 2 if i in chosen else ch for i, ch in enumerate(spoken)]
            if prefix:
                pieces[0] = "一" + pieces[0]
            candidate = Restoration(tuple(pieces))
            if candidate.text not in found and is_phone_number(arabic(candidate.text)):
                found[candidate.text] = candidate
            if len(found) > MAX_CANDIDATES:
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
            texts = [segment.text] + [head + c.text + tail for c in candidates]
            scores = score(samples, texts, language)
            best = max(range(len(candidates)), key=lambda i: scores[i + 1])
            chosen = candidates[best]
            missing = len(chosen.text) - len(spoken)
            if scores[best + 1] < scores[0] - MAX_LOSS_PER_DIGIT * missing:
                continue
            record.append({
                "speaker": segment.speaker, "start": segment.start, "end": segment.end,
                "heard": spoken, "restored": chosen.text, "digits": arabic(chosen.text),
                "candidates": len(candidates), "logprob_heard": round(scores[0], 2),
                "logprob_restored": round(scores[best + 1], 2),
            })
            segment = replace(segment, text=texts[best + 1],
                              words=_rewrite_words(segment, match.start(), spoken, chosen))
            break  # one number per turn: a second run moved with this one
        out.append(segment)
    return out, record


__all__ = ["MAX_LOSS_PER_DIGIT", "MAX_MISSING", "Restoration", "Scorer", "arabic", "is_phone_number",
           "restorations", "restore_numbers"]
