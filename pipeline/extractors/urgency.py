"""Urgency tier (emergency / urgent / normal) and the due time that follows from it.

The tier is the highest of:

- the winning category's default (``public_safety.fire`` → emergency, most others normal);
- the tier a matched cue of the winning category carries ("停水" → urgent, "煤气味" → emergency);
- the cues of ``urgency.yaml`` anywhere in the caller's words ("着火", "有人受伤", "家里进水" →
  emergency; "停电", "井盖丢了", "pothole" → urgent).

Negated cues ("不是着火", "nobody was hurt", "no smoke") do not count. Who is affected (an elderly
caller, a baby at home) does not change the tier by itself. ``due_at`` is the call's received time plus
the tier's limit (2 h / 24 h / 7 days by default).

A praise call is normal unless it names an emergency: the outage it thanks for is over.

Limits: the tier is read from words, not from how the caller sounds; "暖气有点凉" without a cue for a
real outage stays normal.

Example: "楼道里有很大的煤气味" → ``emergency``, due two hours after the call.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from pipeline.extractors.context import Call
from pipeline.extractors.registry import Extraction, extractor
from pipeline.extractors.rules import TIERS


@extractor("urgency", after=("category", "request_type"))
def extract_urgency(call: Call, done: Mapping[str, Extraction]) -> Iterable[Extraction]:
    """The urgency tier and ``due_at`` (received time + the tier's limit)."""
    category = done["category"]
    tier = call.rules.categories[category.value].urgency
    evidence = []
    sources = [h for h in (category.detail or {}).get("hits", ()) if h.cue.urgency]
    sources += call.hits_of("urgency")
    if done["request_type"].value == "praise":
        # thanks for a problem already solved ("上次帮我们解决了停水") is not an outage now
        tier = "normal"
        sources = [h for h in sources if (h.cue.urgency or h.cue.group) == "emergency"]
    best_hits = []
    for h in sources:
        level = h.cue.urgency or h.cue.group
        if TIERS[level] > TIERS[tier]:
            tier, best_hits = level, [h]
        elif level == tier and TIERS[level] > 0:
            best_hits.append(h)
    for h in best_hits[:2]:
        evidence.append(call.evidence(h.cue.rule, h.start, h.end))
    if not evidence and category.evidence and tier != "normal":
        evidence.append(category.evidence[0])
    confidence = 0.9 if evidence else (0.75 if category.value != "other" else 0.5)
    if tier == "normal" and category.evidence:
        evidence.append(category.evidence[0])
    due = call.received_at + call.rules.limits[tier]
    urgency = Extraction("urgency", tier, evidence=tuple(evidence), confidence=confidence,
                         review=category.value == "other" and tier == "normal" and not evidence)
    due_at = Extraction("due_at", due, evidence=tuple(evidence[:1]), confidence=confidence)
    return urgency, due_at
