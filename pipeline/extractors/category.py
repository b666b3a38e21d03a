"""Category: which taxonomy code the caller's problem belongs to (``taxonomy.yaml``).

Each category cue found in the caller's speech adds its weight to its category (a phrase repeated adds
half its weight once more); the highest total wins, ``other`` when nothing matched. Agent speech is never
read, so the hotline greeting cannot vote. Negated cues do not count ("不是着火", "no smoke").

Confidence grows with the winning score and with its lead over the runner-up; the field is flagged for
review when nothing matched or when the runner-up is within a quarter of the winner.

Limits: a call about two problems gets the one with more (or heavier) words; a category whose
words the caller never says (only implies) is missed.

Example: "我们小区从昨天开始停水了" → ``utilities.water`` (cue 停水, weight 5).
"""

from __future__ import annotations

from collections.abc import Mapping

from pipeline.extractors.context import Call
from pipeline.extractors.registry import Extraction, extractor
from pipeline.extractors.rules import Hit


def score_categories(hits: list[Hit]) -> dict[str, float]:
    """Total weight per category of the given category hits (a repeated phrase adds half once more)."""
    scores: dict[str, float] = {}
    seen: dict[tuple[str, str], int] = {}
    for h in hits:
        key = (h.cue.group, h.cue.phrase)
        n = seen.get(key, 0)
        seen[key] = n + 1
        if n == 0:
            add = h.cue.weight
        elif n == 1:
            add = h.cue.weight / 2
        else:
            continue
        scores[h.cue.group] = scores.get(h.cue.group, 0.0) + add
    return {code: score for code, score in scores.items() if score > 0}


@extractor("category")
def extract_category(call: Call, done: Mapping[str, Extraction]) -> Extraction:
    """The category code with the most cue weight in the caller's words (``other`` when none)."""
    hits = [h for h in call.hits_of("category") if h.cue.weight > 0]
    scores = score_categories(hits)
    if not scores:
        return Extraction("category", "other", confidence=0.3, review=True,
                          detail={"scores": {}, "hits": (), "runner_up": None})
    ranked = sorted(scores.items(), key=lambda kv: (-kv[1], _first_hit(hits, kv[0])))
    best, top = ranked[0]
    runner_up, second = ranked[1] if len(ranked) > 1 else (None, 0.0)
    winning = tuple(h for h in hits if h.cue.group == best)
    strength = min(top / 5.0, 1.0)
    margin = (top - second) / top
    confidence = round(0.35 + 0.35 * strength + 0.3 * margin, 3)
    close = second >= 0.75 * top
    strongest: list[Hit] = []
    for h in sorted(winning, key=lambda h: (-h.cue.weight, h.start)):
        if all(o.cue.phrase != h.cue.phrase for o in strongest):
            strongest.append(h)
    evidence = tuple(call.evidence(h.cue.rule, h.start, h.end) for h in strongest[:3])
    return Extraction("category", best, evidence=evidence, confidence=confidence,
                      review=close or top < 2,
                      detail={"scores": scores, "hits": winning, "runner_up": runner_up})


def _first_hit(hits: list[Hit], group: str) -> int:
    """Ties go to the category the caller named first."""
    return min(h.start for h in hits if h.cue.group == group)
