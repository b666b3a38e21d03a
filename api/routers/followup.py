"""The callback loop (回访): the department's outcome and the citizen's rating per ticket, and the
per-department figures (``pipeline.followup`` defines them)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field, field_validator

from api.app import State
from api.auth import Operator, Supervisor
from api.schemas import ErrorRead
from pipeline import followup
from pipeline.storage.db import session_scope
from pipeline.storage.dispatch import RATING_LABELS, FollowupRow, Rating

router = APIRouter(tags=["follow-up"])

CHANGE_ERRORS: dict[int | str, dict[str, object]] = {
    404: {"model": ErrorRead, "description": "No such ticket"},
    409: {"model": ErrorRead, "description": "Not an approved ticket, or a time before the call or in the future"},
    422: {"model": ErrorRead, "description": "Malformed body"},
}
#: the longest range the statistics cover in one request
MAX_RANGE_DAYS = 366


class OutcomeCreate(BaseModel):
    resolved: bool = Field(description="Did the department resolve it (解决) or not (未解决)?")
    note: str | None = Field(default=None, max_length=followup.NOTE_MAX)
    reported_at: datetime | None = Field(
        default=None, description="When the department reported (ISO 8601; without an offset, the hotline's "
                                  "time zone). Default: now.")


class RatingCreate(BaseModel):
    rating: str = Field(description="satisfied / basically_satisfied / dissatisfied, or 满意 / 基本满意 / 不满意",
                        examples=["basically_satisfied", "满意"])
    note: str | None = Field(default=None, max_length=followup.NOTE_MAX)
    rated_at: datetime | None = Field(default=None, description="When the citizen was called back. Default: now.")

    @field_validator("rating")
    @classmethod
    def _known(cls, value: str) -> str:
        return followup.parse_rating(value).value


class FollowupRead(BaseModel):
    ticket_id: str
    resolved: bool | None
    outcome_note: str | None
    outcome_at: datetime | None
    first_outcome_at: datetime | None
    outcome_by: str | None
    responded_in_time: bool | None
    """Whether the first outcome came by the ticket's due time (``None`` before any outcome)."""
    due_at: datetime
    rating: Rating | None
    rating_label: str | None
    """满意 / 基本满意 / 不满意."""
    rating_note: str | None
    rated_at: datetime | None
    rated_by: str | None


class DepartmentStatsRead(BaseModel):
    department: str
    tickets: int
    responded: int
    resolved: int
    rated: int
    satisfied: int
    basically_satisfied: int
    dissatisfied: int
    response_rate: float | None
    """First outcome reported by the due time, over tickets."""
    resolution_rate: float | None
    """Latest outcome resolved, over tickets."""
    satisfaction_rate: float | None
    """满意 + 基本满意, over rated tickets."""


class DepartmentStatsList(BaseModel):
    date_from: date
    date_to: date
    timezone: str
    items: list[DepartmentStatsRead]
    total: DepartmentStatsRead


def _read(session, ticket_id: str, row: FollowupRow | None) -> FollowupRead:
    from pipeline.storage import repo

    ticket = repo.get_ticket(session, ticket_id=ticket_id)
    first = row.first_outcome_at if row else None
    rating = row.rating if row else None
    return FollowupRead(
        ticket_id=ticket_id, resolved=row.resolved if row else None, outcome_note=row.outcome_note if row else None,
        outcome_at=row.outcome_at if row else None, first_outcome_at=first, outcome_by=row.outcome_by if row else None,
        responded_in_time=None if first is None else first <= ticket.due_at, due_at=ticket.due_at,
        rating=rating, rating_label=RATING_LABELS[rating] if rating else None,
        rating_note=row.rating_note if row else None, rated_at=row.rated_at if row else None,
        rated_by=row.rated_by if row else None,
    )


def _stats(row: followup.DepartmentStats) -> DepartmentStatsRead:
    return DepartmentStatsRead(
        department=row.department, tickets=row.tickets, responded=row.responded, resolved=row.resolved,
        rated=row.rated, satisfied=row.satisfied, basically_satisfied=row.basically_satisfied,
        dissatisfied=row.dissatisfied, response_rate=row.response_rate, resolution_rate=row.resolution_rate,
        satisfaction_rate=row.satisfaction_rate,
    )


def _aware(value: datetime | None, zone: str) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=ZoneInfo(zone))


@router.post("/tickets/{ticket_id}/outcome", response_model=FollowupRead, responses=CHANGE_ERRORS,
             summary="Record the department's outcome: resolved or not, with a note and the time")
def post_outcome(ticket_id: str, body: OutcomeCreate, state: State, principal: Operator) -> FollowupRead:
    with session_scope(state.session_factory) as session:
        row = followup.record_outcome(
            session, ticket_id=ticket_id, resolved=body.resolved, note=body.note,
            reported_at=_aware(body.reported_at, state.settings.timezone), by=principal.name,
        )
        return _read(session, ticket_id, row)


@router.post("/tickets/{ticket_id}/rating", response_model=FollowupRead, responses=CHANGE_ERRORS,
             summary="Record the citizen's rating at the callback: 满意 / 基本满意 / 不满意")
def post_rating(ticket_id: str, body: RatingCreate, state: State, principal: Operator) -> FollowupRead:
    with session_scope(state.session_factory) as session:
        row = followup.record_rating(
            session, ticket_id=ticket_id, rating=body.rating, note=body.note,
            rated_at=_aware(body.rated_at, state.settings.timezone), by=principal.name,
        )
        return _read(session, ticket_id, row)


@router.get("/tickets/{ticket_id}/followup", response_model=FollowupRead, responses={404: {"model": ErrorRead}},
            summary="A ticket's outcome and rating so far")
def read_followup(ticket_id: str, state: State, principal: Operator) -> FollowupRead:
    with session_scope(state.session_factory) as session:
        return _read(session, ticket_id, followup.get_followup(session, ticket_id=ticket_id))


@router.get("/stats/departments", response_model=DepartmentStatsList,
            responses={422: {"model": ErrorRead, "description": "A range that ends before it starts, or too long"}},
            summary="Per department: tickets, response, resolution and satisfaction rates in a date range")
def department_stats(
    state: State, principal: Supervisor,
    date_from: Annotated[date | None, Query(alias="from", description="First day (hotline time zone); "
                                                                      "default: 29 days before `to`")] = None,
    date_to: Annotated[date | None, Query(alias="to", description="Last day, included; default: today")] = None,
) -> DepartmentStatsList:
    """Tickets are the approved or dispatched ones of calls received from the start of ``from`` to the end
    of ``to`` in the hotline's time zone."""
    zone = state.settings.timezone
    end_day = date_to or datetime.now(ZoneInfo(zone)).date()
    start_day = date_from or end_day - timedelta(days=29)
    if (end_day - start_day).days >= MAX_RANGE_DAYS:
        raise _bad_range(f"the range covers more than {MAX_RANGE_DAYS} days; ask for a shorter one")
    try:
        start, end = followup.date_range(start_day, end_day, zone)
    except ValueError as exc:
        raise _bad_range(str(exc)) from exc
    with session_scope(state.session_factory) as session:
        rows = followup.department_stats(session, start=start, end=end)
    return DepartmentStatsList(date_from=start_day, date_to=end_day, timezone=zone, items=[_stats(r) for r in rows],
                               total=_stats(followup.total_stats(rows)))


def _bad_range(message: str) -> RequestValidationError:
    return RequestValidationError([{"loc": ("query", "from"), "msg": message, "type": "value_error"}])
