"""``/admin``: reprocess the archive and repair lost work (supervisors only).

* ``POST /admin/reprocess`` starts a run (``pipeline.reprocess``) and answers 202 with it at once; the
  batches go on the ``archive`` queue (or run in this process with ``queue_mode=inline``).
* ``GET /admin/reprocess/{id}`` is its progress (done, changed, failed, rate, ETA); ``GET /admin/reprocess``
  the latest runs; ``POST …/stop`` and ``POST …/resume`` stop it and go on with what is pending.
* ``GET /admin/reprocess/{id}/report`` is the diff (``?format=csv`` or ``json``), also while it runs.
* ``POST /admin/reconcile`` runs one ``reconcile`` pass now (lost calls and lost dispatch jobs) and
  answers with what it did.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, BackgroundTasks, Depends, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field, field_validator, model_validator

from api.app import ApiState, State
from api.auth import Principal, Role, require_role
from api.schemas import ErrorRead
from pipeline import reprocess
from pipeline.errors import Conflict, PipelineError

logger = logging.getLogger(__name__)

SupervisorOnly = Annotated[Principal, Depends(require_role(Role.SUPERVISOR))]
router = APIRouter(prefix="/admin", tags=["admin"])

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorRead}, 403: {"model": ErrorRead}, 404: {"model": ErrorRead},
    409: {"model": ErrorRead}, 503: {"model": ErrorRead, "description": "Database or job queue unavailable"},
}


class ReprocessCreate(BaseModel):
    """Which calls to reprocess, and how."""

    stage: Literal["extract", "transcribe"] = "extract"
    """``extract``: the rules again on stored transcripts (no speech model); ``transcribe``: the audio too."""
    since: datetime | None = None
    """Calls received at or after this time (without an offset: the hotline's time zone)."""
    until: datetime | None = None
    """Calls received before this time."""
    where: dict[str, str] = Field(default_factory=dict, examples=[{"category": "housing.", "district": "朝阳区"}])
    """Filters on the current ticket (``category`` — a code or a group ending in ``.`` —, ``district``,
    ``street``, ``urgency``, ``request_type``, ``department``, ``ticket_status``) or the call
    (``language``, ``status``, ``line``)."""
    batch_size: int | None = Field(default=None, ge=1, le=10_000)
    """Calls per batch (default: the settings)."""

    @field_validator("where")
    @classmethod
    def _known_filters(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(reprocess.WHERE_KEYS))
        if unknown:
            raise ValueError(f"unknown filter {', '.join(unknown)}; known: {', '.join(reprocess.WHERE_KEYS)}")
        if any(not str(v).strip() for v in value.values()):
            raise ValueError("filter values must not be empty")
        return value

    @model_validator(mode="after")
    def _ordered(self) -> ReprocessCreate:
        if self.since and self.until and _aware(self.since, "UTC") >= _aware(self.until, "UTC"):
            raise ValueError("since must be before until")
        return self


class ReprocessRead(BaseModel):
    """A run and its progress."""

    id: str
    status: Literal["running", "stopped", "done"]
    stage: str
    rules_version: str
    mode: str
    filters: dict[str, Any]
    total: int
    done: int
    changed: int
    failed: int
    skipped: int
    passes: int
    remaining: int
    rate_per_s: float | None
    """Calls a second over the current pass."""
    eta_s: float | None
    """Seconds left at that rate."""
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    created_by: str | None
    error: str | None


class ReprocessList(BaseModel):
    items: list[ReprocessRead]


class ReconcileRead(BaseModel):
    """What one reconcile pass found and did."""

    checked: int
    """Calls in flight (queued, processing, transcribed) older than the grace."""
    waiting: int
    running: int
    requeued: list[str]
    """Calls whose job was lost, enqueued again."""
    gave_up: list[str]
    """Calls lost too many times, marked failed."""
    skipped: int
    dispatch_requeued: list[str]
    """Approved tickets whose dispatch job was lost, queued again."""


def _aware(value: datetime, zone: str) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=ZoneInfo(zone))


def _read(progress: reprocess.RunProgress) -> ReprocessRead:
    return ReprocessRead.model_validate(progress.to_dict())


def _launch(state: ApiState, progress: reprocess.RunProgress, background: BackgroundTasks,
            batch_size: int | None) -> None:
    settings = state.settings
    if progress.status is not reprocess.RunStatus.RUNNING:
        return
    if settings.queue_mode == "inline":
        background.add_task(_run_inline, state, progress.id, batch_size)
        return
    from workers.queues import enqueue_reprocess

    size = batch_size or (settings.ops.reprocess_batch_size if progress.stage == "extract"
                          else settings.ops.retranscribe_batch_size)
    batches = reprocess.pending_batches(state.session_factory, run_id=progress.id, batch_size=size)
    durations = reprocess.batch_durations(state.session_factory, batches) if progress.stage == "transcribe" else None
    enqueue_reprocess(state.redis, run_id=progress.id, pass_no=progress.passes, stage=progress.stage,
                      batches=batches, rules_version=progress.rules_version, durations_s=durations)


def _run_inline(state: ApiState, run_id: str, batch_size: int | None) -> None:
    try:
        reprocess.run_inline(state.settings, session_factory=state.session_factory, run_id=run_id,
                             batch_size=batch_size, transcriber=state.transcriber)
    except PipelineError as exc:  # the run stays resumable; its items say how far it got
        logger.error("run %s: inline reprocessing stopped: %s", run_id, exc)


@router.post("/reprocess", status_code=202, response_model=ReprocessRead, responses=ERRORS,
             summary="Start reprocessing stored calls")
def start_reprocess(body: ReprocessCreate, state: State, principal: SupervisorOnly,
                    background: BackgroundTasks) -> ReprocessRead:
    """Record a run over the calls the body selects and start it; answers at once (202)."""
    zone = state.settings.timezone
    selection = reprocess.Selection(
        since=_aware(body.since, zone) if body.since else None, until=_aware(body.until, zone) if body.until else None,
        where={k: v.strip() for k, v in body.where.items()},
    )
    if state.settings.queue_mode == "rq":
        from workers.queues import ping

        ping(state.redis)  # 503 before anything is recorded
    progress = reprocess.start_run(
        state.settings, session_factory=state.session_factory, stage=body.stage, selection=selection,
        mode="inline" if state.settings.queue_mode == "inline" else "queue", created_by=principal.name,
    )
    _launch(state, progress, background, body.batch_size)
    return _read(progress)


@router.get("/reprocess", response_model=ReprocessList, responses=ERRORS, summary="The latest reprocess runs")
def list_reprocess(state: State, principal: SupervisorOnly,
                   limit: Annotated[int, Query(ge=1, le=200)] = 20) -> ReprocessList:
    return ReprocessList(items=[_read(p) for p in reprocess.list_runs(state.session_factory, limit=limit)])


@router.get("/reprocess/{run_id}", response_model=ReprocessRead, responses=ERRORS,
            summary="A reprocess run's progress")
def read_reprocess(run_id: str, state: State, principal: SupervisorOnly) -> ReprocessRead:
    return _read(reprocess.get_run(state.session_factory, run_id=run_id))


@router.post("/reprocess/{run_id}/stop", response_model=ReprocessRead, responses=ERRORS,
             summary="Stop a run; finished calls stay finished")
def stop_reprocess(run_id: str, state: State, principal: SupervisorOnly) -> ReprocessRead:
    return _read(reprocess.stop_run(state.session_factory, run_id=run_id))


@router.post("/reprocess/{run_id}/resume", status_code=202, response_model=ReprocessRead, responses=ERRORS,
             summary="Go on with the pending calls of a stopped run")
def resume_reprocess(run_id: str, state: State, principal: SupervisorOnly,
                     background: BackgroundTasks) -> ReprocessRead:
    if state.settings.queue_mode == "rq":
        from workers.queues import ping

        ping(state.redis)
    progress = reprocess.resume_run(state.session_factory, run_id=run_id)
    _launch(state, progress, background, None)
    return _read(progress)


@router.get("/reprocess/{run_id}/report", responses={
    **ERRORS, 200: {"description": "The diff: JSON (run, changes, failed) or CSV "
                    "(call_id, field, old_value, new_value, applied)",
                    "content": {"application/json": {}, "text/csv": {}}}},
            summary="What a run changed, field by field")
def report_reprocess(run_id: str, state: State, principal: SupervisorOnly,
                     format: Literal["json", "csv"] = "json") -> StreamingResponse:
    progress = reprocess.get_run(state.session_factory, run_id=run_id)  # 404 before streaming starts
    factory = state.session_factory
    if format == "csv":
        def rows() -> Iterator[str]:
            buffer = io.StringIO()
            writer = csv.writer(buffer)
            writer.writerow(reprocess.CSV_HEADER)
            for change in reprocess.iter_changes(factory, run_id=run_id):
                writer.writerow([change["call_id"], change["field"], reprocess.csv_cell(change["old_value"]),
                                 reprocess.csv_cell(change["new_value"]), "true" if change["applied"] else "false"])
                if buffer.tell() > 64 * 1024:
                    yield buffer.getvalue()
                    buffer.seek(0)
                    buffer.truncate()
            yield buffer.getvalue()

        return StreamingResponse(rows(), media_type="text/csv; charset=utf-8", headers={
            "Content-Disposition": f'attachment; filename="reprocess-{run_id}.csv"'})

    def document() -> Iterator[str]:
        yield '{"run": ' + json.dumps(progress.to_dict(), ensure_ascii=False) + ', "changes": ['
        first = True
        for change in reprocess.iter_changes(factory, run_id=run_id):
            yield ("" if first else ", ") + json.dumps(change, ensure_ascii=False)
            first = False
        yield '], "failed": ' + json.dumps(list(reprocess.iter_failures(factory, run_id=run_id)),
                                          ensure_ascii=False) + "}"

    return StreamingResponse(document(), media_type="application/json")


@router.post("/reconcile", response_model=ReconcileRead, responses=ERRORS,
             summary="Enqueue again the calls and approved tickets whose jobs were lost, now")
def run_reconcile(state: State, principal: SupervisorOnly,
                  grace_s: Annotated[float | None, Query(ge=0)] = None) -> ReconcileRead:
    if state.settings.queue_mode != "rq":
        raise Conflict("reconcile works on the job queue; this service processes calls inline")
    from workers.registry import reconcile_once

    report = reconcile_once(state.settings, session_factory=state.session_factory, connection=state.redis,
                            grace_s=grace_s, owner=f"api:{principal.name}")
    if report is None:
        raise Conflict("another reconcile pass is running; try again shortly")
    return ReconcileRead.model_validate(report.to_dict())
