"""Vulnerable people the caller mentions: ``elderly``, ``child``, ``disabled``, ``pregnant`` (sorted).

Cues of ``vulnerable.yaml`` in the caller's words ("家里有老人", "刚出生的孩子", "坐轮椅", "孕妇",
"my 80-year-old mother", "wheelchair", "pregnant"), plus ages: 60 and over → elderly, under 14 → child
("七十多岁", "八旬", "孩子才三岁", "in her eighties"). In calls about schools, "儿子 / 女儿 / my son" count
as a child. Negated cues ("家里没有老人", "no kids") do not count.

Limits: anyone mentioned counts, not only the people affected ("楼下大爷天天放音乐" gives elderly);
adult children outside school calls are not children.

Example: "家里有刚出生的孩子，老人也七十多了" → ``["child", "elderly"]``.
"""

from __future__ import annotations

from collections.abc import Mapping

from pipeline.extractors.context import Call
from pipeline.extractors.registry import Extraction, extractor
from pipeline.text.numerals import ages
from pipeline.ticket import Evidence


@extractor("vulnerable", after=("category",))
def extract_vulnerable(call: Call, done: Mapping[str, Extraction]) -> Extraction:
    """Sorted groups of vulnerable people mentioned by the caller."""
    found: dict[str, list[Evidence]] = {}
    for h in call.hits_of("vulnerable"):
        found.setdefault(h.cue.group, []).append(call.evidence(h.cue.rule, h.start, h.end))
    if done["category"].value == "education.school":
        for h in call.hits_of("school_child"):
            found.setdefault("child", []).append(call.evidence("vulnerable:school_child:" + h.cue.phrase,
                                                               h.start, h.end))
    view = call.caller_view
    for age in ages(call.caller_folded, call.language):
        group = None
        if age.years >= call.rules.elderly_age:
            group = "elderly"
        elif age.years < call.rules.child_age:
            group = "child"
        if group:
            s, e = view.span(age.start, age.end)
            found.setdefault(group, []).append(call.evidence(f"vulnerable:age:{age.years}", s, e))
    groups = tuple(sorted(found))
    evidence = tuple(ev for g in groups for ev in found[g][:2])
    return Extraction("vulnerable", groups, evidence=evidence, confidence=0.85 if groups else 0.7)
