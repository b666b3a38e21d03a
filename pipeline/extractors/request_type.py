"""Request type: complaint, help, consultation, suggestion, report or praise (see TICKET_SCHEMA.md).

Scoring, all on the caller's words:

- the winning category's default type gets ``category_prior`` points (a water outage is a call for
  help, noise is a complaint, a pothole is a report, a school question is a consultation);
- a matched category cue that names a type ("停车证" → consultation) gives that type ``cue_prior``;
- each cue of ``request_type.yaml`` adds its weight ("投诉" → complaint, "想咨询" / "how do I" →
  consultation, "建议" → suggestion, "举报" → report, "表扬" → praise).

The highest total wins; ties go to the category default. Limits: politeness ("谢谢") is not praise, and
rhetorical questions ("怎么还没来水") are not consultations, so those words carry no or little weight.

Example: "我想咨询一下孩子入学需要什么材料" → ``consultation``.
"""

from __future__ import annotations

from collections.abc import Mapping

from pipeline.extractors.context import Call
from pipeline.extractors.registry import Extraction, extractor
from pipeline.extractors.rules import Hit


@extractor("request_type", after=("category",))
def extract_request_type(call: Call, done: Mapping[str, Extraction]) -> Extraction:
    """The request type with the highest score (category default + cues)."""
    rules = call.rules
    category = done["category"]
    default = rules.categories[category.value].request_type
    scores: dict[str, float] = {default: rules.category_prior}
    evidence = []
    for h in (category.detail or {}).get("hits", ()):
        if h.cue.request_type:
            scores[h.cue.request_type] = scores.get(h.cue.request_type, 0.0) + rules.cue_prior
    seen: set[str] = set()
    cue_hits: dict[str, list[Hit]] = {}
    for h in call.hits_of("request_type"):
        if h.cue.phrase in seen:
            continue
        seen.add(h.cue.phrase)
        scores[h.cue.group] = scores.get(h.cue.group, 0.0) + h.cue.weight
        cue_hits.setdefault(h.cue.group, []).append(h)
    ranked = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0] != default))
    best, top = ranked[0]
    second = ranked[1][1] if len(ranked) > 1 else 0.0
    for h in sorted(cue_hits.get(best, ()), key=lambda h: -h.cue.weight)[:2]:
        evidence.append(call.evidence(h.cue.rule, h.start, h.end))
    if best == default and category.evidence:
        evidence.append(category.evidence[0])
    confidence = round(min(0.4 + 0.6 * (top - second) / max(top, 1.0), 0.95), 3)
    review = not evidence or (top - second) < 1.0
    return Extraction("request_type", best, evidence=tuple(evidence), confidence=confidence, review=review,
                      detail={"scores": scores})
