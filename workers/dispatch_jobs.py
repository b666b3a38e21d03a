"""The dispatch job: one attempt to hand a ticket version onward, retried by RQ on the settings' intervals.

An attempt that fails transiently (timeout, connection, 5xx, 429) returns an RQ ``Retry`` built from
``settings.dispatch.retry_intervals`` (a ``Retry-After`` longer than the next interval stretches it),
so the worker's scheduler runs the job again later and no worker sleeps waiting. After the last
interval the attempt is final and the dispatch is marked ``failed``. A refusal (4xx, nothing
configured) is recorded as ``failed`` at once and not retried; an edit that superseded the version, or a
ticket that is no longer approved, ends the job quietly. Database or Redis trouble raises, for the
retry policy the job was enqueued with (``workers.queues.retry_policy``).

Settings and database sessions come from the worker context when the process has one
(``workers.worker.run_worker`` installs it; ``workers.jobs.installed_context`` reads it); otherwise the
job builds a light one from the environment on first use (no speech model: dispatching does not need it).

``requeue_lost`` finds approved tickets whose job is gone (Redis flushed) and queues them again; it runs in
every ``reconcile`` pass (``RqDispatchQueue``) and from ``callintake dispatch --lost``.
"""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from redis.exceptions import RedisError
from rq import Retry, get_current_job
from sqlalchemy.orm import Session, sessionmaker

from pipeline.errors import Conflict, NotFound, StorageUnavailable
from pipeline.settings import Settings
from workers import queues

logger = logging.getLogger(__name__)

#: RQ job states in which a dispatch job will still run
LIVE_STATES = ("queued", "started", "scheduled", "deferred")


@dataclass(frozen=True)
class DispatchContext:
    settings: Settings
    session_factory: sessionmaker[Session]


_context: DispatchContext | None = None
_lock = threading.Lock()


def install_context(context: DispatchContext | None) -> None:
    """Make ``context`` the one dispatch jobs in this process use (``None`` removes it)."""
    global _context
    with _lock:
        _context = context


def current_context() -> DispatchContext:
    """The installed context; else the worker's; else one built from the environment on first use."""
    global _context
    from workers import jobs

    with _lock:
        if _context is not None:
            return _context
        worker = jobs.installed_context()  # the worker process's, when run_worker installed one
        if worker is not None:
            return DispatchContext(settings=worker.settings, session_factory=worker.session_factory)
        from pipeline.storage.db import make_engine, make_session_factory

        logger.info("no dispatch context installed; building one from the environment")
        settings = Settings()
        _context = DispatchContext(settings=settings, session_factory=make_session_factory(make_engine(settings)))
        return _context


def retry_for(intervals: list[int], *, retries_done: int, retry_after: float | None, cap_s: int) -> Retry:
    """The RQ ``Retry`` for the next attempt: the configured interval, or the receiver's ``Retry-After``
    when that is longer (up to ``cap_s``).

    >>> retry_for([10, 60], retries_done=1, retry_after=None, cap_s=3600).intervals
    [10, 60]
    >>> retry_for([10, 60], retries_done=0, retry_after=120.5, cap_s=3600).intervals
    [121, 60]
    """
    stretched = list(intervals)
    if retry_after is not None and retries_done < len(stretched):
        wanted = min(math.ceil(retry_after), cap_s)
        stretched[retries_done] = max(stretched[retries_done], wanted)
    return Retry(max=len(stretched), interval=stretched)


def dispatch_ticket_job(ticket_id: str, version: int) -> dict[str, Any] | Retry:
    """Send version ``version`` of ticket ``ticket_id`` onward; returns the outcome as a dict, or a
    ``Retry`` after a transient failure with retries left."""
    from pipeline.dispatch.service import dispatch_ticket

    context = current_context()
    intervals = list(context.settings.dispatch.retry_intervals)
    job = get_current_job()
    retries_done = (job.number_of_retries or 0) if job is not None else len(intervals)
    final = retries_done >= len(intervals)
    try:
        outcome = dispatch_ticket(context.settings, session_factory=context.session_factory, ticket_id=ticket_id,
                                  version=version, final_attempt=final)
    except (NotFound, Conflict) as exc:
        logger.warning("ticket %s: not dispatched: %s", ticket_id, exc)
        return {"ticket_id": ticket_id, "version": version, "status": "refused", "error": str(exc),
                "code": exc.code}
    if outcome.transient and not final:
        retry = retry_for(intervals, retries_done=retries_done, retry_after=outcome.retry_after,
                          cap_s=context.settings.dispatch.max_retry_after_s)
        logger.info("call %s: ticket %s v%d will be tried again in %d s (retry %d of %d)", outcome.call_id,
                    ticket_id, version, retry.intervals[min(retries_done, len(retry.intervals) - 1)],
                    retries_done + 1, len(intervals))
        return retry
    return outcome.to_dict()


def requeue_lost(connection: Any, context: DispatchContext, *, grace_s: float = 60.0) -> list[str]:
    """Queue again every approved ticket whose dispatch job is gone; returns their ticket ids.

    An approved ticket whose current version was neither sent nor refused should have a dispatch job
    queued, scheduled or running. When it has none (Redis lost its data, or the job ran out of retries
    while the database was away), a new job is queued. Tickets changed within ``grace_s`` seconds are
    left alone: an approval may be between its commit and its enqueue. Safe to run at any time and on
    several hosts at once (job ids are unique per ticket version). Raises ``StorageUnavailable`` when
    Redis or the database cannot be reached.
    """
    from datetime import timedelta

    from pipeline.storage.base import utcnow

    return RqDispatchQueue(connection, context).requeue_lost(changed_before=utcnow() - timedelta(seconds=grace_s))


class RqDispatchQueue:
    """``pipeline.reconcile.DispatchQueue`` on RQ: what ``reconcile`` runs for lost dispatch jobs."""

    def __init__(self, connection: Any, context: DispatchContext) -> None:
        self.connection = connection
        self.context = context

    def requeue_lost(self, *, changed_before: datetime) -> list[str]:
        from pipeline.dispatch.service import iter_undelivered

        requeued: list[str] = []
        for page in iter_undelivered(self.context.session_factory, connector=self.context.settings.dispatch.connector,
                                     changed_before=changed_before):
            states = self._job_states(page)
            for ticket_id, version in page:
                status = states[ticket_id]
                if status in LIVE_STATES:
                    continue
                queues.enqueue_dispatch(self.connection, ticket_id=ticket_id, version=version, again=True)
                logger.warning("ticket %s: v%d had no dispatch job (%s); queued again", ticket_id, version,
                               status or "none in the queue")
                requeued.append(ticket_id)
        return requeued

    def _job_states(self, page: list[tuple[str, int]]) -> dict[str, str | None]:
        """The RQ status of each ticket version's dispatch job (``None`` when Redis holds none), in one round
        trip for the page."""
        from rq.job import Job

        try:
            with self.connection.pipeline(transaction=False) as pipe:
                for ticket_id, version in page:
                    pipe.hget(Job.key_for(queues.job_id(ticket_id, queues.DISPATCH, str(version))), "status")
                replies = pipe.execute()
        except RedisError as exc:
            raise StorageUnavailable(f"job queue unavailable: {exc}") from exc
        return {ticket_id: (status.decode() if isinstance(status, bytes) else status)
                for (ticket_id, _), status in zip(page, replies, strict=True)}
