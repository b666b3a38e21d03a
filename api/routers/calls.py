"""``/calls``: upload a recorded call, follow it through the pipeline."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Depends, File, Form, Query, Response, UploadFile

from api.app import ApiState, State
from api.auth import Principal, Role, Uploader, require_role
from api.schemas import CallAccepted, CallList, CallRead, CallSummary, ErrorRead, TranscriptRead
from pipeline.errors import NotFound, PipelineError
from pipeline.intake import CallMetadata, IngestResult, ingest_upload
from pipeline.process import process_call
from pipeline.storage import audio_store, repo
from pipeline.storage.calls import CallStatus
from pipeline.storage.db import session_scope

logger = logging.getLogger(__name__)

router = APIRouter(tags=["calls"])

#: uploaders read the calls they uploaded; reviewers and supervisors read every call
CallReader = Annotated[Principal, Depends(require_role(Role.UPLOADER, Role.OPERATOR))]

UPLOAD_ERRORS: dict[int | str, dict[str, object]] = {
    400: {"model": ErrorRead, "description": "Empty upload"},
    413: {"model": ErrorRead, "description": "Over the size or duration limit"},
    415: {"model": ErrorRead, "description": "Not audio that can be read"},
    422: {"model": ErrorRead, "description": "Missing file or malformed metadata"},
    503: {"model": ErrorRead, "description": "Database or job queue unavailable; retry later"},
}


@router.post(
    "/calls", status_code=202, response_model=CallAccepted,
    responses={200: {"model": CallAccepted, "description": "The same audio was already uploaded"},
               **UPLOAD_ERRORS},
    summary="Upload a recorded call",
)
def create_call(
    state: State,
    principal: Uploader,
    response: Response,
    background: BackgroundTasks,
    file: Annotated[UploadFile, File(description="The recording (wav, mp3, flac, ogg, m4a, amr)")],
    caller_number: Annotated[str | None, Form(max_length=40)] = None,
    line: Annotated[str | None, Form(max_length=40, description="Hotline line or trunk")] = None,
    agent_id: Annotated[str | None, Form(max_length=40)] = None,
    received_at: Annotated[datetime | None, Form(
        description="When the call came in (ISO 8601; without an offset, the hotline's time zone)")] = None,
) -> CallAccepted:
    """Store the recording and queue it for transcription; answers at once with the call id.

    The same bytes uploaded again return the existing call (200) instead of a new one (202).
    """
    result = ingest_upload(
        state.settings, session_factory=state.session_factory, chunks=audio_store.iter_chunks(file.file),
        filename=file.filename, content_type=file.content_type,
        metadata=CallMetadata(caller_number=caller_number, line=line, agent_id=agent_id, received_at=received_at),
    )
    if result.created:
        with session_scope(state.session_factory) as session:
            repo.set_call_uploader(session, call_id=result.call_id, key_id=principal.key_id)
    if result.status is CallStatus.QUEUED:
        _start(state, result, background)
    response.status_code = 202 if result.created else 200
    return CallAccepted(call_id=result.call_id, status=result.status)


def _start(state: ApiState, result: IngestResult, background: BackgroundTasks) -> None:
    if state.settings.queue_mode == "inline":
        background.add_task(_process_inline, state, result.call_id)
        return
    from workers.queues import enqueue_call

    enqueue_call(state.redis, call_id=result.call_id, duration_s=result.duration_s)


def _process_inline(state: ApiState, call_id: str) -> None:
    try:
        process_call(state.settings, call_id=call_id, transcriber=state.transcriber(),
                     session_factory=state.session_factory)
    except PipelineError as exc:  # recorded on the call; nothing to answer to
        logger.warning("call %s: inline processing failed: %s", call_id, exc)


@router.get("/calls", response_model=CallList, summary="List calls, newest first")
def list_calls(
    state: State,
    principal: CallReader,
    status: CallStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=repo.MAX_PAGE)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> CallList:
    with session_scope(state.session_factory) as session:
        rows, total = repo.list_calls(session, status=status, limit=limit, offset=offset,
                                      uploaded_by_key_id=_own_only(principal))
        items = [CallSummary.model_validate(row) for row in rows]
    return CallList(items=items, total=total, limit=limit, offset=offset)


@router.get(
    "/calls/{call_id}", response_model=CallRead, responses={404: {"model": ErrorRead}},
    summary="A call: status, failure reason, transcript when done, ticket id",
)
def read_call(call_id: str, state: State, principal: CallReader) -> CallRead:
    with session_scope(state.session_factory) as session:
        call = repo.get_call(session, call_id=call_id)
        if _own_only(principal) not in (None, call.uploaded_by_key_id):
            raise NotFound(f"no call with id {call_id!r}")  # another uploader's call is not theirs to see
        transcript = repo.find_current_transcript(session, call_id=call_id)
        ticket = repo.find_current_ticket(session, call_id=call_id)
        out = CallRead.model_validate(call)
        out.transcript = TranscriptRead.model_validate(transcript) if transcript else None
        out.ticket_id = ticket.id if ticket else None
    return out


def _own_only(principal: Principal) -> str | None:
    """The key whose calls an uploader may see; ``None`` (every call) for reviewers and supervisors."""
    return principal.key_id if principal.role is Role.UPLOADER else None
