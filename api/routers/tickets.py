"""``/tickets``: the drafted tickets for review: find, read with transcript and evidence, edit, approve,
reject, and listen to the call. Every route needs an operator (or supervisor) key."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, BackgroundTasks, Depends, FastAPI, Header, Query, Request
from fastapi.responses import FileResponse, JSONResponse

from api.app import ApiState, State
from api.auth import Operator, Role, require_role
from api.errors import error_body
from api.schemas import (
    AuditEntry,
    ErrorRead,
    ReviewDecision,
    SegmentRead,
    TicketDispatch,
    TicketList,
    TicketRead,
    TicketSummary,
    TicketTranscript,
    TicketUpdate,
)
from pipeline import review
from pipeline.dispatch.service import latest_dispatch
from pipeline.errors import PipelineError
from pipeline.keys import Principal
from pipeline.storage import repo
from pipeline.storage.db import session_scope
from pipeline.storage.tickets import TicketRow
from pipeline.ticket import TicketStatus

logger = logging.getLogger(__name__)

router = APIRouter(tags=["tickets"], dependencies=[Depends(require_role(Role.OPERATOR))])

CHANGE_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorRead}, 409: {"model": ErrorRead, "description": "Not in review, or changed meanwhile"},
    422: {"model": ErrorRead, "description": "A value the ticket contract does not allow"},
    503: {"model": ErrorRead, "description": "Database or job queue unavailable; retry later"},
}


@router.get("/tickets", response_model=TicketList,
            summary="List tickets: most urgent first, then the earliest due (or newest first)")
def list_tickets(
    state: State,
    status: TicketStatus | None = None,
    urgency: Literal["emergency", "urgent", "normal"] | None = None,
    district: Annotated[str | None, Query(description="A district as written, e.g. 朝阳区")] = None,
    category: Annotated[str | None, Query(
        description="A category code, or a group ending in a dot (housing.)")] = None,
    call_id: str | None = None,
    received_from: Annotated[datetime | None, Query(description="Calls received at or after (ISO 8601)")] = None,
    received_to: Annotated[datetime | None, Query(description="Calls received before (ISO 8601)")] = None,
    due_from: Annotated[datetime | None, Query(description="Due at or after (ISO 8601)")] = None,
    due_to: Annotated[datetime | None, Query(description="Due before (ISO 8601)")] = None,
    q: Annotated[str | None, Query(max_length=200, description="Text in the summary, address or transcript")] = None,
    sort: Literal["urgency", "newest"] = "urgency",
    limit: Annotated[int, Query(ge=1, le=repo.MAX_PAGE)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> TicketList:
    zone = ZoneInfo(state.settings.timezone)
    with session_scope(state.session_factory) as session:
        rows, total = repo.list_tickets(
            session, status=status, urgency=urgency, district=district, category=category, call_id=call_id,
            received_from=_aware(received_from, zone), received_to=_aware(received_to, zone),
            due_from=_aware(due_from, zone), due_to=_aware(due_to, zone), text=q, order=sort,
            limit=limit, offset=offset,
        )
        items = [TicketSummary.model_validate(row) for row in rows]
    return TicketList(items=items, total=total, limit=limit, offset=offset)


def _aware(value: datetime | None, zone: ZoneInfo) -> datetime | None:
    """Times without an offset are the hotline's local time."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=zone)


def ticket_detail(session: Any, ticket: TicketRow) -> TicketRead:
    """Everything the review page and API clients show of a ticket."""
    out = TicketRead.model_validate(ticket)
    out.received_at = ticket.call.received_at
    out.audio_url = f"/tickets/{ticket.id}/audio"
    transcript = None
    if ticket.transcript_id:
        from pipeline.storage.calls import TranscriptRow

        transcript = session.get(TranscriptRow, ticket.transcript_id)
    transcript = transcript or repo.find_current_transcript(session, call_id=ticket.call_id)
    if transcript is not None:
        segments, pos = [], 0
        for i, seg in enumerate(transcript.segments or ()):
            text = str(seg.get("text") or "")
            segments.append(SegmentRead(
                index=i, start=float(seg.get("start") or 0.0), end=float(seg.get("end") or 0.0),
                speaker=str(seg.get("speaker") or "mixed"), text=text, start_char=pos, end_char=pos + len(text),
            ))
            pos += len(text) + 1  # segments are joined by one space (pipeline.transcript)
        out.transcript = TicketTranscript(id=transcript.id, language=transcript.language, text=transcript.text,
                                          duration_s=transcript.duration_s, segments=segments)
    out.audit = [AuditEntry.model_validate(row) for row in review.list_audit(session, ticket_id=ticket.id)]
    dispatch = latest_dispatch(session, ticket_id=ticket.id)
    out.dispatch = TicketDispatch.model_validate(dispatch) if dispatch is not None else None
    return out


@router.get(
    "/tickets/{ticket_id}", response_model=TicketRead, responses={404: {"model": ErrorRead}},
    summary="A ticket: every field with its evidence, the dialogue by speaker, the audit trail, where it went",
)
def read_ticket(ticket_id: str, state: State) -> TicketRead:
    with session_scope(state.session_factory) as session:
        return ticket_detail(session, repo.get_ticket(session, ticket_id=ticket_id))


def _actor(principal: Principal) -> review.Actor:
    return review.Actor(key_id=principal.key_id, name=principal.name)


def _if_match(value: str | None) -> int | None:
    """The version in an ``If-Match`` header (``"3"``, ``3`` or ``W/"3"``), if any."""
    if not value:
        return None
    text = value.strip().removeprefix("W/").strip('"')
    if not text.isdigit():
        raise review.InvalidEdit(f"If-Match: {value!r} is not a ticket version")
    return int(text)


@router.patch(
    "/tickets/{ticket_id}", response_model=TicketRead, responses=CHANGE_ERRORS,
    summary="Edit fields of a ticket in review (audited; the version goes up by one)",
)
def edit_ticket(
    ticket_id: str, body: TicketUpdate, state: State, principal: Operator,
    if_match: Annotated[str | None, Header(description="The version edited (409 when it changed since)")] = None,
) -> TicketRead:
    """Only the fields sent are changed. A changed urgency moves the due time and a changed category,
    district or urgency re-routes the department, unless the same request sets those too."""
    raw = body.model_dump(exclude_unset=True)
    zone = ZoneInfo(state.settings.timezone)
    with session_scope(state.session_factory) as session:
        ticket = repo.get_ticket(session, ticket_id=ticket_id)
        changes = review.validate_changes(raw, language=ticket.language, zone=zone)
        ticket = review.edit_ticket(session, ticket_id=ticket_id, changes=changes, actor=_actor(principal),
                                    expected_version=_if_match(if_match), zone=zone)
        return ticket_detail(session, ticket)


@router.post(
    "/tickets/{ticket_id}/approve", response_model=TicketRead, responses=CHANGE_ERRORS,
    summary="Approve a ticket: it is queued for dispatch to the ticket system",
)
def approve_ticket(ticket_id: str, state: State, principal: Operator, background: BackgroundTasks,
                   body: ReviewDecision | None = None) -> TicketRead:
    """Approving an approved ticket again changes nothing and queues nothing new (the dispatch job of a
    version is one job). When the queue cannot be reached the approval is not kept (503): the ticket
    stays in review rather than approved and never sent."""
    body = body or ReviewDecision(reason=None, version=None)
    with session_scope(state.session_factory) as session:
        ticket, _new = review.approve_ticket(session, ticket_id=ticket_id, actor=_actor(principal),
                                             reason=body.reason, expected_version=body.version)
        if ticket.status is TicketStatus.APPROVED:
            _send_onward(state, background, ticket_id=ticket.id, version=ticket.version)
        return ticket_detail(session, ticket)


def _send_onward(state: ApiState, background: BackgroundTasks, *, ticket_id: str, version: int) -> None:
    if state.settings.queue_mode == "inline":
        background.add_task(_dispatch_inline, state, ticket_id)
        return
    from workers.queues import enqueue_dispatch

    enqueue_dispatch(state.redis, ticket_id=ticket_id, version=version)


def _dispatch_inline(state: ApiState, ticket_id: str) -> None:
    from pipeline.dispatch.service import dispatch_ticket

    try:
        dispatch_ticket(state.settings, session_factory=state.session_factory, ticket_id=ticket_id)
    except PipelineError as exc:  # recorded on the dispatch row; nothing to answer to
        logger.warning("ticket %s: inline dispatch failed: %s", ticket_id, exc)


@router.post(
    "/tickets/{ticket_id}/reject", response_model=TicketRead, responses=CHANGE_ERRORS,
    summary="Reject a ticket, with the reason (kept and audited); it is not sent onward",
)
def reject_ticket(ticket_id: str, body: ReviewDecision, state: State, principal: Operator) -> TicketRead:
    with session_scope(state.session_factory) as session:
        ticket = review.reject_ticket(session, ticket_id=ticket_id, actor=_actor(principal),
                                      reason=body.reason or "", expected_version=body.version)
        return ticket_detail(session, ticket)


@router.get(
    "/tickets/{ticket_id}/audit", response_model=list[AuditEntry], responses={404: {"model": ErrorRead}},
    summary="A ticket's audit trail: who changed what, when (old → new), approvals and rejections",
)
def read_audit(ticket_id: str, state: State) -> list[AuditEntry]:
    with session_scope(state.session_factory) as session:
        repo.get_ticket(session, ticket_id=ticket_id)
        return [AuditEntry.model_validate(row) for row in review.list_audit(session, ticket_id=ticket_id)]


@router.get(
    "/tickets/{ticket_id}/audio", response_class=FileResponse,
    responses={200: {"content": {"audio/wav": {}, "audio/mpeg": {}}, "description": "The call's recording"},
               206: {"description": "Part of it (Range)"}, 404: {"model": ErrorRead}},
    summary="The call's recording, playable in a browser (Range requests for seeking)",
)
def ticket_audio(ticket_id: str, state: State) -> FileResponse:
    """Telephone codecs browsers cannot play (µ-law, A-law, AMR) are transcoded once to PCM WAV."""
    with session_scope(state.session_factory) as session:
        call = repo.get_ticket(session, ticket_id=ticket_id).call
        audio_path, sha = call.audio_path, call.audio_sha256
    path, media_type = review.playable_audio(state.settings, audio_path=audio_path, audio_sha256=sha)
    return FileResponse(path, media_type=media_type, headers={"Cache-Control": "private, max-age=3600"})


async def _invalid_edit(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, review.InvalidEdit)
    return JSONResponse(error_body(exc.code, str(exc), "review"), status_code=422)


def install_handlers(app: FastAPI) -> None:
    """A value the ticket contract does not allow is the client's mistake: 422 with the field and why."""
    app.add_exception_handler(review.InvalidEdit, _invalid_edit)
