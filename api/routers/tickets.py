"""``/tickets``: the drafted tickets, filtered and paged, and each with its evidence."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query

from api.app import State
from api.auth import Role, require_role
from api.schemas import ErrorRead, TicketList, TicketRead, TicketSummary
from pipeline.storage import repo
from pipeline.storage.db import session_scope
from pipeline.ticket import TicketStatus

router = APIRouter(tags=["tickets"], dependencies=[Depends(require_role(Role.OPERATOR))])


@router.get("/tickets", response_model=TicketList, summary="List tickets, newest first")
def list_tickets(
    state: State,
    status: TicketStatus | None = None,
    urgency: Literal["emergency", "urgent", "normal"] | None = None,
    district: Annotated[str | None, Query(description="A district as written, e.g. 朝阳区")] = None,
    category: Annotated[str | None, Query(
        description="A category code, or a group ending in a dot (housing.)")] = None,
    call_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=repo.MAX_PAGE)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> TicketList:
    with session_scope(state.session_factory) as session:
        rows, total = repo.list_tickets(session, status=status, urgency=urgency, district=district,
                                        category=category, call_id=call_id, limit=limit, offset=offset)
        items = [TicketSummary.model_validate(row) for row in rows]
    return TicketList(items=items, total=total, limit=limit, offset=offset)


@router.get(
    "/tickets/{ticket_id}", response_model=TicketRead, responses={404: {"model": ErrorRead}},
    summary="A ticket: every field, with evidence, confidence and what needs review",
)
def read_ticket(ticket_id: str, state: State) -> TicketRead:
    with session_scope(state.session_factory) as session:
        return TicketRead.model_validate(repo.get_ticket(session, ticket_id=ticket_id))
