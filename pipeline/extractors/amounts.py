"""Money amounts the caller says, in yuan or dollars (``numbers.money_amounts``), in order, no repeats.

"一百三十三万元" → 1330000, "定金三十万" → 300000, "八千块" → 8000, "$1,200" / "twelve hundred dollars"
→ 1200. Numbers without a currency or a money word nearby (ages, floors, households, phone digits) are
not amounts. The agent's words are not read.

Example: "交了两万定金，房款一共一百三十三万元" → ``[20000, 1330000]``.
"""

from __future__ import annotations

from collections.abc import Mapping

from pipeline.extractors.context import Call
from pipeline.extractors.registry import Extraction, extractor
from pipeline.text.numerals import money_amounts


@extractor("amounts")
def extract_amounts(call: Call, done: Mapping[str, Extraction]) -> Extraction:
    """Money amounts said by the caller."""
    view = call.caller_view
    values: list[float] = []
    evidence = []
    for amount in money_amounts(call.caller_folded, call.language):
        if amount.value in values:
            continue
        values.append(amount.value)
        s, e = view.span(amount.start, amount.end)
        evidence.append(call.evidence("amounts:money", s, e))
    return Extraction("amounts", tuple(values), evidence=tuple(evidence), confidence=0.85 if values else 0.7)
