"""The worker process: load what its queues need once, then take jobs until stopped.

Jobs run inside this process (RQ's ``SimpleWorker``), so the model loaded at start serves every job
and no job pays for loading it, and no forked child inherits the engine's thread pools. Only a worker
that listens to ``intake`` or ``archive`` (``MODEL_QUEUES``) loads the speech model and the extraction
rules before taking jobs; one that only dispatches loads neither (seconds and hundreds of MB saved), and
says which in its "listening" log line. Retries are scheduled by the worker's scheduler. Run as many
workers as there are cores, on as many hosts as share Redis, the database and the audio store; each is
named ``callintake-<host>-<pid>``.

Stopping: SIGTERM or Ctrl-C asks for a warm shutdown — the job in progress finishes, then the worker
exits. A second signal, or ``settings.ops.shutdown_grace_s`` running out after the first, stops the job at
once: its call goes back to ``queued`` and is enqueued again at the front of ``intake`` for another worker
(``jobs.take_interrupted``). A worker that is killed outright (SIGKILL, the host lost) stops renewing the
lease on its call, and ``reconcile`` enqueues the call again once the lease has expired.

Every ``settings.ops.reconcile_every_s`` seconds one long-running worker (whichever takes the turn in
Redis first) runs ``reconcile`` in a background thread: lost calls and lost dispatch jobs alike.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Sequence
from types import FrameType
from typing import Any

from rq import SimpleWorker
from rq.worker import WorkerStatus

from pipeline.errors import PipelineError
from pipeline.settings import Settings
from pipeline.storage.db import is_sqlite, upgrade
from workers import jobs
from workers import queues as policy

logger = logging.getLogger(__name__)

#: queues whose jobs transcribe or extract: a worker listening to any of them loads the model and the rules
MODEL_QUEUES: frozenset[str] = frozenset({policy.INTAKE, policy.ARCHIVE})


def needs_model(queues: Sequence[str]) -> bool:
    """True when a worker on ``queues`` takes jobs that may run the speech model.

    >>> needs_model(["dispatch"]), needs_model(["intake", "dispatch"])
    (False, True)
    """
    return any(name in MODEL_QUEUES for name in queues)


class CallintakeWorker(SimpleWorker):
    """``SimpleWorker`` whose warm shutdown becomes a cold one after ``shutdown_grace_s`` seconds."""

    shutdown_grace_s: float = 0.0
    _grace_timer: threading.Timer | None = None

    def request_stop(self, signum: int, frame: FrameType | None) -> None:
        if self.shutdown_grace_s > 0 and self._grace_timer is None and self.get_state() == WorkerStatus.BUSY:
            logger.warning("worker %s: stopping; the current job has %.0f s to finish before it is requeued",
                           self.name, self.shutdown_grace_s)
            self._grace_timer = threading.Timer(self.shutdown_grace_s, self._grace_over)
            self._grace_timer.daemon = True
            self._grace_timer.start()
        super().request_stop(signum, frame)

    def _grace_over(self) -> None:
        if self.get_state() == WorkerStatus.BUSY:
            logger.warning("worker %s: shutdown grace over; interrupting the current job", self.name)
            os.kill(os.getpid(), signal.SIGTERM)  # the second signal: RQ's cold shutdown

    def cancel_grace(self) -> None:
        if self._grace_timer is not None:
            self._grace_timer.cancel()


class PeriodicReconcile(threading.Thread):
    """Runs ``reconcile`` every ``every_s`` seconds when this worker gets the turn (see the module doc)."""

    def __init__(self, settings: Settings, context: jobs.WorkerContext, connection: Any) -> None:
        super().__init__(name="reconcile", daemon=True)
        self.settings = settings
        self.context = context
        self.connection = connection
        self.every_s = settings.ops.reconcile_every_s
        self._stop_event = threading.Event()

    def run(self) -> None:
        from pipeline.logs import log_context
        from workers.registry import reconcile_once, take_reconcile_turn

        with log_context(worker=self.context.name):
            while not self._stop_event.wait(self.every_s):
                if not take_reconcile_turn(self.connection, every_s=self.every_s, owner=self.context.name):
                    continue
                try:
                    reconcile_once(self.settings, session_factory=self.context.session_factory,
                                   connection=self.connection, owner=self.context.name)
                except PipelineError as exc:
                    logger.warning("periodic reconcile failed: %s", exc)
                except Exception:
                    logger.exception("periodic reconcile failed")

    def stop(self) -> None:
        self._stop_event.set()


def run_worker(settings: Settings, *, burst: bool = False, queues: list[str] | None = None) -> int:
    """Run a worker on ``queues`` (names, highest priority first; default all) and return an exit code.

    Migrates a SQLite database first, checks that Redis answers, loads the extraction rules and the
    speech model when the queues need them (``needs_model``), then works. With ``burst`` it returns once
    the queues are empty (and runs no periodic reconcile). Example::

        run_worker(Settings(), burst=True, queues=["intake"])
    """
    names = list(queues or policy.ALL_QUEUES)
    unknown = [name for name in names if name not in policy.ALL_QUEUES]
    if unknown:  # before the model loads
        raise ValueError(f"unknown queue(s) {', '.join(unknown)}; known: {', '.join(policy.ALL_QUEUES)}")
    if is_sqlite(settings.resolved_database_url):
        upgrade(settings)
    connection = policy.connect(settings)
    policy.ping(connection)
    heavy = needs_model(names)
    if heavy:
        logger.info("loading the extraction rules and the speech model before taking jobs")
    context = jobs.build_context(settings, load_model=heavy, warm_rules=heavy)
    jobs.install_context(context)
    worker = CallintakeWorker(
        [policy.get_queue(connection, name) for name in names], connection=connection, name=context.name,
    )
    worker.shutdown_grace_s = settings.ops.shutdown_grace_s
    reconciler: PeriodicReconcile | None = None
    if not burst and settings.ops.reconcile_every_s > 0:
        reconciler = PeriodicReconcile(settings, context, policy.connect(settings))
        reconciler.start()
    logger.info("worker %s listening on %s (burst=%s; %s)", worker.name, ", ".join(names), burst,
                context.describe_model())
    try:
        worker.work(burst=burst, with_scheduler=True, logging_level=logging.getLevelName(
            logging.getLogger().getEffectiveLevel()))
    finally:
        worker.cancel_grace()
        if reconciler is not None:
            reconciler.stop()
        _requeue_interrupted(connection)
        jobs.install_context(None)
    return 0


def _requeue_interrupted(connection: Any) -> None:
    for call_id, duration in jobs.take_interrupted():
        try:
            jid = policy.requeue_call(connection, call_id=call_id, duration_s=duration)
            logger.warning("call %s: enqueued again as %s for another worker", call_id, jid)
        except PipelineError as exc:
            logger.error("call %s: could not enqueue it again (%s); reconcile will", call_id, exc)
