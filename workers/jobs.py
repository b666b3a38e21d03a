"""The job functions RQ runs. Thin: take ids, call ``pipeline``, return a small summary.

A worker process installs a ``WorkerContext`` (settings, database sessions, Redis, and the speech model
when its queues need it) before it takes jobs (``workers.worker.run_worker``); ``installed_context``
reads it, for jobs of other modules that share its settings and sessions. A job run by any other RQ
worker builds one from the environment on its first call. Either way the model is loaded at most once
per process, and only when something asks for it (``WorkerContext.get_transcriber``).

Every intake job holds its call's lease (``workers.registry.CallLease``) while it works, so that
``reconcile`` can tell a running call from a lost one, and logs with the call id. Failures that retrying
cannot fix (``queues.PERMANENT_ERRORS``: bad audio, rules that cannot read the transcript) are already
recorded on the call by the service, so the job ends normally and RQ does not retry; transient ones
(database or model trouble, anything unexpected) are raised again for RQ's retry policy. A worker told to
stop at once (a second SIGTERM, or the shutdown grace running out) puts the call it was on back to
``queued`` and hands it to ``take_interrupted`` for requeueing.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from redis import Redis
from rq import get_current_job
from sqlalchemy.orm import Session, sessionmaker

from pipeline.errors import PipelineError, StorageUnavailable
from pipeline.logs import log_context
from pipeline.settings import Settings
from workers import metrics
from workers.queues import PERMANENT_ERRORS  # noqa: F401  (the policy lives in queues; re-exported here)

logger = logging.getLogger(__name__)


def default_worker_name() -> str:
    return f"callintake-{socket.gethostname()}-{os.getpid()}"


@dataclass
class WorkerContext:
    """What every job in a worker process shares."""

    settings: Settings
    session_factory: sessionmaker[Session]
    transcriber: Any = None
    """The loaded speech model; ``None`` until a job needs it (``get_transcriber`` loads it then)."""
    redis: Redis | None = None
    """For leases and metrics; ``None`` runs without either."""
    name: str = field(default_factory=default_worker_name)
    model_load_s: float | None = None
    """Seconds the speech model took to load in this process; ``None`` while it is not loaded."""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def get_transcriber(self) -> Any:
        """The speech model, loaded on the first call (seconds, hundreds of MB) and kept for the process."""
        with self._lock:
            if self.transcriber is None:
                from pipeline.asr import load_transcriber

                logger.info("loading the speech model")
                started = time.perf_counter()
                self.transcriber = load_transcriber(self.settings)
                self.model_load_s = time.perf_counter() - started
                logger.info("speech model loaded in %.1f s", self.model_load_s)
            return self.transcriber

    def describe_model(self) -> str:
        """For the worker's log: whether this process holds the speech model."""
        if self.model_load_s is None:
            return "speech model not loaded"
        return f"speech model loaded in {self.model_load_s:.1f} s"


_context: WorkerContext | None = None
_lock = threading.Lock()
_interrupted: list[tuple[str, float | None]] = []


def install_context(context: WorkerContext | None) -> None:
    """Make ``context`` the one jobs in this process use (``None`` removes it)."""
    global _context
    with _lock:
        _context = context


def installed_context() -> WorkerContext | None:
    """The context ``install_context`` made current in this process, if any (nothing is built)."""
    with _lock:
        return _context


def build_context(settings: Settings, *, load_model: bool = True, warm_rules: bool = True,
                  name: str | None = None) -> WorkerContext:
    """Connect to the database and Redis; load the extraction rules unless ``warm_rules`` is False, and the
    speech model (seconds) unless ``load_model`` is False. A worker that only dispatches needs neither."""
    from pipeline.storage.db import make_engine, make_session_factory
    from workers.queues import connect

    factory = make_session_factory(make_engine(settings))
    if warm_rules:
        from pipeline.extractors import warm_up

        warm_up()
    context = WorkerContext(settings=settings, session_factory=factory, redis=connect(settings),
                            name=name or default_worker_name())
    if load_model:
        context.get_transcriber()
    return context


def current_context() -> WorkerContext:
    """The installed context, or one built from the environment on first use (the model loads lazily)."""
    global _context
    with _lock:
        if _context is None:
            logger.info("no worker context installed; building one from the environment")
            _context = build_context(Settings(), load_model=False)
        return _context


def take_interrupted() -> list[tuple[str, float | None]]:
    """Calls whose job was interrupted by a stop request in this process, as ``(call id, duration)``;
    each is returned once."""
    with _lock:
        out = list(_interrupted)
        _interrupted.clear()
    return out


def _job_id() -> str | None:
    job = get_current_job()
    return job.id if job is not None else None


def process_call_job(call_id: str) -> dict[str, Any]:
    """Transcribe a stored call and draft its ticket; returns ``{"call_id", "status", ...}``."""
    from pipeline.process import process_call
    from workers.registry import CallLease

    context = current_context()
    with log_context(call_id=call_id, job_id=_job_id(), worker=context.name), \
            CallLease(context.redis, call_id, owner=context.name, ttl_s=context.settings.ops.lease_ttl_s) as lease:
        if not lease.acquired:
            logger.info("call %s: %s is working on it; leaving it there", call_id, lease.holder)
            return {"call_id": call_id, "status": "busy", "holder": lease.holder}
        timings: dict[str, float] = {}
        try:
            result = process_call(context.settings, call_id=call_id, transcriber=_LazyTranscriber(context),
                                  session_factory=context.session_factory, timings=timings)
        except PERMANENT_ERRORS as exc:
            metrics.record_stages(context.redis, timings)
            metrics.record_call_failed(context.redis, stage=exc.stage)
            logger.warning("call %s: failed for good at %s: %s", call_id, exc.stage, exc)
            return {"call_id": call_id, "status": "failed", "error": str(exc), "code": exc.code}
        except (SystemExit, KeyboardInterrupt):
            _put_back(context, call_id)
            raise
        except BaseException as exc:
            metrics.record_stages(context.redis, timings)
            if not isinstance(exc, StorageUnavailable):
                metrics.record_call_failed(context.redis, stage=getattr(exc, "stage", None) or "unknown")
            raise
        metrics.record_stages(context.redis, timings)
        if "transcribe" in timings and result.duration_s:
            metrics.record_audio(context.redis, result.duration_s)
    return {"call_id": call_id, "status": result.status.value, "ticket_id": result.ticket_id,
            "reused": result.reused}


class _LazyTranscriber:
    """Loads the worker's model only when a call actually needs transcribing (a stored transcript or
    ticket does not)."""

    def __init__(self, context: WorkerContext) -> None:
        self.context = context

    def transcribe(self, audio: Any) -> Any:
        return self.context.get_transcriber().transcribe(audio)


def _put_back(context: WorkerContext, call_id: str) -> None:
    """The worker is stopping in the middle of this call: it is queued again, not processing."""
    from pipeline.storage import repo
    from pipeline.storage.calls import CallStatus
    from pipeline.storage.db import session_scope

    duration: float | None = None
    try:
        with session_scope(context.session_factory) as session:
            call = repo.get_call(session, call_id=call_id)
            duration = call.duration_s
            if call.status is CallStatus.PROCESSING:
                repo.set_call_status(session, call_id=call_id, status=CallStatus.QUEUED)
    except PipelineError as exc:
        logger.warning("call %s: could not put it back to queued (%s); reconcile will", call_id, exc)
    logger.warning("call %s: interrupted by a stop request; it goes back to the queue", call_id)
    with _lock:
        _interrupted.append((call_id, duration))


def reprocess_batch_job(run_id: str, pass_no: int, call_ids: list[str]) -> dict[str, Any]:
    """One batch of a reprocess run (``pipeline.reprocess.process_batch``); returns its counts."""
    from pipeline.reprocess import process_batch
    from workers.registry import CallLease

    context = current_context()

    def claim(call_id: str) -> CallLease:
        return CallLease(context.redis, call_id, owner=context.name, ttl_s=context.settings.ops.lease_ttl_s)

    started = time.perf_counter()
    with log_context(run_id=run_id, job_id=_job_id(), worker=context.name):
        result = process_batch(context.settings, session_factory=context.session_factory, run_id=run_id,
                               pass_no=pass_no, call_ids=call_ids, transcriber=context.get_transcriber, claim=claim)
    if not result.stood_down:
        metrics.record_stages(context.redis, {"reprocess_batch": time.perf_counter() - started})
        metrics.record_reprocess(context.redis, result.counts())
    return result.to_dict()
