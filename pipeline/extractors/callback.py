"""Callback number: the phone the caller gives, digits only, validated.

Candidates are the digit strings of the caller's speech (``numbers.digit_runs``, and for English calls
``numbers.english_digit_runs`` too). Inside a candidate we look for, in order:

- a mainland mobile: 11 digits ``1[3-9]…`` (a leading 86 / +86 is dropped);
- a Beijing landline: ``010`` + 8 digits, or 8 digits alone (``010`` is added);
- for English calls, a North American number: 10 digits (a leading 1 is dropped); the 555 numbers of
  films and examples are accepted as *possible* numbers (``phonenumbers.is_possible_number``).

A number the caller gives as a correction ("不对，是…", "sorry, it's …") wins; then one right after a
phone cue ("电话", "手机", "number", "reach me"); otherwise the first valid one. A digit string of 7+
digits that validates as nothing is returned only if nothing else was found, with low confidence and a
review flag; so is a valid number cut out of a longer digit string (a digit may have been misheard).
The agent reading the number back is ignored.

A number whose digits the transcriber restored (``pipeline.asr.numbers_heard``: a doubled digit written
once, put back by listening again) goes to review with the rule suffix ``:restored``.

Limits: two numbers ("my cell … or my work …") give the first; other misheard digits are not repaired.

Example: "电话一三六一一二二四四五五" → ``13611224455``; "555-876-5432" → ``5558765432``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from pipeline.extractors.context import Call
from pipeline.extractors.registry import Extraction, extractor
from pipeline.text.numerals import DigitRun, digit_runs, english_digit_runs
from pipeline.text.phones import validate_number

_CORRECTION = re.compile(
    r"(不对|不是|错了|说错了|应该是|更正|sorry|actually|i mean|no,? it's)[，,\s]*(是|is|it's|it is)?[，,\s]*$"
)
@extractor("callback_number")
def extract_callback(call: Call, done: Mapping[str, Extraction]) -> Extraction:
    """The caller's phone number, digits only (see the module docstring)."""
    view = call.caller_view
    folded = call.caller_folded
    runs: list[DigitRun] = digit_runs(folded, min_digits=7)
    if call.language == "en" or re.search(r"[a-z]", folded):
        runs += [r for r in english_digit_runs(folded, min_digits=7)
                 if not any(o.start <= r.start < o.end for o in runs)]
    cue_ends = [h.end for h in call.hits_of("phone")]
    best: tuple[float, str, str, DigitRun] | None = None
    fallback: DigitRun | None = None
    for run in runs:
        number, rule = validate_number(run.digits, call.language)
        if number is None:
            if fallback is None and len(run.digits) >= 7:
                fallback = run
            continue
        start_call, _ = view.span(run.start, run.end)
        near_cue = any(0 <= start_call - e <= 12 for e in cue_ends)
        corrected = bool(_CORRECTION.search(folded[max(0, run.start - 14):run.start]))
        score = (2.0 if near_cue else 1.0) + (2.5 if corrected else 0.0) \
            + (0.5 if rule.endswith("mobile") else 0.0) - run.start * 1e-6
        if best is None or score > best[0]:
            best = (score, number, rule, run)
    if best is not None:
        _, number, rule, run = best
        s, e = view.span(run.start, run.end)
        confidence = {"callback:nanp_possible": 0.8, "callback:beijing_landline_local": 0.7}.get(rule, 0.95)
        digits = run.digits.removeprefix("0086").removeprefix("86") if len(run.digits) > 11 else run.digits
        if len(digits) > len(number) + (1 if rule.startswith("callback:nanp") else 0):
            # more digits were said than the number has: a digit may have been misheard, let a person check
            rule, confidence = rule + ":extra_digits", 0.6
        if any(number.endswith(str(r.get("digits", "")).removeprefix("010")) and r.get("digits")
               for r in call.transcript.options.get("number_repairs") or ()):
            # digits the recogniser merged were put back by scoring candidates against the audio
            rule, confidence = rule + ":restored", min(confidence, 0.6)
        if number in call.rules.prompt_numbers:
            # the recogniser's prompt example, likely copied from the prompt rather than heard
            rule, confidence = rule + ":prompt_echo", 0.2
        return Extraction("callback_number", number, evidence=(call.evidence(rule, s, e),),
                          confidence=confidence, review=confidence < 0.75)
    if fallback is not None:
        s, e = view.span(fallback.start, fallback.end)
        return Extraction("callback_number", fallback.digits,
                          evidence=(call.evidence("callback:unvalidated", s, e),), confidence=0.3, review=True)
    return Extraction("callback_number", None, confidence=0.5, review=True)
