"""Who said what: the caller's and the agent's parts of a call, as spans of ``Transcript.text``.

Stereo calls carry ``agent``/``caller`` speakers from their channels and are taken as they are. In mono
calls (speaker ``mixed``) the agent is recognised by the hotline script of ``agent_script.yaml``:

- a short clause (text between punctuation) that is mostly a ``clause`` pattern is the agent's
  ("您贵姓？", "请留一下您的姓名和电话", "What number can we reach you on?");
- inside long unpunctuated stretches only the ``span`` patterns apply, marking just the script words
  ("您好市民服务热线请问有什么可以帮您我们小区停水了" → the caller's part starts at "我们").

Everything else in a mono call is taken as the caller's. Limits: an agent who improvises off-script is
heard as the caller; a caller who happens to use a script phrase in a short clause is heard as the agent.

Example::

    >>> roles = assign_roles(transcript, folded, rules)   # doctest: +SKIP
    >>> roles.is_caller(start, end)                       # doctest: +SKIP
    True
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator
from dataclasses import dataclass

from pipeline.extractors.rules import Rules
from pipeline.transcript import Transcript

#: clause separators; ASCII ',' and '.' not inside a number ("1,200", "3.5"), '.' not after an abbreviation
#: ("a.m.", "Mr.", "St.")
CLAUSE_BREAK = re.compile(
    r"[。！？；，、!?;\n]|,(?!\d)"
    r"|(?<!\b[A-Za-z])(?<!\b[Mm]r)(?<!\b[Mm]rs)(?<!\b[Mm]s)(?<!\b[Dd]r)(?<!\b[Ss]t)\.(?!\d)"
)


def clauses(text: str, start: int = 0, end: int | None = None) -> Iterator[tuple[int, int]]:
    """``(start, end)`` of each non-blank clause of ``text[start:end]``, surrounding spaces trimmed."""
    end = len(text) if end is None else end
    pos = start
    bounds = [(m.start(), m.end()) for m in CLAUSE_BREAK.finditer(text, start, end)] + [(end, end)]
    for stop, resume in bounds:
        s, e = pos, stop
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if e > s:
            yield s, e
        pos = resume


@dataclass(frozen=True)
class Roles:
    """Caller and agent spans (sorted, non-overlapping) of the call text."""

    caller: tuple[tuple[int, int], ...]
    agent: tuple[tuple[int, int], ...]

    def is_caller(self, start: int, end: int) -> bool:
        """True when ``[start, end)`` lies inside one caller span."""
        i = bisect.bisect_right(self.caller, (start, float("inf"))) - 1
        return i >= 0 and self.caller[i][0] <= start and end <= self.caller[i][1]

    def agent_before(self, pos: int, *, within: int = 40) -> tuple[int, int] | None:
        """The agent span ending at most ``within`` characters before ``pos``, if any."""
        i = bisect.bisect_right(self.agent, (pos, float("inf"))) - 1
        if i >= 0 and self.agent[i][1] <= pos and pos - self.agent[i][1] <= within:
            return self.agent[i]
        return None


def _merge(spans: list[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    spans.sort()
    out: list[tuple[int, int]] = []
    for s, e in spans:
        if e <= s:
            continue
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return tuple(out)


def _subtract(span: tuple[int, int], holes: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out, pos = [], span[0]
    for s, e in sorted(holes):
        if s > pos:
            out.append((pos, s))
        pos = max(pos, e)
    if pos < span[1]:
        out.append((pos, span[1]))
    return out


def assign_roles(transcript: Transcript, folded: str, rules: Rules, language: str = "zh") -> Roles:
    """Split the call text into caller and agent spans (see the module docstring for the rules)."""
    caller: list[tuple[int, int]] = []
    agent: list[tuple[int, int]] = []
    max_chars = rules.clause_max_chars.get(language, 32)
    leftover = rules.clause_leftover_chars.get(language, 8)
    pos = 0
    for seg in transcript.segments:
        start, end = pos, pos + len(seg.text)
        pos = end + 1
        if seg.speaker == "agent":
            agent.append((start, end))
            continue
        if seg.speaker == "caller":
            caller.append((start, end))
            continue
        for cs, ce in clauses(folded, start, end):
            clause = folded[cs:ce]
            script = [(cs + m.start(), cs + m.end()) for m in rules.agent_clause.finditer(clause)
                      if m.end() > m.start()]
            if script and len(clause) <= max_chars and \
                    len(clause) - sum(e - s for s, e in _merge(list(script))) <= leftover:
                agent.append((cs, ce))
                continue
            holes = [(cs + m.start(), cs + m.end()) for m in rules.agent_span.finditer(clause)
                     if m.end() > m.start()] + script
            agent.extend(holes)
            for s, e in _subtract((cs, ce), holes):
                while s < e and folded[s].isspace():
                    s += 1
                while e > s and folded[e - 1].isspace():
                    e -= 1
                caller.append((s, e))
    return Roles(caller=_merge(caller), agent=_merge(agent))
