"""Department: where the ticket is routed, from the category, the urgency and the district.

- ``public_safety.fire`` → 119; a gas call that is an emergency (a leak) → 119; other emergencies of
  a category listed in ``departments.yaml: emergency`` go to that number;
- ``public_safety.emergency`` → 110 for fights and crime ("打架", "持刀", "robbery"), else 120 when the
  caller speaks of injury or illness ("受伤", "昏迷", "not breathing"), else 119 for people trapped
  ("电梯困人", "trapped"); 110 when nothing says which;
- otherwise the category's template with ``{district}`` replaced by the district
  (``朝阳区住房和城乡建设委员会``), or by the city (``北京市住房和城乡建设委员会``) when no district was said;
  city-wide bodies (北京市自来水集团, 国网北京市电力公司, 北京燃气集团) need no district.

Limits: a call in the wrong category is routed wrongly; this module does not second-guess the category.

Example: category ``traffic.road`` in 朝阳区 → ``朝阳区交通委员会``.
"""

from __future__ import annotations

from collections.abc import Mapping

from pipeline.extractors.context import Call
from pipeline.extractors.registry import Extraction, extractor
from pipeline.extractors.rules import Rules


def route(rules: Rules, *, category: str, urgency: str, district: str | None,
          emergency_number: str | None = None) -> str:
    """The department of a ticket from its category, urgency and district (the module's rules).

    ``emergency_number`` is the 110 / 120 / 119 the call's words chose for ``public_safety.emergency``;
    without one that category goes to its configured number (110).

    >>> route(load_rules(), category="traffic.road", urgency="normal", district="朝阳区")
    '朝阳区交通委员会'
    """
    if category == "public_safety.emergency":
        return emergency_number or rules.emergency_routes.get(category, rules.crime_number)
    if category in rules.emergency_routes and (urgency == "emergency" or category == "public_safety.fire"):
        return rules.emergency_routes[category]
    return rules.categories[category].department.replace("{district}", district or rules.city_prefix)


@extractor("department", after=("category", "urgency", "location"))
def extract_department(call: Call, done: Mapping[str, Extraction]) -> Extraction:
    """The routing target (see the module docstring)."""
    rules = call.rules
    category = done["category"]
    urgency = done["urgency"].value
    district = done["district"].value if "district" in done else None
    code = category.value
    evidence = tuple(category.evidence[:1])
    if code == "public_safety.emergency":
        routes = call.hits_of("route")
        crime = [h for h in routes if h.cue.phrase in rules.crime_cues]
        medical = [h for h in routes if h.cue.phrase in rules.medical_cues]
        rescue = [h for h in routes if h.cue.phrase in rules.rescue_cues]
        chosen = crime or medical or rescue
        number = route(rules, category=code, urgency=urgency, district=district,
                       emergency_number=chosen[0].cue.group if chosen else None)
        if chosen:
            evidence = (call.evidence(f"department:{chosen[0].cue.phrase}", chosen[0].start, chosen[0].end),)
        return Extraction("department", number, evidence=evidence, confidence=0.85 if chosen else 0.6,
                          review=not chosen)
    value = route(rules, category=code, urgency=urgency, district=district)
    if code in rules.emergency_routes and (urgency == "emergency" or code == "public_safety.fire"):
        return Extraction("department", value, evidence=evidence + done["urgency"].evidence[:1], confidence=0.9)
    if "{district}" in rules.categories[code].department:
        confidence = min(category.confidence, 0.9) if district else min(category.confidence, 0.6)
        if district and "district" in done:
            evidence = evidence + done["district"].evidence[:1]
    else:
        confidence = min(category.confidence, 0.9)
    return Extraction("department", value, evidence=evidence, confidence=confidence)
