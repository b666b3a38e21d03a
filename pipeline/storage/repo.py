"""Repository functions: verb-first, keyword-only, one session passed in, no commits inside.

The caller owns the transaction (``pipeline.storage.db.session_scope``). Lookups by id raise
``NotFound``; ``find_*`` functions return ``None`` instead. Rows convert back to the pipeline's frozen
types with ``transcript_from_row`` and ``draft_from_row``.

Example::

    with session_scope(factory) as session:
        call = get_call(session, call_id=call_id)
        tickets, total = list_tickets(session, urgency="emergency", limit=20)
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, tzinfo
from typing import Any

from sqlalchemy import Select, case, func, or_, select
from sqlalchemy.orm import Session

from pipeline.errors import Conflict, NotFound
from pipeline.storage.base import utcnow
from pipeline.storage.calls import CallRow, CallStatus, TranscriptRow
from pipeline.storage.tickets import TicketRow
from pipeline.ticket import Evidence, TicketDraft, TicketStatus
from pipeline.transcript import Segment, Transcript

MAX_PAGE = 200
#: the order tickets are worked in: most urgent first
URGENCY_ORDER = ("emergency", "urgent", "normal")


def get_call(session: Session, *, call_id: str) -> CallRow:
    """The call with this id; ``NotFound`` when there is none."""
    call = session.get(CallRow, call_id)
    if call is None:
        raise NotFound(f"no call with id {call_id!r}")
    return call


def find_call_by_sha256(session: Session, *, sha256: str) -> CallRow | None:
    """The call whose audio has this SHA-256, or ``None``."""
    return session.scalars(select(CallRow).where(CallRow.audio_sha256 == sha256)).first()


def add_call(
    session: Session, *, audio_sha256: str, audio_path: str, size_bytes: int, received_at: datetime,
    original_filename: str | None = None, content_type: str | None = None, caller_number: str | None = None,
    line: str | None = None, agent_id: str | None = None, duration_s: float | None = None,
    channels: int | None = None, sample_rate: int | None = None, format: str | None = None,
    status: CallStatus = CallStatus.QUEUED,
) -> CallRow:
    """Insert a call row and flush it (so that a duplicate SHA-256 fails here, as ``IntegrityError``)."""
    call = CallRow(
        audio_sha256=audio_sha256, audio_path=audio_path, size_bytes=size_bytes, received_at=received_at,
        original_filename=original_filename, content_type=content_type, caller_number=caller_number,
        line=line, agent_id=agent_id, duration_s=duration_s, channels=channels, sample_rate=sample_rate,
        format=format, status=status, retry_count=0,
    )
    session.add(call)
    session.flush()
    return call


def list_calls(
    session: Session, *, status: CallStatus | None = None, limit: int = 50, offset: int = 0,
    uploaded_by_key_id: str | None = None,
) -> tuple[list[CallRow], int]:
    """Calls newest first (by received time), one page, and the total that match.

    ``uploaded_by_key_id`` keeps only the calls uploaded with that API key.
    """
    query = select(CallRow)
    if status is not None:
        query = query.where(CallRow.status == status)
    if uploaded_by_key_id is not None:
        query = query.where(CallRow.uploaded_by_key_id == uploaded_by_key_id)
    return _page(session, query.order_by(CallRow.received_at.desc(), CallRow.id), limit=limit, offset=offset)


def set_call_uploader(session: Session, *, call_id: str, key_id: str) -> CallRow:
    """Record the API key a new call was uploaded with (the first uploader keeps it)."""
    call = get_call(session, call_id=call_id)
    if call.uploaded_by_key_id is None:
        call.uploaded_by_key_id = key_id
    return call


def set_call_status(
    session: Session, *, call_id: str, status: CallStatus, error_reason: str | None = None,
    error_stage: str | None = None, language: str | None = None,
) -> CallRow:
    """Move a call to ``status``; a failure records its stage and reason, any other status clears them."""
    call = get_call(session, call_id=call_id)
    call.status = status
    if status is CallStatus.FAILED:
        call.error_reason = error_reason or "failed"
        call.error_stage = error_stage
    else:
        call.error_reason = None
        call.error_stage = None
    if language is not None:
        call.language = language
    call.updated_at = utcnow()
    return call


def add_transcript(session: Session, *, call_id: str, transcript: Transcript) -> TranscriptRow:
    """Store a transcript of the call; it becomes the call's current one."""
    row = TranscriptRow(
        call_id=call_id, language=transcript.language, text=transcript.text,
        segments=[s.to_dict() for s in transcript.segments], options=_jsonable(dict(transcript.options)),
        duration_s=float(transcript.duration), created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    return row


def find_current_transcript(session: Session, *, call_id: str) -> TranscriptRow | None:
    """The latest transcript of the call, or ``None`` before transcription."""
    query = (
        select(TranscriptRow).where(TranscriptRow.call_id == call_id)
        .order_by(TranscriptRow.created_at.desc()).limit(1)
    )
    return session.scalars(query).first()


def transcript_from_row(row: TranscriptRow | Any) -> Transcript:
    """The frozen ``Transcript`` a stored row holds (an ORM row, or a result row of the same columns)."""
    return Transcript(
        language=row.language, segments=tuple(Segment.from_dict(s) for s in row.segments or ()),
        duration=row.duration_s, options=dict(row.options or {}),
    )


def get_ticket(session: Session, *, ticket_id: str) -> TicketRow:
    """The ticket with this id; ``NotFound`` when there is none."""
    ticket = session.get(TicketRow, ticket_id)
    if ticket is None:
        raise NotFound(f"no ticket with id {ticket_id!r}")
    return ticket


def find_ticket(session: Session, *, call_id: str, rules_version: str) -> TicketRow | None:
    """The ticket drafted for this call by this rules version, or ``None``."""
    query = select(TicketRow).where(TicketRow.call_id == call_id, TicketRow.rules_version == rules_version)
    return session.scalars(query).first()


def find_current_ticket(session: Session, *, call_id: str) -> TicketRow | None:
    """The most recently drafted ticket of the call, or ``None``."""
    query = (
        select(TicketRow).where(TicketRow.call_id == call_id)
        .order_by(TicketRow.updated_at.desc()).limit(1)
    )
    return session.scalars(query).first()


def save_ticket(
    session: Session, *, call_id: str, draft: TicketDraft, transcript_id: str | None = None
) -> TicketRow:
    """Store the draft as the call's ticket for ``draft.rules_version``.

    A ticket for the same call and rules version that is still ``needs_review`` is overwritten with the
    new draft (a re-run after an engine change); one an operator already acted on raises ``Conflict``.
    """
    row = find_ticket(session, call_id=call_id, rules_version=draft.rules_version)
    if row is None:
        row = TicketRow(call_id=call_id, rules_version=draft.rules_version, status=TicketStatus.NEEDS_REVIEW,
                        created_at=utcnow())
        session.add(row)
    elif row.status is not TicketStatus.NEEDS_REVIEW:
        raise Conflict(
            f"ticket {row.id} of call {call_id} is already {row.status.value}; not overwriting it",
            stage="store",
        )
    data = draft.to_dict()
    row.transcript_id = transcript_id
    for name in ("request_type", "category", "urgency", "district", "street", "community", "address",
                 "department", "callback_number", "caller_surname", "summary", "language", "vulnerable",
                 "amounts", "evidence", "confidence", "needs_review"):
        setattr(row, name, data[name])
    row.due_at = draft.due_at
    row.updated_at = utcnow()
    session.flush()
    return row


def draft_from_row(row: TicketRow, *, zone: tzinfo | None = None) -> TicketDraft:
    """The ``TicketDraft`` a stored ticket holds (operator edits included), times shown in ``zone``
    (default UTC, as stored)."""
    due_at = row.due_at.astimezone(zone) if zone is not None else row.due_at
    return TicketDraft(
        request_type=row.request_type, category=row.category, urgency=row.urgency, due_at=due_at,
        department=row.department, summary=row.summary, language=row.language, district=row.district,
        street=row.street, community=row.community, address=row.address,
        callback_number=row.callback_number, caller_surname=row.caller_surname,
        vulnerable=tuple(row.vulnerable or ()), amounts=tuple(row.amounts or ()),
        evidence={k: tuple(Evidence.from_dict(e) for e in v) for k, v in (row.evidence or {}).items()},
        confidence=dict(row.confidence or {}), needs_review=tuple(row.needs_review or ()),
        rules_version=row.rules_version,
    )


def list_tickets(
    session: Session, *, status: TicketStatus | None = None, urgency: str | None = None,
    district: str | None = None, category: str | None = None, call_id: str | None = None,
    limit: int = 50, offset: int = 0, received_from: datetime | None = None, received_to: datetime | None = None,
    due_from: datetime | None = None, due_to: datetime | None = None, text: str | None = None,
    order: str = "newest",
) -> tuple[list[TicketRow], int]:
    """Tickets filtered by any of the given fields, one page, and the total that match.

    ``category`` matches a code exactly or, ending in ``.``, a whole group (``housing.``).
    ``received_*`` bound the call's received time and ``due_*`` the due time (from inclusive, to
    exclusive). ``text`` finds tickets whose summary, address or transcript contains it (any case).
    ``order``: ``newest`` first, or ``urgency`` (emergency, urgent, normal; then the earliest due).
    """
    query = select(TicketRow)
    if status is not None:
        query = query.where(TicketRow.status == status)
    if urgency:
        query = query.where(TicketRow.urgency == urgency)
    if district:
        query = query.where(TicketRow.district == district)
    if category:
        if category.endswith("."):
            query = query.where(TicketRow.category.startswith(category, autoescape=True))
        else:
            query = query.where(TicketRow.category == category)
    if call_id:
        query = query.where(TicketRow.call_id == call_id)
    if received_from is not None or received_to is not None:
        query = query.join(CallRow, CallRow.id == TicketRow.call_id)
        if received_from is not None:
            query = query.where(CallRow.received_at >= received_from)
        if received_to is not None:
            query = query.where(CallRow.received_at < received_to)
    if due_from is not None:
        query = query.where(TicketRow.due_at >= due_from)
    if due_to is not None:
        query = query.where(TicketRow.due_at < due_to)
    if text and text.strip():
        needle = f"%{_escape_like(text.strip().lower())}%"
        in_transcript = select(TranscriptRow.id).where(
            TranscriptRow.id == TicketRow.transcript_id, func.lower(TranscriptRow.text).like(needle, escape="\\")
        ).exists()
        query = query.where(or_(
            func.lower(TicketRow.summary).like(needle, escape="\\"),
            func.lower(func.coalesce(TicketRow.address, "")).like(needle, escape="\\"),
            in_transcript,
        ))
    if order == "urgency":
        rank = case(*((TicketRow.urgency == u, i) for i, u in enumerate(URGENCY_ORDER)), else_=len(URGENCY_ORDER))
        query = query.order_by(rank, TicketRow.due_at, TicketRow.id)
    else:
        query = query.order_by(TicketRow.created_at.desc(), TicketRow.id)
    return _page(session, query, limit=limit, offset=offset)


def current_tickets() -> Any:
    """Each call's current ticket (the one drafted or edited last), as a subquery."""
    ranked = select(
        TicketRow.call_id, TicketRow.category, TicketRow.district, TicketRow.street, TicketRow.urgency,
        TicketRow.request_type, TicketRow.department, TicketRow.status,
        func.row_number().over(partition_by=TicketRow.call_id,
                               order_by=(TicketRow.updated_at.desc(), TicketRow.id.desc())).label("rn"),
    ).subquery("ranked")
    return select(ranked).where(ranked.c.rn == 1).subquery("current_ticket")


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _page(session: Session, query: Select[Any], *, limit: int, offset: int) -> tuple[list[Any], int]:
    limit = max(1, min(int(limit), MAX_PAGE))
    offset = max(0, int(offset))
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    rows = list(session.scalars(query.limit(limit).offset(offset)))
    return rows, int(total)


def _jsonable(value: Any) -> Any:
    """Engine options as plain JSON (paths and other objects become strings)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, Sequence)) and not isinstance(value, (str, bytes)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)
