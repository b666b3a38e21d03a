"""Hand an approved ticket version to the configured ticket system, and record what happened.

``dispatch_ticket`` is one attempt. Its record is the ``dispatches`` row of ``(ticket, version,
connector)``:

* the row is created ``pending`` (or found), its ``attempts`` counted and committed *before* anything is
  sent, so an attempt that dies half-way is still seen;
* a row already ``sent`` is returned as it is: nothing is sent twice from here, and the receiver's
  idempotency (webhook ``Idempotency-Key``, Zammad look-before-create) covers a send whose success could
  not be recorded;
* success: the row becomes ``sent`` with the receiver's id and link, the ticket ``dispatched``;
* a refusal (``PermanentDispatchError``: 4xx, nothing configured) makes the row ``failed`` with the reason;
* a transient failure (timeout, connection, 5xx, 429) keeps the row ``pending`` with the reason as
  ``last_error``, unless it was the ``final_attempt``; the caller (the queue job) decides when to retry.

A job for an older version of a ticket that has since been edited sends nothing (``superseded``); a
ticket that is not approved raises ``Conflict``. Database trouble raises ``StorageUnavailable`` as
everywhere, for the queue to retry.

Example::

    outcome = dispatch_ticket(settings, session_factory=factory, ticket_id="00aa11bb22cc33dd")
    outcome.status          # DispatchStatus.SENT
    outcome.external_ref    # "4711"
"""

from __future__ import annotations

import logging
import mimetypes
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import Select, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from pipeline.dispatch.base import AudioRef, Connector, DispatchPayload, SendResult, make_reference
from pipeline.errors import Conflict, DispatchError, PermanentDispatchError, TransientDispatchError
from pipeline.settings import Settings
from pipeline.storage import audio_store, repo
from pipeline.storage.base import utcnow
from pipeline.storage.calls import TranscriptRow
from pipeline.storage.db import session_scope
from pipeline.storage.dispatch import DispatchRow, DispatchStatus
from pipeline.storage.tickets import TicketRow
from pipeline.ticket import FIELDS, TicketStatus

logger = logging.getLogger(__name__)

SessionFactory = sessionmaker[Session]
#: ticket statuses a dispatch may start from
DISPATCHABLE = (TicketStatus.APPROVED, TicketStatus.DISPATCHED)


@dataclass(frozen=True)
class DispatchOutcome:
    """What one attempt left behind."""

    ticket_id: str
    call_id: str
    version: int
    connector: str
    status: DispatchStatus
    attempts: int
    reference: str
    external_ref: str | None = None
    external_url: str | None = None
    error: str | None = None
    transient: bool = False
    """True when the attempt failed in a way a later one may not (the row stays ``pending``)."""
    retry_after: float | None = None
    """Seconds the receiver asked to wait (``Retry-After``), when it did."""
    sent_now: bool = False
    """True when this attempt is the one that delivered it."""
    superseded_by: int | None = None
    """Set (to the ticket's current version) when the version asked for is no longer current."""

    def to_dict(self) -> dict[str, object]:
        return {
            "ticket_id": self.ticket_id, "call_id": self.call_id, "version": self.version,
            "connector": self.connector, "status": self.status.value, "attempts": self.attempts,
            "reference": self.reference, "external_ref": self.external_ref, "external_url": self.external_url,
            "error": self.error, "transient": self.transient, "sent_now": self.sent_now,
            "superseded_by": self.superseded_by,
        }


def dispatch_ticket(
    settings: Settings, *, session_factory: SessionFactory, ticket_id: str, version: int | None = None,
    connector: Connector | None = None, final_attempt: bool = True,
) -> DispatchOutcome:
    """One attempt to hand ``version`` (default: the current one) of an approved ticket onward.

    ``connector`` defaults to the one the settings name. Without ``final_attempt`` a transient failure
    leaves the dispatch ``pending`` for a later attempt; with it (the default, as for a one-off send from
    the command line) the dispatch is marked ``failed``. Raises ``NotFound`` for an unknown ticket and
    ``Conflict`` for one that is not approved.
    """
    from pipeline.dispatch.registry import build_connector

    setup_error: PermanentDispatchError | None = None
    connector_name: str = settings.dispatch.connector
    if connector is None:
        try:
            connector = build_connector(settings)
        except PermanentDispatchError as exc:
            setup_error = exc
    if connector is not None:
        connector_name = connector.name

    with session_scope(session_factory) as session:
        ticket = repo.get_ticket(session, ticket_id=ticket_id)
        call_id = ticket.call_id
        current = ticket.version
        wanted = current if version is None else int(version)
        reference = make_reference(call_id=call_id, ticket_id=ticket_id, version=wanted)
        if wanted != current:
            logger.info("call %s: ticket %s version %d superseded by version %d; not sending", call_id,
                        ticket_id, wanted, current)
            return DispatchOutcome(
                ticket_id=ticket_id, call_id=call_id, version=wanted, connector=connector_name,
                status=DispatchStatus.PENDING, attempts=0, reference=reference, superseded_by=current,
            )
        if ticket.status not in DISPATCHABLE:
            raise Conflict(f"ticket {ticket_id} is {ticket.status.value}; only approved tickets are dispatched",
                           stage="dispatch")
        row = _get_or_create_row(session, ticket=ticket, connector=connector_name, reference=reference)
        if row.status is DispatchStatus.SENT:
            logger.info("call %s: ticket %s v%d already sent to %s as %s", call_id, ticket_id, wanted,
                        connector_name, row.external_ref)
            return _outcome(row, call_id=call_id)
        row.attempts += 1
        row.status = DispatchStatus.PENDING
        row.last_attempt_at = utcnow()
        row.updated_at = utcnow()
        payload = None if setup_error else build_payload(settings, session, ticket=ticket, reference=reference)

    attempt = row.attempts
    result: SendResult | None = None
    failure: DispatchError | None = setup_error
    if failure is None:
        assert connector is not None and payload is not None
        logger.info("call %s: sending ticket %s v%d to %s (attempt %d)", call_id, ticket_id, wanted,
                    connector_name, attempt)
        try:
            result = connector.send(payload)
        except DispatchError as exc:
            failure = exc
        except Exception as exc:  # a connector bug: recorded like a transient failure, retried, then failed
            logger.exception("call %s: connector %s failed unexpectedly", call_id, connector_name)
            failure = TransientDispatchError(f"internal error in the {connector_name} connector: "
                                             f"{type(exc).__name__}: {exc}")
    return _record(session_factory, row_id=row.id, call_id=call_id, result=result, failure=failure,
                   final_attempt=final_attempt)


def build_payload(settings: Settings, session: Session, *, ticket: TicketRow, reference: str) -> DispatchPayload:
    """The payload of ``ticket`` as stored now: contract fields, transcript, recording, call metadata."""
    zone = ZoneInfo(settings.timezone)
    call = repo.get_call(session, call_id=ticket.call_id)
    data = repo.draft_from_row(ticket, zone=zone).to_dict()
    fields = {name: data[name] for name in FIELDS}
    fields["evidence"] = data["evidence"]
    transcript = session.get(TranscriptRow, ticket.transcript_id) if ticket.transcript_id else None
    if transcript is None:
        transcript = repo.find_current_transcript(session, call_id=call.id)
    filename = call.original_filename or Path(call.audio_path).name
    content_type = (call.content_type if call.content_type and call.content_type.startswith("audio/")
                    else mimetypes.guess_type(call.audio_path)[0] or "application/octet-stream")
    base = settings.dispatch.audio_base_url.rstrip("/")
    audio = AudioRef(
        path=call.audio_path, local_path=audio_store.resolve(settings.data_dir, call.audio_path),
        sha256=call.audio_sha256, filename=Path(filename).name, content_type=content_type,
        size_bytes=call.size_bytes, duration_s=call.duration_s,
        url=f"{base}/{call.audio_path}" if base else None,
    )
    return DispatchPayload(
        ticket_id=ticket.id, call_id=call.id, version=ticket.version, reference=reference, ticket=fields,
        transcript_text=transcript.text if transcript is not None else "",
        language=transcript.language if transcript is not None else ticket.language, audio=audio,
        received_at=call.received_at.astimezone(zone).isoformat(), line=call.line,
    )


def list_dispatches(session: Session, *, ticket_id: str) -> list[DispatchRow]:
    """Every hand-off of the ticket, newest version first (``NotFound`` for an unknown ticket)."""
    repo.get_ticket(session, ticket_id=ticket_id)
    query = (select(DispatchRow).where(DispatchRow.ticket_id == ticket_id)
             .order_by(DispatchRow.version.desc(), DispatchRow.created_at.desc()))
    return list(session.scalars(query))


def latest_dispatch(session: Session, *, ticket_id: str) -> DispatchRow | None:
    """The ticket's most recent hand-off: of its newest version dispatched, the row last changed (``None``
    before the first attempt, e.g. while an approved ticket's job is still queued)."""
    query = (select(DispatchRow).where(DispatchRow.ticket_id == ticket_id)
             .order_by(DispatchRow.version.desc(), DispatchRow.updated_at.desc(), DispatchRow.id.desc()).limit(1))
    return session.scalars(query).first()


def prepare_retry(settings: Settings, session: Session, *, ticket_id: str) -> tuple[int, DispatchRow | None]:
    """Make the current version of an approved ticket ready to be dispatched again; returns the version
    and its dispatch row for the configured connector (``None`` when it was never tried).

    A ``failed`` row goes back to ``pending`` (attempts and the last error stay, for the record).
    ``Conflict`` when the ticket is not approved or that version was already sent.
    """
    ticket = repo.get_ticket(session, ticket_id=ticket_id)
    if ticket.status not in DISPATCHABLE:
        raise Conflict(f"ticket {ticket_id} is {ticket.status.value}; only approved tickets are dispatched",
                       stage="dispatch")
    row = session.scalars(select(DispatchRow).where(
        DispatchRow.ticket_id == ticket_id, DispatchRow.version == ticket.version,
        DispatchRow.connector == settings.dispatch.connector,
    )).first()
    if row is not None and row.status is DispatchStatus.SENT:
        raise Conflict(f"version {ticket.version} of ticket {ticket_id} was already sent to {row.connector}"
                       f" ({row.external_ref or 'no external id'})", stage="dispatch")
    if row is not None and row.status is DispatchStatus.FAILED:
        row.status = DispatchStatus.PENDING
        row.updated_at = utcnow()
    logger.info("call %s: ticket %s v%d queued for dispatch again", ticket.call_id, ticket_id, ticket.version)
    return ticket.version, row


def iter_undelivered(
    session_factory: SessionFactory, *, connector: str, changed_before: datetime, page: int = 1000,
) -> Iterator[list[tuple[str, int]]]:
    """Every ``find_undelivered`` ticket, in pages of ``page`` in id order, each page read in its own
    transaction (keyset paging: tickets sent or edited meanwhile neither repeat nor shift the pages)."""
    after = ""
    while True:
        with session_scope(session_factory) as session:
            rows = session.execute(
                _undelivered_query(connector=connector, changed_before=changed_before)
                .where(TicketRow.id > after).order_by(TicketRow.id).limit(page)
            ).all()
        if not rows:
            return
        yield [(str(row[0]), int(row[1])) for row in rows]
        after = str(rows[-1][0])


def _undelivered_query(*, connector: str, changed_before: datetime) -> Select[str, int]:
    done = (DispatchRow.ticket_id == TicketRow.id) & (DispatchRow.version == TicketRow.version) & (
        DispatchRow.connector == connector) & DispatchRow.status.in_((DispatchStatus.SENT, DispatchStatus.FAILED))
    return select(TicketRow.id, TicketRow.version).where(
        TicketRow.status == TicketStatus.APPROVED, TicketRow.updated_at < changed_before,
        ~select(DispatchRow.id).where(done).exists())


def find_undelivered(
    session: Session, *, connector: str, changed_before: datetime, limit: int = 1000,
) -> list[tuple[str, int]]:
    """``(ticket id, version)`` of approved tickets whose current version has no ``sent`` or ``failed``
    hand-off to ``connector`` and that last changed before ``changed_before``, oldest first.

    These are the tickets a dispatch job should be working on; when none is (Redis restarted, the job
    out of retries while the database was away), ``workers.dispatch_jobs.requeue_lost`` queues them again.
    """
    query = (_undelivered_query(connector=connector, changed_before=changed_before)
             .order_by(TicketRow.updated_at, TicketRow.id).limit(limit))
    return [(str(row[0]), int(row[1])) for row in session.execute(query)]


def _get_or_create_row(session: Session, *, ticket: TicketRow, connector: str, reference: str) -> DispatchRow:
    query = select(DispatchRow).where(
        DispatchRow.ticket_id == ticket.id, DispatchRow.version == ticket.version,
        DispatchRow.connector == connector,
    )
    row = session.scalars(query.with_for_update()).first()
    if row is not None:
        return row
    row = DispatchRow(ticket_id=ticket.id, version=ticket.version, connector=connector,
                      status=DispatchStatus.PENDING, attempts=0, idempotency_key=reference,
                      created_at=utcnow(), updated_at=utcnow())
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:  # a concurrent first attempt made it a moment ago: use theirs
        found = session.scalars(query.with_for_update()).first()
        if found is None:
            raise
        return found
    return row


def _record(
    session_factory: SessionFactory, *, row_id: str, call_id: str, result: SendResult | None,
    failure: DispatchError | None, final_attempt: bool,
) -> DispatchOutcome:
    now = utcnow()
    with session_scope(session_factory) as session:
        row = session.get(DispatchRow, row_id)
        assert row is not None
        row.updated_at = now
        if failure is None:
            assert result is not None
            row.status = DispatchStatus.SENT
            row.sent_at = now
            row.external_ref = result.external_ref
            row.external_url = result.external_url
            row.last_status_code = result.status_code
            row.last_error = None
            ticket = session.get(TicketRow, row.ticket_id)
            # an edit made while sending is a new version with its own hand-off; leave its status alone
            if ticket is not None and ticket.version == row.version and ticket.status is TicketStatus.APPROVED:
                ticket.status = TicketStatus.DISPATCHED
                ticket.updated_at = now
            logger.info("call %s: ticket %s v%d sent to %s as %s%s (attempt %d)", call_id, row.ticket_id,
                        row.version, row.connector, result.external_ref or "-",
                        " (already there)" if result.reused else "", row.attempts)
            return _outcome(row, call_id=call_id, sent_now=True)
        transient = isinstance(failure, TransientDispatchError)
        row.last_error = str(failure)
        row.last_status_code = failure.status_code
        row.status = DispatchStatus.PENDING if transient and not final_attempt else DispatchStatus.FAILED
        logger.warning("call %s: ticket %s v%d not sent to %s (attempt %d, %s): %s", call_id, row.ticket_id,
                       row.version, row.connector, row.attempts, row.status.value, failure)
        retry_after = failure.retry_after if isinstance(failure, TransientDispatchError) else None
        return _outcome(row, call_id=call_id, transient=transient, retry_after=retry_after)


def _outcome(row: DispatchRow, *, call_id: str, transient: bool = False, retry_after: float | None = None,
             sent_now: bool = False) -> DispatchOutcome:
    return DispatchOutcome(
        ticket_id=row.ticket_id, call_id=call_id, version=row.version, connector=row.connector,
        status=row.status, attempts=row.attempts, reference=row.idempotency_key, external_ref=row.external_ref,
        external_url=row.external_url, error=row.last_error, transient=transient, retry_after=retry_after,
        sent_now=sent_now,
    )
