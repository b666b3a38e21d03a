"""Runs as stored records: start, read, stop, resume, the batches still pending, and progress lines."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from pipeline.errors import Conflict, NotFound
from pipeline.reprocess.selection import STAGES, Selection, select_calls
from pipeline.settings import Settings
from pipeline.storage.base import new_id, utcnow
from pipeline.storage.calls import CallRow
from pipeline.storage.db import SessionFactory, session_scope
from pipeline.storage.reprocess import (
    ItemStatus,
    ReprocessItemRow,
    ReprocessRunRow,
    RunStatus,
)

logger = logging.getLogger(__name__)

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


def progress_of(row: ReprocessRunRow, now: datetime | None = None) -> RunProgress:
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


def current_rules_version(rules: Any = None) -> str:
    from pipeline.extractors import rules_version

    return rules_version(rules)


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
    version = current_rules_version(rules)
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
        progress = progress_of(run, now)
    logger.info("run %s: %s over %d call(s) with rules %s (%s)", progress.id, stage, progress.total, version, mode)
    return progress


def get_run(session_factory: SessionFactory, *, run_id: str) -> RunProgress:
    """The run with this id and its progress; ``NotFound`` when there is none."""
    with session_scope(session_factory) as session:
        return progress_of(get_row(session, run_id))


def list_runs(session_factory: SessionFactory, *, limit: int = 20) -> list[RunProgress]:
    """The latest runs, newest first."""
    with session_scope(session_factory) as session:
        rows = session.scalars(select(ReprocessRunRow).order_by(ReprocessRunRow.created_at.desc())
                               .limit(max(1, min(limit, 200))))
        now = utcnow()
        return [progress_of(row, now) for row in rows]


def get_row(session: Session, run_id: str) -> ReprocessRunRow:
    run = session.get(ReprocessRunRow, run_id)
    if run is None:
        raise NotFound(f"no reprocess run with id {run_id!r}")
    return run


def stop_run(session_factory: SessionFactory, *, run_id: str) -> RunProgress:
    """Stop a running run: batches not yet started stand down; finished items stay finished."""
    with session_scope(session_factory) as session:
        run = get_row(session, run_id)
        if run.status is RunStatus.RUNNING:
            run.status = RunStatus.STOPPED
            run.updated_at = utcnow()
            logger.info("run %s: stopped at %d/%d", run.id, run.done, run.total)
        return progress_of(run)


def resume_run(session_factory: SessionFactory, *, run_id: str, rules: Any = None) -> RunProgress:
    """Start a new pass over the pending items of a stopped (or interrupted) run.

    ``Conflict`` when the run is already done, or when this process's rules version is not the run's
    (a run drafts every ticket with one version; start a new run for new rules).
    """
    version = current_rules_version(rules)
    with session_scope(session_factory) as session:
        run = get_row(session, run_id)
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
        progress = progress_of(run, now)
    logger.info("run %s: pass %d resumes at %d/%d", run_id, progress.passes, progress.done, progress.total)
    finish_if_complete(session_factory, run_id)
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


def finish_if_complete(session_factory: SessionFactory, run_id: str) -> None:
    with session_scope(session_factory) as session:
        finished = rowcount(session.execute(
            update(ReprocessRunRow).where(
                ReprocessRunRow.id == run_id, ReprocessRunRow.status == RunStatus.RUNNING,
                ReprocessRunRow.done >= ReprocessRunRow.total,
            ).values(status=RunStatus.DONE, finished_at=utcnow(), updated_at=utcnow())
            .execution_options(synchronize_session=False)
        ))
    if finished:
        logger.info("run %s: done", run_id)


def format_progress(progress: RunProgress) -> str:
    """One status line: ``run 3f2a…: 4,500/10,000 (45.0 %), 1,520 calls/s, ETA 0:00:04, 1,203 changed, 0 failed``."""
    percent = 100.0 * progress.done / progress.total if progress.total else 100.0
    rate = f"{progress.rate_per_s:,.0f} calls/s" if progress.rate_per_s else "- calls/s"
    eta = time.strftime("%H:%M:%S", time.gmtime(progress.eta_s)) if progress.eta_s is not None else "-"
    return (f"run {progress.id} [{progress.status.value}]: {progress.done:,}/{progress.total:,} ({percent:.1f} %), "
            f"{rate}, ETA {eta}, {progress.changed:,} changed, {progress.failed:,} failed, "
            f"{progress.skipped:,} skipped")



def rowcount(result: Any) -> int:
    """Rows an UPDATE matched (a ``CursorResult``'s ``rowcount``)."""
    return int(result.rowcount)
