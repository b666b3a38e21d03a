"""``/tickets/{id}/dispatches``: where each version of a ticket went, and a supervisor's retry."""

from __future__ import annotations

import logging
from datetime import datetime

from fastapi import APIRouter, BackgroundTasks
from pydantic import BaseModel, ConfigDict

from api.app import ApiState, State
from api.auth import Operator, Supervisor
from api.schemas import ErrorRead
from pipeline.dispatch.service import list_dispatches, prepare_retry
from pipeline.errors import PipelineError
from pipeline.storage.db import session_scope
from pipeline.storage.dispatch import DispatchStatus

logger = logging.getLogger(__name__)

router = APIRouter(tags=["dispatch"])


class DispatchRead(BaseModel):
    """One hand-off of one ticket version to one receiving system."""

    model_config = ConfigDict(from_attributes=True)

    ticket_id: str
    version: int
    connector: str
    status: DispatchStatus
    attempts: int
    idempotency_key: str
    last_error: str | None
    """Why the last attempt did not get through (kept after a later success is recorded as ``None``)."""
    last_status_code: int | None
    external_ref: str | None
    """The receiving system's id for the ticket."""
    external_url: str | None
    created_at: datetime
    updated_at: datetime
    last_attempt_at: datetime | None
    sent_at: datetime | None


class DispatchList(BaseModel):
    items: list[DispatchRead]


class DispatchRetry(BaseModel):
    """Answer to a retry: the version queued again, and its job (``None`` when sent in-process)."""

    ticket_id: str
    version: int
    connector: str
    job_id: str | None
    status: DispatchStatus


@router.get(
    "/tickets/{ticket_id}/dispatches", response_model=DispatchList, responses={404: {"model": ErrorRead}},
    summary="A ticket's hand-offs onward: status, attempts, last error, external id and link",
)
def read_dispatches(ticket_id: str, state: State, principal: Operator) -> DispatchList:
    with session_scope(state.session_factory) as session:
        rows = list_dispatches(session, ticket_id=ticket_id)
        return DispatchList(items=[DispatchRead.model_validate(row) for row in rows])


@router.post(
    "/tickets/{ticket_id}/dispatch/retry", status_code=202, response_model=DispatchRetry,
    responses={404: {"model": ErrorRead}, 409: {"model": ErrorRead, "description": "Not approved, or already sent"},
               503: {"model": ErrorRead}},
    summary="Send the current version of an approved ticket again after a failed dispatch",
)
def retry_dispatch(ticket_id: str, state: State, principal: Supervisor, background: BackgroundTasks) -> DispatchRetry:
    """The failed dispatch goes back to ``pending`` and a new job is queued (its attempts go on counting).
    A version already sent is refused (409): the receiving system has it."""
    settings = state.settings
    with session_scope(state.session_factory) as session:
        version, _row = prepare_retry(settings, session, ticket_id=ticket_id)
    logger.info("ticket %s: dispatch retry of v%d asked by %s", ticket_id, version, principal.name)
    job_id = None
    if state.redis is None:
        background.add_task(_dispatch_inline, state, ticket_id, version)
    else:
        from workers.queues import enqueue_dispatch

        job_id = enqueue_dispatch(state.redis, ticket_id=ticket_id, version=version, again=True)
    return DispatchRetry(ticket_id=ticket_id, version=version, connector=settings.dispatch.connector,
                         job_id=job_id, status=DispatchStatus.PENDING)


def _dispatch_inline(state: ApiState, ticket_id: str, version: int) -> None:
    from pipeline.dispatch.service import dispatch_ticket

    try:
        dispatch_ticket(state.settings, session_factory=state.session_factory, ticket_id=ticket_id, version=version)
    except PipelineError as exc:  # recorded on the dispatch row; nothing to answer to
        logger.warning("ticket %s: inline dispatch failed: %s", ticket_id, exc)
