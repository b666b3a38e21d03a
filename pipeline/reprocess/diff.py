"""What a run changed: the compared fields of a ticket before and after, field by field."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from datetime import tzinfo
from typing import Any

from pipeline.ticket import FIELDS, TicketDraft

logger = logging.getLogger(__name__)

#: the fields compared for the diff report
DIFF_FIELDS: tuple[str, ...] = (*FIELDS, "needs_review")


# ------------------------------------------------------------------------------------------ comparing
def _plain_amounts(values: Iterable[Any]) -> list[Any]:
    return [int(a) if float(a).is_integer() else a for a in values or ()]


def values_from_draft(draft: TicketDraft) -> dict[str, Any]:
    """The compared fields of a draft, as the ticket's JSON form shows them."""
    data = draft.to_dict()
    return {name: data[name] for name in DIFF_FIELDS}


def values_from_row(row: Mapping[str, Any], zone: tzinfo) -> dict[str, Any]:
    """The compared fields of a stored ticket (a mapping of its columns), in the same form."""
    values = {name: row[name] for name in DIFF_FIELDS}
    values["due_at"] = row["due_at"].astimezone(zone).isoformat() if row["due_at"] else None
    values["vulnerable"] = sorted(row["vulnerable"] or ())
    values["amounts"] = _plain_amounts(row["amounts"] or ())
    values["needs_review"] = list(row["needs_review"] or ())
    return values


def diff_values(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    """``(field, old, new)`` for every compared field whose value differs (all set fields when no old)."""
    out = []
    for name in DIFF_FIELDS:
        before = old.get(name) if old is not None else None
        after = new.get(name)
        if old is None and after in (None, "", []):
            continue
        if before != after:
            out.append((name, before, after))
    return out


# -------------------------------------------------------------------------------------------- reports
def to_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)
