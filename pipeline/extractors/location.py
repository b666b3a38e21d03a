"""Location: district, street (street office or town), community and address of the caller's problem.

The caller's speech alone (never the agent's questions) goes to the project gazetteer
(``gazetteer.Gazetteer.resolve``), which knows Beijing's districts, street offices, towns and
communities, fills a district from a street when the caller names only the street, and reports
conflicts (a street said with the wrong district). This module turns its answer into four fields with
evidence mapped back to offsets of the whole call text.

Review flags: a conflict flags every place field; a district inferred from a street is flagged when
the gazetteer's confidence is low; no district at all is flagged for Mandarin calls.

If the gazetteer module cannot be imported, the 16 district names of ``departments.yaml`` are still
found (district only), so the rest of the ticket keeps working.

Example: "我是海淀区中关村街道的居民" → district ``海淀区``, street ``中关村街道``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

from pipeline.extractors.context import Call
from pipeline.extractors.registry import Extraction, extractor

logger = logging.getLogger(__name__)

PLACE_FIELDS = ("district", "street", "community", "address")


@lru_cache(maxsize=1)
def _gazetteer() -> Any | None:
    try:
        from pipeline.extractors.gazetteer import Gazetteer
    except ImportError:
        logger.warning("gazetteer module not available; locations are read as district names only")
        return None
    return Gazetteer.load()


def gazetteer_version() -> str | None:
    """The gazetteer data version, or None when the gazetteer module is not available."""
    gazetteer = _gazetteer()
    return str(gazetteer.version) if gazetteer is not None else None


def _fallback(call: Call) -> list[Extraction]:
    view = call.caller_view.text
    best = None
    for name in call.rules.districts:
        i = view.find(name)
        if i >= 0 and (best is None or i < best[1]):
            best = (name, i)
    out = []
    if best:
        s, e = call.caller_view.span(best[1], best[1] + len(best[0]))
        out.append(Extraction("district", best[0], evidence=(call.evidence("location:district_name", s, e),),
                              confidence=0.8))
    else:
        out.append(Extraction("district", None, confidence=0.4, review=call.language == "zh"))
    out += [Extraction(name, None, confidence=0.4) for name in PLACE_FIELDS[1:]]
    return out


@extractor("location")
def extract_location(call: Call, done: Mapping[str, Extraction]) -> Iterable[Extraction]:
    """District, street, community and address from the caller's words (via the gazetteer)."""
    gazetteer = _gazetteer()
    if gazetteer is None:
        return _fallback(call)
    view = call.caller_view
    location = gazetteer.resolve(view.text, language=call.language)
    matches = list(getattr(location, "matches", ()) or ())
    conflict = bool(getattr(location, "conflict", False))
    inferred = bool(getattr(location, "district_inferred", False))
    confidence = float(getattr(location, "confidence", 0.8) or 0.0)
    out = []
    for name in PLACE_FIELDS:
        value = getattr(location, name, None)
        if not value:
            review = name == "district" and call.language == "zh"
            out.append(Extraction(name, None, confidence=0.4, review=review))
            continue
        evidence = []
        source = next((m for m in matches if m.kind == name and m.name == value), None)
        if source is None and name == "district" and inferred:
            source = next((m for m in matches if m.district == value), None)
        if source is not None:
            s, e = view.span(source.start, source.end)
            rule = f"location:{source.rule}" + (":inferred" if name == "district" and inferred else "")
            evidence.append(call.evidence(rule, s, e))
        else:
            i = view.text.find(value)
            if i >= 0:
                s, e = view.span(i, i + len(value))
                evidence.append(call.evidence(f"location:{name}", s, e))
        field_conf = confidence * (0.8 if name == "district" and inferred else 1.0)
        review = conflict or not evidence or field_conf < 0.5
        out.append(Extraction(name, value, evidence=tuple(evidence), confidence=round(field_conf, 3),
                              review=review))
    return out
