"""Reprocess part of the archive with new rules (or a new engine), resumably, with a diff of what changed.

A *run* is a stored record (``pipeline.storage.reprocess``) with its own id. Starting one selects the
calls (received between ``since`` and ``until``, matching ``where`` filters on the call or its current
ticket) and records one *item* per call, ``pending``. Batches of pending items are then processed, in
the starting process (``run_inline``) or on the ``archive`` queue by workers (``process_batch`` is what
each job runs); each batch records its items ``done``/``failed``/``skipped`` in the same transaction as its
results, so a run that is stopped (``stop_run``, Ctrl-C, a worker killed) resumes (``resume_run``) without
redoing a finished call, and a batch that runs twice finds its items done and returns.

Stages:

* ``extract`` re-extracts from the stored transcript — Whisper does not run. Transcripts, old tickets and
  items are read in a few queries per batch and results written with multi-row statements, so the rules
  (about 1,600 transcripts a second) stay the bottleneck.
* ``transcribe`` decodes and transcribes the audio again (``pipeline.service.process_call`` with
  ``force``), then extracts.

Tickets: the run drafts each call's ticket under its own rules version (one ticket per call and
version, a unique constraint). A call that already has a ticket of that version is skipped (the stage
finds its result stored). A call whose current ticket an operator has already reviewed keeps it: the
new draft is compared but not stored (its changes are reported with ``applied = false``), so approved
work does not come back for review. Calls still in flight (``queued``, ``processing``) are not selected.

The diff compares the call's current ticket before the run with the new draft, field by field (the
ticket contract's fields and ``needs_review``); ``write_report`` writes it as CSV and JSON
(``call_id, field, old_value, new_value, applied``).

Example::

    run = start_run(settings, session_factory=factory, stage="extract",
                    selection=Selection(since=datetime(2026, 1, 1, tzinfo=UTC), where={"category": "housing."}))
    run = run_inline(settings, session_factory=factory, run_id=run.id)
    csv_path, json_path = write_report(settings, session_factory=factory, run_id=run.id)
"""

from __future__ import annotations

import csv
import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, exists, func, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from pipeline.errors import Conflict, NotFound, PipelineError, StorageUnavailable
from pipeline.logs import log_context
from pipeline.settings import Settings
from pipeline.storage.base import new_id, utcnow
from pipeline.storage.calls import CallRow, CallStatus, TranscriptRow
from pipeline.storage.db import session_scope
from pipeline.storage.reprocess import (
    ItemStatus,
    ReprocessChangeRow,
    ReprocessItemRow,
    ReprocessRunRow,
    RunStatus,
)
from pipeline.storage.tickets import TicketRow
from pipeline.ticket import FIELDS, TicketDraft, TicketStatus
from pipeline.transcript import Segment, Transcript

logger = logging.getLogger(__name__)

STAGES = ("extract", "transcribe")
#: the fields compared for the diff report
DIFF_FIELDS: tuple[str, ...] = (*FIELDS, "needs_review")
#: ``--where`` keys: on the call's current ticket, or on the call itself
TICKET_FILTERS = ("category", "district", "street", "urgency", "request_type", "department", "ticket_status")
CALL_FILTERS = ("language", "status", "line")
WHERE_KEYS = TICKET_FILTERS + CALL_FILTERS
_NOT_SELECTED = (CallStatus.QUEUED, CallStatus.PROCESSING)
_ROW_FIELDS = ("request_type", "category", "urgency", "due_at", "district", "street", "community", "address",
               "department", "callback_number", "caller_surname", "vulnerable", "amounts", "summary", "language",
               "needs_review")
#: a batch whose items were taken by someone else meanwhile is read again, this many times at most
_ATTEMPTS = 3
CHANGE_PAGE = 5000

SessionFactory = sessionmaker[Session]
#: ``claim(call_id)`` returns a context manager whose ``acquired`` says whether this process may work on
#: the call now (the queue's per-call lease); used by the ``transcribe`` stage
Claim = Callable[[str], AbstractContextManager[Any]]


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


@dataclass(frozen=True)
class RunProgress:
    """A run as stored, with its rate and ETA over the current pass."""

    id: str
    status: RunStatus
    stage: str
    rules_version: str
    mode: str
    filters: Mapping[str, Any]
    total: int
    done: int
    changed: int
    failed: int
    skipped: int
    passes: int
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    created_by: str | None
    error: str | None
    rate_per_s: float | None
    eta_s: float | None

    @property
    def remaining(self) -> int:
        return max(self.total - self.done, 0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "status": self.status.value, "stage": self.stage, "rules_version": self.rules_version,
            "mode": self.mode, "filters": dict(self.filters), "total": self.total, "done": self.done,
            "changed": self.changed, "failed": self.failed, "skipped": self.skipped, "passes": self.passes,
            "remaining": self.remaining, "rate_per_s": self.rate_per_s, "eta_s": self.eta_s,
            "created_at": self.created_at.isoformat(), "updated_at": self.updated_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "created_by": self.created_by, "error": self.error,
        }


def _progress(row: ReprocessRunRow, now: datetime | None = None) -> RunProgress:
    now = now or utcnow()
    rate = eta = None
    elapsed = ((row.finished_at or now) - row.pass_started_at).total_seconds()
    progressed = row.done - row.pass_start_done
    if elapsed > 0 and progressed > 0:
        rate = progressed / elapsed
        eta = 0.0 if row.status is RunStatus.DONE else max(row.total - row.done, 0) / rate
    return RunProgress(
        id=row.id, status=RunStatus(row.status), stage=row.stage, rules_version=row.rules_version, mode=row.mode,
        filters=dict(row.filters or {}), total=row.total, done=row.done, changed=row.changed, failed=row.failed,
        skipped=row.skipped, passes=row.passes, created_at=row.created_at, updated_at=row.updated_at,
        finished_at=row.finished_at, created_by=row.created_by, error=row.error, rate_per_s=rate, eta_s=eta,
    )


def _current_rules_version(rules: Any = None) -> str:
    from pipeline.extractors import rules_version

    return rules_version(rules)


def _current_tickets() -> Any:
    """Each call's current ticket (the one drafted or edited last), as a subquery."""
    ranked = select(
        TicketRow.call_id, TicketRow.category, TicketRow.district, TicketRow.street, TicketRow.urgency,
        TicketRow.request_type, TicketRow.department, TicketRow.status,
        func.row_number().over(partition_by=TicketRow.call_id,
                               order_by=(TicketRow.updated_at.desc(), TicketRow.id.desc())).label("rn"),
    ).subquery("ranked")
    return select(ranked).where(ranked.c.rn == 1).subquery("current_ticket")


def select_calls(stage: str, selection: Selection) -> Select[Any]:
    """The query for the ids of the calls a run of ``stage`` over ``selection`` covers, oldest first."""
    query = select(CallRow.id).where(CallRow.status.not_in(_NOT_SELECTED))
    if stage == "extract":
        query = query.where(exists().where(TranscriptRow.call_id == CallRow.id))
    if selection.since is not None:
        query = query.where(CallRow.received_at >= selection.since)
    if selection.until is not None:
        query = query.where(CallRow.received_at < selection.until)
    where = dict(selection.where)
    if any(key in TICKET_FILTERS for key in where):
        current = _current_tickets()
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


def start_run(
    settings: Settings, *, session_factory: SessionFactory, stage: str = "extract",
    selection: Selection | None = None, mode: str = "inline", created_by: str | None = None, rules: Any = None,
) -> RunProgress:
    """Record a new run over the calls ``selection`` picks (one pending item each) and return it.

    ``mode`` is ``inline`` or ``queue`` (who will process the batches; recorded for the report). The run's
    rules version is this process's (``rules``, default the bundled ones). A selection with no calls makes
    a run that is ``done`` at once.
    """
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; known: {', '.join(STAGES)}")
    if mode not in ("inline", "queue"):
        raise ValueError(f"unknown mode {mode!r}")
    selection = selection or Selection()
    version = _current_rules_version(rules)
    now = utcnow()
    with session_scope(session_factory) as session:
        call_ids = list(session.scalars(select_calls(stage, selection)))
        run = ReprocessRunRow(
            id=new_id(), status=RunStatus.RUNNING if call_ids else RunStatus.DONE, stage=stage,
            rules_version=version, filters=selection.to_dict(), mode=mode, total=len(call_ids), done=0,
            changed=0, failed=0, skipped=0, passes=1, pass_started_at=now, pass_start_done=0,
            created_by=created_by, created_at=now, updated_at=now, finished_at=None if call_ids else now,
        )
        session.add(run)
        session.flush()
        for start in range(0, len(call_ids), 5000):
            session.execute(insert(ReprocessItemRow), [
                {"run_id": run.id, "call_id": cid, "seq": start + i, "status": ItemStatus.PENDING}
                for i, cid in enumerate(call_ids[start:start + 5000])
            ])
        progress = _progress(run, now)
    logger.info("run %s: %s over %d call(s) with rules %s (%s)", progress.id, stage, progress.total, version, mode)
    return progress


def get_run(session_factory: SessionFactory, *, run_id: str) -> RunProgress:
    """The run with this id and its progress; ``NotFound`` when there is none."""
    with session_scope(session_factory) as session:
        return _progress(_get(session, run_id))


def list_runs(session_factory: SessionFactory, *, limit: int = 20) -> list[RunProgress]:
    """The latest runs, newest first."""
    with session_scope(session_factory) as session:
        rows = session.scalars(select(ReprocessRunRow).order_by(ReprocessRunRow.created_at.desc())
                               .limit(max(1, min(limit, 200))))
        now = utcnow()
        return [_progress(row, now) for row in rows]


def _get(session: Session, run_id: str) -> ReprocessRunRow:
    run = session.get(ReprocessRunRow, run_id)
    if run is None:
        raise NotFound(f"no reprocess run with id {run_id!r}")
    return run


def stop_run(session_factory: SessionFactory, *, run_id: str) -> RunProgress:
    """Stop a running run: batches not yet started stand down; finished items stay finished."""
    with session_scope(session_factory) as session:
        run = _get(session, run_id)
        if run.status is RunStatus.RUNNING:
            run.status = RunStatus.STOPPED
            run.updated_at = utcnow()
            logger.info("run %s: stopped at %d/%d", run.id, run.done, run.total)
        return _progress(run)


def resume_run(session_factory: SessionFactory, *, run_id: str, rules: Any = None) -> RunProgress:
    """Start a new pass over the pending items of a stopped (or interrupted) run.

    ``Conflict`` when the run is already done, or when this process's rules version is not the run's
    (a run drafts every ticket with one version; start a new run for new rules).
    """
    version = _current_rules_version(rules)
    with session_scope(session_factory) as session:
        run = _get(session, run_id)
        if run.status is RunStatus.DONE:
            raise Conflict(f"reprocess run {run_id} is already done")
        if run.rules_version != version:
            raise Conflict(f"reprocess run {run_id} drafts with rules {run.rules_version}, this host has "
                           f"{version}; start a new run")
        now = utcnow()
        run.status = RunStatus.RUNNING
        run.passes += 1
        run.pass_started_at = now
        run.pass_start_done = run.done
        run.updated_at = now
        session.flush()
        progress = _progress(run, now)
    logger.info("run %s: pass %d resumes at %d/%d", run_id, progress.passes, progress.done, progress.total)
    _finish_if_complete(session_factory, run_id)
    return get_run(session_factory, run_id=run_id)


def pending_batches(session_factory: SessionFactory, *, run_id: str, batch_size: int) -> list[list[str]]:
    """The run's pending call ids in order, cut into batches of ``batch_size``."""
    size = max(1, int(batch_size))
    with session_scope(session_factory) as session:
        ids = list(session.scalars(
            select(ReprocessItemRow.call_id)
            .where(ReprocessItemRow.run_id == run_id, ReprocessItemRow.status == ItemStatus.PENDING)
            .order_by(ReprocessItemRow.seq)
        ))
    return [ids[i:i + size] for i in range(0, len(ids), size)]


def batch_durations(session_factory: SessionFactory, batches: Sequence[Sequence[str]]) -> list[float]:
    """Total audio seconds of each batch (for the time limits of transcribe batches)."""
    wanted = [cid for batch in batches for cid in batch]
    durations: dict[str, float] = {}
    with session_scope(session_factory) as session:
        for start in range(0, len(wanted), 1000):
            chunk = wanted[start:start + 1000]
            durations.update({cid: d or 0.0 for cid, d in session.execute(
                select(CallRow.id, CallRow.duration_s).where(CallRow.id.in_(chunk)))})
    return [sum(durations.get(cid, 0.0) for cid in batch) for batch in batches]


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
            run = _get(session, run_id)
            stage, status, passes, version = run.stage, run.status, run.passes, run.rules_version
        if status is not RunStatus.RUNNING:
            result.stood_down = f"run is {status.value}"
        elif passes != pass_no:
            result.stood_down = f"run is at pass {passes}; this batch belongs to pass {pass_no}"
        elif _current_rules_version(rules) != version:
            result.stood_down = f"run drafts with rules {version}, this process has {_current_rules_version(rules)}"
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
    _finish_if_complete(session_factory, run_id)
    return result


# ------------------------------------------------------------------------------------------ comparing
def _plain_amounts(values: Iterable[Any]) -> list[Any]:
    return [int(a) if float(a).is_integer() else a for a in values or ()]


def values_from_draft(draft: TicketDraft) -> dict[str, Any]:
    """The compared fields of a draft, as the ticket's JSON form shows them."""
    data = draft.to_dict()
    return {name: data[name] for name in DIFF_FIELDS}


def values_from_row(row: Mapping[str, Any], zone: tzinfo) -> dict[str, Any]:
    """The compared fields of a stored ticket (a mapping of its columns), in the same form."""
    values = {name: row[name] for name in DIFF_FIELDS}
    values["due_at"] = row["due_at"].astimezone(zone).isoformat() if row["due_at"] else None
    values["vulnerable"] = sorted(row["vulnerable"] or ())
    values["amounts"] = _plain_amounts(row["amounts"] or ())
    values["needs_review"] = list(row["needs_review"] or ())
    return values


def diff_values(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    """``(field, old, new)`` for every compared field whose value differs (all set fields when no old)."""
    out = []
    for name in DIFF_FIELDS:
        before = old.get(name) if old is not None else None
        after = new.get(name)
        if old is None and after in (None, "", []):
            continue
        if before != after:
            out.append((name, before, after))
    return out


def _ticket_insert(call_id: str, transcript_id: str | None, draft: TicketDraft, now: datetime) -> dict[str, Any]:
    data = draft.to_dict()
    row = {name: data[name] for name in (*_ROW_FIELDS, "evidence", "confidence") if name != "due_at"}
    row.update(id=new_id(), call_id=call_id, transcript_id=transcript_id, rules_version=draft.rules_version,
               status=TicketStatus.NEEDS_REVIEW, due_at=draft.due_at, version=1, created_at=now, updated_at=now)
    return row


def _transcript(row: Any) -> Transcript:
    return Transcript(language=row.language, segments=tuple(Segment.from_dict(s) for s in row.segments or ()),
                      duration=row.duration_s, options=dict(row.options or {}))


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
            version = _current_rules_version(rules)

        now = utcnow()
        decisions: list[_Decision] = []
        for cid in (c for c in call_ids if c in set(pending)):
            call = calls.get(cid)
            transcript_row = transcripts.get(cid)
            rows = tickets.get(cid, [])
            if call is None or CallStatus(call.status) in _NOT_SELECTED:
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
                    draft = extract_ticket(_transcript(transcript_row), received_at=call.received_at.astimezone(zone),
                                           rules=rules)
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
        claimed = _rowcount(session.execute(
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
            {"run_id": run_id, "call_id": d.call_id, "field": name, "old_value": _json(old),
             "new_value": _json(new), "applied": d.applied}
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


def _rowcount(result: Any) -> int:
    """Rows an UPDATE matched (a ``CursorResult``'s ``rowcount``)."""
    return int(result.rowcount)


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
    from pipeline.service import process_call

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
            elif call_status is None or call_status in _NOT_SELECTED:
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


def _finish_if_complete(session_factory: SessionFactory, run_id: str) -> None:
    with session_scope(session_factory) as session:
        finished = _rowcount(session.execute(
            update(ReprocessRunRow).where(
                ReprocessRunRow.id == run_id, ReprocessRunRow.status == RunStatus.RUNNING,
                ReprocessRunRow.done >= ReprocessRunRow.total,
            ).values(status=RunStatus.DONE, finished_at=utcnow(), updated_at=utcnow())
            .execution_options(synchronize_session=False)
        ))
    if finished:
        logger.info("run %s: done", run_id)


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
    _finish_if_complete(session_factory, run_id)
    return get_run(session_factory, run_id=run_id)


# -------------------------------------------------------------------------------------------- reports
def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def iter_changes(session_factory: SessionFactory, *, run_id: str) -> Iterator[dict[str, Any]]:
    """The run's diff, one ``{"call_id", "field", "old_value", "new_value", "applied"}`` at a time (values
    as JSON values), in the order they were recorded."""
    after = 0
    while True:
        with session_scope(session_factory) as session:
            rows = session.execute(
                select(ReprocessChangeRow.id, ReprocessChangeRow.call_id, ReprocessChangeRow.field,
                       ReprocessChangeRow.old_value, ReprocessChangeRow.new_value, ReprocessChangeRow.applied)
                .where(ReprocessChangeRow.run_id == run_id, ReprocessChangeRow.id > after)
                .order_by(ReprocessChangeRow.id).limit(CHANGE_PAGE)
            ).all()
        if not rows:
            return
        for r in rows:
            yield {"call_id": r.call_id, "field": r.field, "old_value": json.loads(r.old_value),
                   "new_value": json.loads(r.new_value), "applied": bool(r.applied)}
        after = rows[-1].id


def iter_failures(session_factory: SessionFactory, *, run_id: str) -> Iterator[dict[str, Any]]:
    """The run's failed items: ``{"call_id", "reason"}``."""
    with session_scope(session_factory) as session:
        rows = session.execute(
            select(ReprocessItemRow.call_id, ReprocessItemRow.outcome)
            .where(ReprocessItemRow.run_id == run_id, ReprocessItemRow.status == ItemStatus.FAILED)
            .order_by(ReprocessItemRow.seq)
        ).all()
    for r in rows:
        yield {"call_id": r.call_id, "reason": r.outcome}


def csv_cell(value: Any) -> str:
    """A diff value as a CSV cell: text as it is, nothing as empty, anything else as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return _json(value)


CSV_HEADER = ("call_id", "field", "old_value", "new_value", "applied")


def write_report(settings: Settings, *, session_factory: SessionFactory, run_id: str,
                 directory: Path | None = None) -> tuple[Path, Path]:
    """Write the run's diff as ``reprocess-<run id>.csv`` and ``.json`` under ``directory`` (default
    ``settings.resolved_report_dir``) and return both paths. The JSON holds the run, the changes and the
    failed calls; it can be written while the run goes on (a report of what is done so far)."""
    progress = get_run(session_factory, run_id=run_id)
    directory = Path(directory or settings.resolved_report_dir)
    directory.mkdir(parents=True, exist_ok=True)
    csv_path = directory / f"reprocess-{run_id}.csv"
    json_path = directory / f"reprocess-{run_id}.json"
    csv_tmp, json_tmp = csv_path.with_suffix(".csv.part"), json_path.with_suffix(".json.part")
    with csv_tmp.open("w", newline="", encoding="utf-8") as out_csv, json_tmp.open("w", encoding="utf-8") as out_js:
        writer = csv.writer(out_csv)
        writer.writerow(CSV_HEADER)
        out_js.write('{"run": ' + _json(progress.to_dict()) + ',\n "changes": [')
        first = True
        for change in iter_changes(session_factory, run_id=run_id):
            writer.writerow([change["call_id"], change["field"], csv_cell(change["old_value"]),
                             csv_cell(change["new_value"]), "true" if change["applied"] else "false"])
            out_js.write(("\n  " if first else ",\n  ") + _json(change))
            first = False
        out_js.write('\n ],\n "failed": ' + _json(list(iter_failures(session_factory, run_id=run_id))) + "}\n")
    csv_tmp.replace(csv_path)
    json_tmp.replace(json_path)
    logger.info("run %s: diff report written to %s and %s", run_id, csv_path, json_path)
    return csv_path, json_path


def format_progress(progress: RunProgress) -> str:
    """One status line: ``run 3f2a…: 4,500/10,000 (45.0 %), 1,520 calls/s, ETA 0:00:04, 1,203 changed, 0 failed``."""
    percent = 100.0 * progress.done / progress.total if progress.total else 100.0
    rate = f"{progress.rate_per_s:,.0f} calls/s" if progress.rate_per_s else "- calls/s"
    eta = time.strftime("%H:%M:%S", time.gmtime(progress.eta_s)) if progress.eta_s is not None else "-"
    return (f"run {progress.id} [{progress.status.value}]: {progress.done:,}/{progress.total:,} ({percent:.1f} %), "
            f"{rate}, ETA {eta}, {progress.changed:,} changed, {progress.failed:,} failed, "
            f"{progress.skipped:,} skipped")


__all__ = [
    "BatchResult", "CSV_HEADER", "DIFF_FIELDS", "RunProgress", "STAGES", "Selection", "WHERE_KEYS", "batch_durations",
    "diff_values", "format_progress", "get_run", "iter_changes", "iter_failures", "list_runs", "parse_time",
    "parse_where", "pending_batches", "process_batch", "resume_run", "run_inline", "select_calls", "start_run",
    "stop_run", "values_from_draft", "values_from_row", "write_report",
]
