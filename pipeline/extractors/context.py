"""The prepared call every extractor reads: normalised text, roles, and the cue hits in caller speech.

Built once per call by ``prepare_call``. The text is Simplified and half-width with the offsets of
``Transcript.text``; ``folded`` is its lower-case matching form. ``hits`` are the cues of all rule files
found in the caller's speech, after negation:

- a cue overlapping a negation phrase of its file ("不是着火", "nobody was hurt") is dropped;
- a cue marked negatable right after a negator ("没有老人", "no smoke") is dropped;
- a cue inside a longer cue of the same file ("电梯" inside "加装电梯") is dropped.

``caller_view`` is the caller's speech alone (spans joined by newlines) with a map back to call offsets,
for the extractors that read free text (surname, phone, money, place).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import cached_property

from pipeline.extractors.roles import Roles, assign_roles
from pipeline.extractors.rules import Hit, Rules
from pipeline.text.chinese import detect_language, halfwidth, lower, to_simplified
from pipeline.ticket import Evidence
from pipeline.transcript import Transcript

_NEGATION_SCOPE = {"category": "category", "urgency": "urgency", "vulnerable": "vulnerable",
                   "school_child": "vulnerable"}
_STOPS = set("。！？；，、!?;,.\n")


@dataclass(frozen=True)
class CallerView:
    """The caller's speech as one string, with the call-text offset of every view offset."""

    text: str
    starts: tuple[int, ...]
    """view offset where each piece starts"""
    origins: tuple[int, ...]
    """call-text offset of each piece's first character"""

    def to_call(self, pos: int) -> int:
        i = max(bisect.bisect_right(self.starts, pos) - 1, 0)
        return self.origins[i] + (pos - self.starts[i]) if self.starts else pos

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Call-text span of the view span ``[start, end)`` (end mapped from its last character)."""
        if end <= start:
            s = self.to_call(start)
            return s, s
        return self.to_call(start), self.to_call(end - 1) + 1


@dataclass(frozen=True)
class Call:
    transcript: Transcript
    text: str
    folded: str
    language: str
    received_at: datetime
    rules: Rules
    roles: Roles
    hits: tuple[Hit, ...] = field(default=())

    def hits_of(self, kind: str) -> list[Hit]:
        return [h for h in self.hits if h.cue.kind == kind]

    def evidence(self, rule: str, start: int, end: int) -> Evidence:
        """Evidence for the call-text span ``[start, end)``, with seconds and speaker."""
        start_s, end_s, speaker = self.transcript.locate(start, end)
        return Evidence(rule=rule, start_char=start, end_char=end, text=self.text[start:end],
                        start_s=start_s, end_s=end_s, speaker=speaker)

    @cached_property
    def caller_view(self) -> CallerView:
        parts, starts, origins, pos = [], [], [], 0
        for s, e in self.roles.caller:
            parts.append(self.text[s:e])
            starts.append(pos)
            origins.append(s)
            pos += e - s + 1
        return CallerView("\n".join(parts), tuple(starts), tuple(origins))

    @cached_property
    def caller_folded(self) -> str:
        return lower(self.caller_view.text)



def _negated_by_prefix(folded: str, hit: Hit, rules: Rules) -> bool:
    before = folded[max(0, hit.start - 8):hit.start]
    # stay inside the clause
    for i in range(len(before) - 1, -1, -1):
        if before[i] in _STOPS:
            before = before[i + 1:]
            break
    if hit.cue.phrase.isascii():
        words = before.strip().split()
        if not words:
            return False
        if words[-1] in ("a", "an", "any", "the") and len(words) >= 2:
            words = words[:-1]
        tail = " ".join(words[-2:])
        return any(tail == n or tail.endswith(" " + n) for n in rules.negators_en)
    stripped = before.rstrip()
    return any(stripped.endswith(n) for n in rules.negators_zh)


def _filter_hits(raw: Iterable[Hit], folded: str, roles: Roles, rules: Rules) -> tuple[Hit, ...]:
    caller_hits = [h for h in raw if roles.is_caller(h.start, h.end)]
    negations: dict[str, list[Hit]] = {}
    for h in caller_hits:
        if h.cue.kind == "negation":
            negations.setdefault(h.cue.group, []).append(h)
    kept: list[Hit] = []
    for h in caller_hits:
        kind = h.cue.kind
        if kind == "negation":
            continue
        scope = _NEGATION_SCOPE.get(kind)
        if scope and any(n.start < h.end and h.start < n.end for n in negations.get(scope, ())):
            continue
        if h.cue.negatable and _negated_by_prefix(folded, h, rules):
            continue
        kept.append(h)
    # a cue strictly inside a longer cue of the same kind says nothing more (one sweep by start)
    out = []
    widest: dict[str, tuple[int, int]] = {}
    for h in sorted(kept, key=lambda h: (h.start, -h.end)):
        span = widest.get(h.cue.kind)
        if span is not None and span[1] >= h.end and (span[0], span[1]) != (h.start, h.end):
            continue
        if span is None or h.end > span[1]:
            widest[h.cue.kind] = (h.start, h.end)
        out.append(h)
    out.sort(key=lambda h: (h.start, h.end))
    return tuple(out)


def prepare(transcript: Transcript) -> Transcript:
    """The transcript with Simplified, half-width segment texts (offsets unchanged)."""
    segments = tuple(replace(s, text=halfwidth(to_simplified(s.text))) for s in transcript.segments)
    return replace(transcript, segments=segments)


def prepare_call(transcript: Transcript, *, received_at: datetime, rules: Rules) -> Call:
    """Normalise the transcript, split roles and find the cues (see the module docstring)."""
    prepared = prepare(transcript)
    text = prepared.text
    folded = lower(text)
    language = transcript.language if transcript.language in ("zh", "en") else ""
    detected = detect_language(text)
    if not language or (language != detected and len(text.strip()) >= 10):
        language = detected  # the script of the words wins over a language label that contradicts it
    roles = assign_roles(prepared, folded, rules, language)
    hits = _filter_hits(rules.matcher.scan(folded), folded, roles, rules)
    return Call(transcript=prepared, text=text, folded=folded, language=language, received_at=received_at,
                rules=rules, roles=roles, hits=hits)
