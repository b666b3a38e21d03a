"""Who is working on which call: per-call leases in Redis, and the queue side of ``pipeline.reconcile``.

A job that works on a call holds a *lease*: the key ``callintake:lease:<call id>`` holding the worker's
name, with a time to live of ``settings.ops.lease_ttl_s`` (30 s), renewed by a thread every third of
that while the job runs. A worker that dies stops renewing it, and the lease expires within one TTL —
long before RQ would call the job abandoned (its time limit plus a minute, minutes to hours for long
calls). A lease that disappears while its holder still runs (Redis flushed) is put back by the next
renewal. The lease also keeps two jobs from working on one call at once: a job that finds the call's
lease held by another live worker leaves the call to it.

``RqJobQueue`` answers ``reconcile``'s question for a page of calls in a few round trips: a call is
``RUNNING`` while its lease exists; ``WAITING`` while its intake job is in the queue (or RQ's
intermediate list), scheduled for a retry, or deferred; and ``LOST`` otherwise — no job at all (Redis
flushed), a job ``started`` with no lease (its worker died), or a job that ended (failed for good, or
finished while the call says otherwise).
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any

from redis import Redis
from redis.exceptions import RedisError
from rq.job import Job
from rq.registry import DeferredJobRegistry, ScheduledJobRegistry

from pipeline.errors import StorageUnavailable
from pipeline.reconcile import InFlightCall, JobState, ReconcileReport, reconcile
from pipeline.settings import Settings
from workers import queues

logger = logging.getLogger(__name__)

LEASE_PREFIX = "callintake:lease:"
#: a job started this recently may not have taken its lease yet
START_GRACE_S = 10.0

# renew only a lease that is ours, or put it back if it vanished (Redis flushed under a running job)
_RENEW = """
local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def lease_key(call_id: str) -> str:
    return f"{LEASE_PREFIX}{call_id}"


class CallLease:
    """A worker's claim on one call while a job works on it (see the module docstring).

    Use as a context manager; ``acquired`` says whether the claim is ours. When Redis cannot be reached
    the job goes ahead without a lease (the database stays the truth; one ticket per call and rules
    version is a unique constraint), and says so in the log.

    Example::

        with CallLease(connection, call_id, owner=worker_name, ttl_s=30) as lease:
            if not lease.acquired:
                return  # another live worker has this call
            ...
    """

    def __init__(self, connection: Redis | None, call_id: str, *, owner: str, ttl_s: float) -> None:
        self.connection = connection
        self.call_id = call_id
        self.owner = owner
        self.ttl_ms = max(int(ttl_s * 1000), 1000)
        self.acquired = False
        self.holder: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self) -> bool:
        if self.connection is None:
            self.acquired = True
            return True
        try:
            if self.connection.set(lease_key(self.call_id), self.owner, nx=True, px=self.ttl_ms):
                self.acquired = True
            else:
                holder = self.connection.get(lease_key(self.call_id))
                self.holder = holder.decode() if isinstance(holder, bytes) else holder
                # our own lease left behind by an earlier attempt of this very process
                self.acquired = self.holder == self.owner or (holder is None and self.renew())
        except RedisError as exc:
            logger.warning("call %s: no lease (Redis: %s); working without one", self.call_id, exc)
            self.acquired = True
            return True
        if self.acquired:
            self._thread = threading.Thread(target=self._keep, name=f"lease-{self.call_id}", daemon=True)
            self._thread.start()
        return self.acquired

    def renew(self) -> bool:
        if self.connection is None:
            return True
        try:
            return bool(self.connection.eval(_RENEW, 1, lease_key(self.call_id), self.owner, self.ttl_ms))
        except RedisError as exc:
            logger.warning("call %s: lease not renewed (Redis: %s)", self.call_id, exc)
            return False

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self.connection is None or not self.acquired:
            return
        try:
            self.connection.eval(_RELEASE, 1, lease_key(self.call_id), self.owner)
        except RedisError as exc:
            logger.warning("call %s: lease not released (Redis: %s); it expires on its own", self.call_id, exc)

    def _keep(self) -> None:
        interval = self.ttl_ms / 3000
        while not self._stop.wait(interval):
            if not self.renew():
                logger.warning("call %s: lease held by someone else now", self.call_id)

    def __enter__(self) -> CallLease:
        self.acquire()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()


def lease_holders(connection: Redis, call_ids: Sequence[str]) -> dict[str, str]:
    """The worker holding each call's lease, for the calls that have one."""
    if not call_ids:
        return {}
    values = connection.mget([lease_key(c) for c in call_ids])
    return {c: (v.decode() if isinstance(v, bytes) else v) for c, v in zip(call_ids, values, strict=True)
            if v is not None}


class RqJobQueue:
    """``pipeline.reconcile.JobQueue`` on RQ and the leases above."""

    def __init__(self, connection: Redis, settings: Settings) -> None:
        self.connection = connection
        self.settings = settings

    def job_states(self, calls: Sequence[InFlightCall]) -> Mapping[str, JobState]:
        if not calls:
            return {}
        try:
            return self._states(calls)
        except RedisError as exc:
            raise StorageUnavailable(f"job queue unavailable: {exc}") from exc

    def _states(self, calls: Sequence[InFlightCall]) -> dict[str, JobState]:
        conn = self.connection
        ids = [c.call_id for c in calls]
        holders = lease_holders(conn, ids)
        queue = queues.get_queue(conn, queues.INTAKE)
        jids = {c.call_id: queues.intake_job_id(c.call_id) for c in calls}
        with conn.pipeline(transaction=False) as pipe:
            pipe.lrange(queue.key, 0, -1)
            pipe.lrange(queue.intermediate_queue_key, 0, -1)
            pipe.zrange(ScheduledJobRegistry(queue.name, connection=conn).key, 0, -1)
            pipe.zrange(DeferredJobRegistry(queue.name, connection=conn).key, 0, -1)
            for cid in ids:
                pipe.hmget(Job.key_for(jids[cid]), "status", "started_at")
            replies = pipe.execute()
        waiting_ids = {_text(j) for reply in replies[:4] for j in reply}
        now = datetime.now(UTC)
        states: dict[str, JobState] = {}
        for cid, (status, started_at) in zip(ids, replies[4:], strict=True):
            status = _text(status) if status is not None else None
            if cid in holders:
                states[cid] = JobState.RUNNING
            elif status in ("queued", "scheduled", "deferred") and jids[cid] in waiting_ids:
                states[cid] = JobState.WAITING
            elif status == "started" and _recent(started_at, now):
                states[cid] = JobState.RUNNING  # taking its lease right now
            else:
                states[cid] = JobState.LOST
        return states

    def requeue(self, call: InFlightCall) -> str:
        return queues.requeue_call(self.connection, call_id=call.call_id, duration_s=call.duration_s)


RECONCILE_LOCK = "callintake:reconcile:running"
RECONCILE_TURN = "callintake:reconcile:turn"
#: longest a reconcile pass may hold the lock (a pass over 100,000 in-flight calls takes well under this)
RECONCILE_LOCK_S = 600


def reconcile_once(
    settings: Settings, *, session_factory: Any, connection: Redis, grace_s: float | None = None,
    max_attempts: int | None = None, owner: str = "reconcile",
) -> ReconcileReport | None:
    """One ``pipeline.reconcile.reconcile`` pass on RQ, lost calls and lost dispatch jobs, unless another
    one is running anywhere (then ``None``). Counts what it did for ``/metrics``. Raises
    ``StorageUnavailable`` when Redis or the database cannot be reached."""
    from workers import metrics
    from workers.dispatch_jobs import DispatchContext, RqDispatchQueue

    token = f"{owner}:{uuid.uuid4().hex}"
    try:
        if not connection.set(RECONCILE_LOCK, token, nx=True, ex=RECONCILE_LOCK_S):
            logger.info("reconcile: another pass is running; not starting one")
            return None
    except RedisError as exc:
        raise StorageUnavailable(f"job queue unavailable: {exc}") from exc
    try:
        dispatches = RqDispatchQueue(connection, DispatchContext(settings=settings, session_factory=session_factory))
        report = reconcile(settings, session_factory=session_factory, jobs=RqJobQueue(connection, settings),
                           grace_s=grace_s, max_attempts=max_attempts, dispatches=dispatches)
    finally:
        try:
            connection.eval(_RELEASE, 1, RECONCILE_LOCK, token)
        except RedisError:
            logger.warning("reconcile: lock not released; it expires in %d s", RECONCILE_LOCK_S)
    metrics.record_reconcile(connection, requeued=len(report.requeued), gave_up=len(report.gave_up))
    return report


def take_reconcile_turn(connection: Redis, *, every_s: float, owner: str) -> bool:
    """True for the one worker (across all hosts) whose turn it is to run the periodic reconcile: the
    turn is a key that lives ``every_s`` seconds, so one pass runs per period however many workers ask."""
    try:
        return bool(connection.set(RECONCILE_TURN, owner, nx=True, ex=max(int(every_s), 1)))
    except RedisError as exc:
        logger.warning("reconcile: cannot take the turn (Redis: %s)", exc)
        return False


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _recent(started_at: bytes | str | None, now: datetime) -> bool:
    if not started_at:
        return False
    try:
        when = datetime.fromisoformat(_text(started_at).replace("Z", "+00:00"))
    except ValueError:
        return False
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return now - when < timedelta(seconds=START_GRACE_S)


__all__ = ["CallLease", "LEASE_PREFIX", "RqJobQueue", "lease_holders", "lease_key", "reconcile_once",
           "take_reconcile_turn"]
