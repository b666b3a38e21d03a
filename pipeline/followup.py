"""The callback loop (回访): what the department reports back, what the citizen says of it, and the
per-department figures the hotline is judged by.

For each approved ticket the hotline records

* the department's **outcome**: resolved or not, a note, and when it was reported. The first report's
  time is kept apart (``first_outcome_at``), so correcting an outcome later does not move it;
* the citizen's **rating** at the callback: ``satisfied`` 满意, ``basically_satisfied`` 基本满意 or
  ``dissatisfied`` 不满意 (either the code or the Chinese word is accepted).

``department_stats`` counts, per department, the approved or dispatched tickets of calls received in a
date range and

* **response rate**: tickets whose first outcome was reported no later than the ticket's ``due_at``
  (the urgency's time limit: 2 h, 24 h, 7 days), over all tickets;
* **resolution rate**: tickets whose latest outcome is resolved, over all tickets;
* **satisfaction rate**: tickets rated 满意 or 基本满意, over the tickets that were rated.

A rate is ``None`` when there is nothing to divide by.

Example::

    with session_scope(factory) as session:
        record_outcome(session, ticket_id=tid, resolved=True, note="已修复", by="operator 7")
        record_rating(session, ticket_id=tid, rating="基本满意", by="operator 7")
        stats = department_stats(session, start=..., end=...)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, case, func, select
from sqlalchemy.orm import Session

from pipeline.errors import Conflict
from pipeline.storage import repo
from pipeline.storage.base import utcnow
from pipeline.storage.calls import CallRow
from pipeline.storage.dispatch import RATING_LABELS, FollowupRow, Rating
from pipeline.storage.tickets import TicketRow
from pipeline.ticket import TicketStatus

__all__ = [
    "DepartmentStats", "FOLLOWABLE", "RATING_LABELS", "Rating", "date_range", "department_stats", "get_followup",
    "parse_rating", "record_outcome", "record_rating",
]

logger = logging.getLogger(__name__)

#: tickets that went (or are going) to a department; drafts and rejected tickets have no callback
FOLLOWABLE = (TicketStatus.APPROVED, TicketStatus.DISPATCHED)
#: how far ahead of this host's clock a reported time may be (clocks differ a little)
CLOCK_SLACK = timedelta(minutes=5)
NOTE_MAX = 2000
_BY_LABEL = {label: rating for rating, label in RATING_LABELS.items()}


@dataclass(frozen=True)
class DepartmentStats:
    department: str
    tickets: int
    responded: int
    """Tickets whose first outcome was reported by their ``due_at``."""
    resolved: int
    rated: int
    satisfied: int
    basically_satisfied: int
    dissatisfied: int

    @property
    def response_rate(self) -> float | None:
        return _rate(self.responded, self.tickets)

    @property
    def resolution_rate(self) -> float | None:
        return _rate(self.resolved, self.tickets)

    @property
    def satisfaction_rate(self) -> float | None:
        return _rate(self.satisfied + self.basically_satisfied, self.rated)


def parse_rating(value: str | Rating) -> Rating:
    """A rating from its code or its Chinese word; ``ValueError`` for anything else.

    >>> parse_rating("基本满意")
    <Rating.BASICALLY_SATISFIED: 'basically_satisfied'>
    >>> parse_rating("dissatisfied").value
    'dissatisfied'
    """
    if isinstance(value, Rating):
        return value
    text = str(value).strip()
    if text in _BY_LABEL:
        return _BY_LABEL[text]
    try:
        return Rating(text.lower())
    except ValueError:
        known = ", ".join(f"{r.value} ({label})" for r, label in RATING_LABELS.items())
        raise ValueError(f"unknown rating {value!r}; one of {known}") from None


def get_followup(session: Session, *, ticket_id: str) -> FollowupRow | None:
    """The ticket's follow-up record, or ``None`` before anything was recorded (``NotFound`` for an
    unknown ticket)."""
    repo.get_ticket(session, ticket_id=ticket_id)
    return session.get(FollowupRow, ticket_id)


def record_outcome(
    session: Session, *, ticket_id: str, resolved: bool, note: str | None = None,
    reported_at: datetime | None = None, by: str | None = None,
) -> FollowupRow:
    """Record the department's outcome for a ticket (replacing an earlier one; the first report's time
    stays). ``reported_at`` defaults to now. ``Conflict`` when the ticket was never approved or the time
    is before the call came in or in the future."""
    ticket = _followable(session, ticket_id)
    now = utcnow()
    when = _checked_time(session, ticket, reported_at or now, now=now, what="outcome")
    row = _row_for(session, ticket_id)
    row.resolved = bool(resolved)
    row.outcome_note = _clean(note)
    row.outcome_at = when
    row.outcome_by = by
    if row.first_outcome_at is None or when < row.first_outcome_at:
        row.first_outcome_at = when
    row.updated_at = now
    session.flush()
    logger.info("call %s: ticket %s outcome %s reported at %s", ticket.call_id, ticket_id,
                "resolved" if resolved else "not resolved", when.isoformat())
    return row


def record_rating(
    session: Session, *, ticket_id: str, rating: str | Rating, note: str | None = None,
    rated_at: datetime | None = None, by: str | None = None,
) -> FollowupRow:
    """Record the citizen's rating at the callback (replacing an earlier one). ``ValueError`` for an
    unknown rating, ``Conflict`` as for ``record_outcome``."""
    value = parse_rating(rating)
    ticket = _followable(session, ticket_id)
    now = utcnow()
    when = _checked_time(session, ticket, rated_at or now, now=now, what="rating")
    row = _row_for(session, ticket_id)
    row.rating = value
    row.rating_note = _clean(note)
    row.rated_at = when
    row.rated_by = by
    row.updated_at = now
    session.flush()
    logger.info("call %s: ticket %s rated %s", ticket.call_id, ticket_id, value.value)
    return row


def date_range(start: date, end: date, zone: str) -> tuple[datetime, datetime]:
    """The instants from the start of ``start`` to the end of ``end`` (inclusive days) in ``zone``.

    >>> [t.isoformat() for t in date_range(date(2026, 11, 1), date(2026, 11, 30), "Asia/Shanghai")]
    ['2026-11-01T00:00:00+08:00', '2026-12-01T00:00:00+08:00']
    """
    if end < start:
        raise ValueError(f"the range ends ({end}) before it starts ({start})")
    tz = ZoneInfo(zone)
    return datetime.combine(start, time(), tz), datetime.combine(end + timedelta(days=1), time(), tz)


def department_stats(session: Session, *, start: datetime, end: datetime) -> list[DepartmentStats]:
    """Per department, the figures of the module docstring for calls received in ``[start, end)``;
    departments in name order."""
    f = FollowupRow
    responded = and_(f.first_outcome_at.is_not(None), f.first_outcome_at <= TicketRow.due_at)

    def count_if(condition: ColumnElement[bool]) -> ColumnElement[int]:
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    query = (
        select(
            TicketRow.department,
            func.count(TicketRow.id),
            count_if(responded),
            count_if(f.resolved.is_(True)),
            count_if(f.rating.is_not(None)),
            count_if(f.rating == Rating.SATISFIED),
            count_if(f.rating == Rating.BASICALLY_SATISFIED),
            count_if(f.rating == Rating.DISSATISFIED),
        )
        .join(CallRow, CallRow.id == TicketRow.call_id)
        .outerjoin(f, f.ticket_id == TicketRow.id)
        .where(TicketRow.status.in_(FOLLOWABLE), CallRow.received_at >= start, CallRow.received_at < end)
        .group_by(TicketRow.department)
        .order_by(TicketRow.department)
    )
    return [DepartmentStats(department=r[0], tickets=int(r[1]), responded=int(r[2]), resolved=int(r[3]),
                            rated=int(r[4]), satisfied=int(r[5]), basically_satisfied=int(r[6]),
                            dissatisfied=int(r[7]))
            for r in session.execute(query)]


def total_stats(rows: list[DepartmentStats]) -> DepartmentStats:
    """All departments together."""
    return DepartmentStats(
        department="", tickets=sum(r.tickets for r in rows), responded=sum(r.responded for r in rows),
        resolved=sum(r.resolved for r in rows), rated=sum(r.rated for r in rows),
        satisfied=sum(r.satisfied for r in rows), basically_satisfied=sum(r.basically_satisfied for r in rows),
        dissatisfied=sum(r.dissatisfied for r in rows),
    )


def _followable(session: Session, ticket_id: str) -> TicketRow:
    ticket = repo.get_ticket(session, ticket_id=ticket_id)
    if ticket.status not in FOLLOWABLE:
        raise Conflict(f"ticket {ticket_id} is {ticket.status.value}; only approved tickets are followed up",
                       stage="followup")
    return ticket


def _row_for(session: Session, ticket_id: str) -> FollowupRow:
    row = session.get(FollowupRow, ticket_id)
    if row is None:
        row = FollowupRow(ticket_id=ticket_id, created_at=utcnow(), updated_at=utcnow())
        session.add(row)
    return row


def _checked_time(session: Session, ticket: TicketRow, when: datetime, *, now: datetime, what: str) -> datetime:
    if when.tzinfo is None:
        raise Conflict(f"the {what} time {when.isoformat()} has no time zone", stage="followup")
    received = repo.get_call(session, call_id=ticket.call_id).received_at
    if when < received:
        raise Conflict(f"the {what} time {when.isoformat()} is before the call came in "
                       f"({received.isoformat()})", stage="followup")
    if when > now + CLOCK_SLACK:
        raise Conflict(f"the {what} time {when.isoformat()} is in the future", stage="followup")
    return when


def _clean(note: str | None) -> str | None:
    text = (note or "").strip()
    return text[:NOTE_MAX] or None


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None
