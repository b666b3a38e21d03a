"""The extractor registry: each field module registers its function here by name.

An extractor takes the prepared ``Call`` and the results so far (field name → ``Extraction``) and returns
one ``Extraction`` or several (the location extractor fills four fields). ``after`` names the extractors
whose results it reads; ``run_all`` runs them in an order that respects that.

Example::

    @extractor("urgency", after=("category",))
    def extract_urgency(call: Call, done: Mapping[str, Extraction]) -> Extraction: ...
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pipeline.errors import ExtractionError
from pipeline.extractors.context import Call
from pipeline.ticket import Evidence


@dataclass(frozen=True)
class Extraction:
    """One field's value with where it came from, how sure we are, and whether a person should look."""

    field: str
    value: Any
    evidence: tuple[Evidence, ...] = ()
    confidence: float = 0.0
    review: bool = False
    detail: Mapping[str, Any] | None = None
    """extra facts for later extractors (e.g. the category's runner-up), not part of the ticket"""


ExtractorFn = Callable[[Call, Mapping[str, Extraction]], "Extraction | Iterable[Extraction]"]


@dataclass(frozen=True)
class Registered:
    name: str
    fn: ExtractorFn
    after: tuple[str, ...]


EXTRACTORS: dict[str, Registered] = {}


def extractor(name: str, *, after: tuple[str, ...] = ()) -> Callable[[ExtractorFn], ExtractorFn]:
    """Register ``fn`` under ``name``; it runs after the extractors named in ``after``."""

    def register(fn: ExtractorFn) -> ExtractorFn:
        EXTRACTORS[name] = Registered(name, fn, tuple(after))
        return fn

    return register


_ORDER: dict[tuple[str, ...], list[Registered]] = {}


def run_order() -> list[Registered]:
    """Registered extractors, each after the ones it reads (registration order otherwise)."""
    key = tuple(EXTRACTORS)
    cached = _ORDER.get(key)
    if cached is not None and all(EXTRACTORS[r.name] is r for r in cached):
        return cached
    done: set[str] = set()
    order: list[Registered] = []
    pending = list(EXTRACTORS.values())
    while pending:
        ready = [r for r in pending if all(a in done or a not in EXTRACTORS for a in r.after)]
        if not ready:
            raise ExtractionError(f"extractors depend on each other in a cycle: {[r.name for r in pending]}")
        for r in ready:
            order.append(r)
            done.add(r.name)
        pending = [r for r in pending if r.name not in done]
    _ORDER[key] = order
    return order


def run_all(call: Call) -> dict[str, Extraction]:
    """Run every registered extractor over ``call``; results by field name."""
    results: dict[str, Extraction] = {}
    for reg in run_order():
        out = reg.fn(call, results)
        for ex in (out,) if isinstance(out, Extraction) else out:
            results[ex.field] = ex
    return results
