"""Which calls a reprocess run covers: received between two times, matching filters on the call or its
current ticket; calls still in flight are never selected."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, exists, select

from pipeline.storage import repo
from pipeline.storage.calls import CallRow, CallStatus, TranscriptRow

logger = logging.getLogger(__name__)

STAGES = ("extract", "transcribe")


#: ``--where`` keys: on the call's current ticket, or on the call itself
TICKET_FILTERS = ("category", "district", "street", "urgency", "request_type", "department", "ticket_status")


CALL_FILTERS = ("language", "status", "line")


WHERE_KEYS = TICKET_FILTERS + CALL_FILTERS


NOT_SELECTED = (CallStatus.QUEUED, CallStatus.PROCESSING)


@dataclass(frozen=True)
class Selection:
    """Which calls a run covers: received in ``[since, until)``, matching every ``where`` filter.

    ``where`` keys: ``category`` (a code, or a group ending in ``.``), ``district``, ``street``,
    ``urgency``, ``request_type``, ``department``, ``ticket_status`` — on the call's current ticket;
    ``language``, ``status``, ``line`` — on the call.
    """

    since: datetime | None = None
    until: datetime | None = None
    where: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.where) - set(WHERE_KEYS))
        if unknown:
            raise ValueError(f"unknown filter {', '.join(unknown)}; known: {', '.join(WHERE_KEYS)}")
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                raise ValueError(f"{name} must carry a time zone")
        if self.since and self.until and self.since >= self.until:
            raise ValueError("since must be before until")

    def to_dict(self) -> dict[str, Any]:
        return {"since": self.since.isoformat() if self.since else None,
                "until": self.until.isoformat() if self.until else None, "where": dict(self.where)}


def parse_where(pairs: Iterable[str]) -> dict[str, str]:
    """``["category=housing.", "district=朝阳区"]`` → ``{"category": "housing.", "district": "朝阳区"}``.

    >>> parse_where(["urgency=urgent"])
    {'urgency': 'urgent'}
    """
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key or not value:
            raise ValueError(f"filter {pair!r} is not KEY=VALUE")
        if key not in WHERE_KEYS:
            raise ValueError(f"unknown filter {key!r}; known: {', '.join(WHERE_KEYS)}")
        out[key] = value
    return out


def parse_time(text: str, zone: str) -> datetime:
    """An ISO 8601 date or time; without an offset it is read in the hotline's time zone.

    >>> parse_time("2026-01-02", "Asia/Shanghai").isoformat()
    '2026-01-02T00:00:00+08:00'
    """
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"{text!r} is not an ISO 8601 date or time") from exc
    return value if value.tzinfo is not None else value.replace(tzinfo=ZoneInfo(zone))


def select_calls(stage: str, selection: Selection) -> Select[Any]:
    """The query for the ids of the calls a run of ``stage`` over ``selection`` covers, oldest first."""
    query = select(CallRow.id).where(CallRow.status.not_in(NOT_SELECTED))
    if stage == "extract":
        query = query.where(exists().where(TranscriptRow.call_id == CallRow.id))
    if selection.since is not None:
        query = query.where(CallRow.received_at >= selection.since)
    if selection.until is not None:
        query = query.where(CallRow.received_at < selection.until)
    where = dict(selection.where)
    if any(key in TICKET_FILTERS for key in where):
        current = repo.current_tickets()
        query = query.join(current, current.c.call_id == CallRow.id)
        for key in TICKET_FILTERS:
            if key not in where:
                continue
            value = where[key]
            column = current.c.status if key == "ticket_status" else current.c[key]
            if key == "category" and value.endswith("."):
                query = query.where(column.startswith(value, autoescape=True))
            else:
                query = query.where(column == value)
    for key in CALL_FILTERS:
        if key in where:
            query = query.where(getattr(CallRow, key) == where[key])
    return query.order_by(CallRow.received_at, CallRow.id)
