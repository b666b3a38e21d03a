"""One batch of a run: re-extract from stored transcripts, or transcribe again, recording each item
``done``/``failed``/``skipped`` in the same transaction as its results; and a whole run in this process."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from pipeline.errors import Conflict, PipelineError, StorageUnavailable
from pipeline.logs import log_context
from pipeline.reprocess.diff import DIFF_FIELDS, diff_values, to_json, values_from_draft, values_from_row
from pipeline.reprocess.runs import (
    RunProgress,
    current_rules_version,
    finish_if_complete,
    get_row,
    get_run,
    pending_batches,
    rowcount,
    stop_run,
)
from pipeline.reprocess.selection import NOT_SELECTED
from pipeline.settings import Settings
from pipeline.storage import repo
from pipeline.storage.base import new_id, utcnow
from pipeline.storage.calls import CallRow, CallStatus, TranscriptRow
from pipeline.storage.db import SessionFactory, session_scope
from pipeline.storage.reprocess import (
    ItemStatus,
    ReprocessChangeRow,
    ReprocessItemRow,
    ReprocessRunRow,
    RunStatus,
)
from pipeline.storage.tickets import TicketRow
from pipeline.ticket import TicketDraft, TicketStatus

logger = logging.getLogger(__name__)

_ROW_FIELDS = ("request_type", "category", "urgency", "due_at", "district", "street", "community", "address",
               "department", "callback_number", "caller_surname", "vulnerable", "amounts", "summary", "language",
               "needs_review")


#: a batch whose items were taken by someone else meanwhile is read again, this many times at most
_ATTEMPTS = 3


#: ``claim(call_id)`` returns a context manager whose ``acquired`` says whether this process may work on
#: the call now (the queue's per-call lease); used by the ``transcribe`` stage
Claim = Callable[[str], AbstractContextManager[Any]]


@dataclass
class BatchResult:
    """What one batch did (``stood_down`` says why it did nothing)."""

    run_id: str
    done: int = 0
    changed: int = 0
    failed: int = 0
    skipped: int = 0
    stood_down: str | None = None

    def counts(self) -> dict[str, int]:
        return {"done": self.done, "changed": self.changed, "failed": self.failed, "skipped": self.skipped}

    def to_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, **self.counts(), "stood_down": self.stood_down}


@dataclass
class _Decision:
    call_id: str
    status: ItemStatus
    outcome: str
    changes: list[tuple[str, Any, Any]] = field(default_factory=list)
    applied: bool = True
    ticket: dict[str, Any] | None = None
    revive: bool = False
    """The call is ``failed``/``transcribed``; storing the ticket makes it ``needs_review``."""


def process_batch(
    settings: Settings, *, session_factory: SessionFactory, run_id: str, pass_no: int, call_ids: Sequence[str],
    rules: Any = None, transcriber: Callable[[], Any] | None = None, claim: Claim | None = None,
) -> BatchResult:
    """Process the pending items among ``call_ids`` of one pass of a run (what an archive job does).

    Stands down (nothing done, ``stood_down`` set) when the run is not running, belongs to a later pass,
    or drafts with rules this process does not have. Items already finished are left alone. Per-call
    failures (rules that cannot read a transcript, audio that no longer decodes) are recorded on the item
    and the batch goes on; ``StorageUnavailable`` raises, for the queue to retry the batch.
    ``transcriber`` returns the loaded speech model (``transcribe`` stage only); ``claim`` guards each call
    of that stage against a queue job working on it at the same time.
    """
    from pipeline.extractors import load_rules

    rules = rules or load_rules()
    result = BatchResult(run_id=run_id)
    with log_context(run_id=run_id):
        with session_scope(session_factory) as session:
            run = get_row(session, run_id)
            stage, status, passes, version = run.stage, run.status, run.passes, run.rules_version
        if status is not RunStatus.RUNNING:
            result.stood_down = f"run is {status.value}"
        elif passes != pass_no:
            result.stood_down = f"run is at pass {passes}; this batch belongs to pass {pass_no}"
        elif current_rules_version(rules) != version:
            result.stood_down = f"run drafts with rules {version}, this process has {current_rules_version(rules)}"
            logger.error("run %s: %s; batch left pending", run_id, result.stood_down)
        if result.stood_down:
            logger.info("run %s: batch stands down (%s)", run_id, result.stood_down)
            return result
        if stage == "extract":
            _extract_batch(settings, session_factory, run_id, list(call_ids), rules, result)
        else:
            if transcriber is None:
                raise ValueError("the transcribe stage needs a transcriber")
            _transcribe_batch(settings, session_factory, run_id, list(call_ids), rules, transcriber, claim, result)
    finish_if_complete(session_factory, run_id)
    return result


def _ticket_insert(call_id: str, transcript_id: str | None, draft: TicketDraft, now: datetime) -> dict[str, Any]:
    data = draft.to_dict()
    row = {name: data[name] for name in (*_ROW_FIELDS, "evidence", "confidence") if name != "due_at"}
    row.update(id=new_id(), call_id=call_id, transcript_id=transcript_id, rules_version=draft.rules_version,
               status=TicketStatus.NEEDS_REVIEW, due_at=draft.due_at, version=1, created_at=now, updated_at=now)
    return row


# ----------------------------------------------------------------------------------------- the stages
def _extract_batch(settings: Settings, factory: SessionFactory, run_id: str, call_ids: list[str], rules: Any,
                   result: BatchResult) -> None:
    from pipeline.extractors import extract_ticket

    zone = ZoneInfo(settings.timezone)
    for attempt in range(_ATTEMPTS):
        with session_scope(factory) as session:
            pending = list(session.scalars(select(ReprocessItemRow.call_id).where(
                ReprocessItemRow.run_id == run_id, ReprocessItemRow.call_id.in_(call_ids),
                ReprocessItemRow.status == ItemStatus.PENDING)))
            if not pending:
                return
            calls = {r.id: r for r in session.execute(
                select(CallRow.id, CallRow.received_at, CallRow.status).where(CallRow.id.in_(pending)))}
            transcripts: dict[str, Any] = {}
            for r in session.execute(
                select(TranscriptRow.id, TranscriptRow.call_id, TranscriptRow.language, TranscriptRow.segments,
                       TranscriptRow.duration_s, TranscriptRow.options, TranscriptRow.created_at)
                .where(TranscriptRow.call_id.in_(pending))
            ):
                held = transcripts.get(r.call_id)
                if held is None or (r.created_at, r.id) > (held.created_at, held.id):
                    transcripts[r.call_id] = r
            tickets: dict[str, list[Any]] = {}
            for r in session.execute(
                select(TicketRow.id, TicketRow.call_id, TicketRow.rules_version, TicketRow.status,
                       TicketRow.updated_at, *(getattr(TicketRow, name) for name in _ROW_FIELDS))
                .where(TicketRow.call_id.in_(pending))
            ):
                tickets.setdefault(r.call_id, []).append(r)
            version = current_rules_version(rules)

        now = utcnow()
        decisions: list[_Decision] = []
        for cid in (c for c in call_ids if c in set(pending)):
            call = calls.get(cid)
            transcript_row = transcripts.get(cid)
            rows = tickets.get(cid, [])
            if call is None or CallStatus(call.status) in NOT_SELECTED:
                decisions.append(_Decision(cid, ItemStatus.SKIPPED, "in flight: left to its queue job"))
                continue
            if transcript_row is None:
                decisions.append(_Decision(cid, ItemStatus.SKIPPED, "no stored transcript"))
                continue
            if any(r.rules_version == version for r in rows):
                decisions.append(_Decision(cid, ItemStatus.SKIPPED, "already drafted by these rules"))
                continue
            old_row = max(rows, key=lambda r: (r.updated_at, r.id)) if rows else None
            with log_context(call_id=cid):
                try:
                    draft = extract_ticket(repo.transcript_from_row(transcript_row),
                                           received_at=call.received_at.astimezone(zone), rules=rules)
                except PipelineError as exc:
                    logger.warning("call %s: re-extraction failed: %s", cid, exc)
                    decisions.append(_Decision(cid, ItemStatus.FAILED, f"{exc.stage or 'extract'}: {exc}"))
                    continue
            old = values_from_row(old_row._mapping, zone) if old_row is not None else None
            changes = diff_values(old, values_from_draft(draft))
            old_status = TicketStatus(old_row.status) if old_row is not None else None
            names = ", ".join(name for name, _, _ in changes)
            if old_status is not None and old_status is not TicketStatus.NEEDS_REVIEW:
                outcome = (f"kept the {old_status.value} ticket; "
                           f"{'the new rules would change ' + names if changes else 'no change'}")
                decisions.append(_Decision(cid, ItemStatus.DONE, outcome, changes, applied=False))
            else:
                decisions.append(_Decision(
                    cid, ItemStatus.DONE, f"changed {names}" if changes else "no change", changes,
                    ticket=_ticket_insert(cid, transcript_row.id, draft, now),
                    revive=CallStatus(call.status) in (CallStatus.FAILED, CallStatus.TRANSCRIBED),
                ))
        try:
            if _write_decisions(factory, run_id, decisions, now, result):
                return
        except Conflict as exc:  # a ticket of this version appeared meanwhile: read again, it is skipped then
            logger.info("run %s: batch raced with another writer (%s); reading it again", run_id, exc)
        if attempt == _ATTEMPTS - 1:
            raise StorageUnavailable(f"reprocess batch of run {run_id} kept racing with other writers")


def _write_decisions(factory: SessionFactory, run_id: str, decisions: list[_Decision], now: datetime,
                     result: BatchResult) -> bool:
    """Write a batch's outcome in one transaction; False (nothing written) when some item was finished
    by someone else since it was read."""
    if not decisions:
        return True
    ids = [d.call_id for d in decisions]
    with session_scope(factory) as session:
        # the first statement writes, so that SQLite takes its write lock before anything is read
        claimed = rowcount(session.execute(
            update(ReprocessItemRow).where(
                ReprocessItemRow.run_id == run_id, ReprocessItemRow.call_id.in_(ids),
                ReprocessItemRow.status == ItemStatus.PENDING,
            ).values(updated_at=now).execution_options(synchronize_session=False)
        ))
        if claimed != len(ids):
            session.rollback()
            return False
        session.execute(update(ReprocessItemRow), [
            {"run_id": run_id, "call_id": d.call_id, "status": d.status, "outcome": d.outcome} for d in decisions
        ])
        fresh = [d.ticket for d in decisions if d.ticket is not None]
        if fresh:
            session.execute(insert(TicketRow), fresh)
        revive = [d.call_id for d in decisions if d.revive]
        if revive:
            session.execute(
                update(CallRow).where(CallRow.id.in_(revive),
                                      CallRow.status.in_((CallStatus.FAILED, CallStatus.TRANSCRIBED)))
                .values(status=CallStatus.NEEDS_REVIEW, error_reason=None, error_stage=None, updated_at=now)
                .execution_options(synchronize_session=False)
            )
        changes = [
            {"run_id": run_id, "call_id": d.call_id, "field": name, "old_value": to_json(old),
             "new_value": to_json(new), "applied": d.applied}
            for d in decisions for name, old, new in d.changes
        ]
        if changes:
            session.execute(insert(ReprocessChangeRow), changes)
        counts = {
            "done": len(decisions), "changed": sum(1 for d in decisions if d.changes and d.status is ItemStatus.DONE),
            "failed": sum(1 for d in decisions if d.status is ItemStatus.FAILED),
            "skipped": sum(1 for d in decisions if d.status is ItemStatus.SKIPPED),
        }
        _add_counts(session, run_id, counts, now)
    result.done += counts["done"]
    result.changed += counts["changed"]
    result.failed += counts["failed"]
    result.skipped += counts["skipped"]
    return True

def _add_counts(session: Session, run_id: str, counts: Mapping[str, int], now: datetime) -> None:
    session.execute(
        update(ReprocessRunRow).where(ReprocessRunRow.id == run_id).values(
            done=ReprocessRunRow.done + counts["done"], changed=ReprocessRunRow.changed + counts["changed"],
            failed=ReprocessRunRow.failed + counts["failed"], skipped=ReprocessRunRow.skipped + counts["skipped"],
            updated_at=now,
        ).execution_options(synchronize_session=False)
    )


def _transcribe_batch(settings: Settings, factory: SessionFactory, run_id: str, call_ids: list[str], rules: Any,
                      transcriber: Callable[[], Any], claim: Claim | None, result: BatchResult) -> None:
    from pipeline.process import process_call

    zone = ZoneInfo(settings.timezone)
    for cid in call_ids:
        with log_context(call_id=cid), (claim(cid) if claim else nullcontext()) as lease:
            with session_scope(factory) as session:
                item = session.get(ReprocessItemRow, (run_id, cid))
                if item is None or item.status is not ItemStatus.PENDING:
                    continue
                call = session.get(CallRow, cid)
                rows = list(session.scalars(select(TicketRow).where(TicketRow.call_id == cid)))
                old_row = max(rows, key=lambda r: (r.updated_at, r.id)) if rows else None
                old = values_from_row({n: getattr(old_row, n) for n in DIFF_FIELDS}, zone) if old_row else None
                call_status = call.status if call is not None else None
            decision: _Decision
            if lease is not None and not getattr(lease, "acquired", True):
                decision = _Decision(cid, ItemStatus.SKIPPED, "a queue job was working on the call")
            elif call_status is None or call_status in NOT_SELECTED:
                decision = _Decision(cid, ItemStatus.SKIPPED, "in flight: left to its queue job")
            elif old_row is not None and old_row.status is not TicketStatus.NEEDS_REVIEW:
                decision = _Decision(cid, ItemStatus.SKIPPED,
                                     f"kept the {old_row.status.value} ticket and the transcript it was reviewed on")
            else:
                try:
                    processed = process_call(settings, call_id=cid, transcriber=transcriber(),
                                             session_factory=factory, force=True, rules=rules)
                except StorageUnavailable:
                    raise
                except PipelineError as exc:
                    decision = _Decision(cid, ItemStatus.FAILED, f"{exc.stage or 'transcribe'}: {exc}")
                else:
                    changes = diff_values(old, values_from_draft(processed.ticket))
                    names = ", ".join(name for name, _, _ in changes)
                    decision = _Decision(cid, ItemStatus.DONE, f"changed {names}" if changes else "no change",
                                         changes)
            _write_decisions(factory, run_id, [decision], utcnow(), result)


def run_inline(
    settings: Settings, *, session_factory: SessionFactory, run_id: str, batch_size: int | None = None,
    transcriber: Callable[[], Any] | None = None, on_progress: Callable[[RunProgress], None] | None = None,
    claim: Claim | None = None,
) -> RunProgress:
    """Process a run's pending items here, batch after batch, and return its progress at the end.

    ``on_progress`` is called after each batch. A ``KeyboardInterrupt`` stops the run (``stop_run``) and is
    raised again; ``resume_run`` and another ``run_inline`` go on from the first pending item.
    """
    from pipeline.extractors import load_rules

    progress = get_run(session_factory, run_id=run_id)
    if progress.status is not RunStatus.RUNNING:
        return progress
    if progress.stage == "transcribe" and transcriber is None:
        from pipeline.asr import load_transcriber

        loaded: list[Any] = []

        def transcriber() -> Any:
            if not loaded:
                loaded.append(load_transcriber(settings))
            return loaded[0]

    size = batch_size or (settings.ops.reprocess_batch_size if progress.stage == "extract"
                          else settings.ops.retranscribe_batch_size)
    rules = load_rules()
    try:
        for batch in pending_batches(session_factory, run_id=run_id, batch_size=size):
            outcome = process_batch(settings, session_factory=session_factory, run_id=run_id,
                                    pass_no=progress.passes, call_ids=batch, rules=rules, transcriber=transcriber,
                                    claim=claim)
            if outcome.stood_down:
                break
            if on_progress is not None:
                on_progress(get_run(session_factory, run_id=run_id))
    except KeyboardInterrupt:
        stop_run(session_factory, run_id=run_id)
        raise
    finish_if_complete(session_factory, run_id)
    return get_run(session_factory, run_id=run_id)
