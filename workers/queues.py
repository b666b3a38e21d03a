"""Queue names, retry and timeout policy, job ids, enqueueing and failure handling: the one place they are
decided.

Queues, highest priority first (a worker listening to several always takes from the first non-empty one):

* ``intake``   new calls to transcribe and draft a ticket for (``jobs.process_call_job``), and calls that
  ``reconcile`` found lost (at the front);
* ``dispatch`` approved tickets to post onward to the ticket system;
* ``archive``  reprocessing of stored calls in batches (``jobs.reprocess_batch_job``). A worker on every
  queue takes archive work only when intake and dispatch are empty; ``callintake worker --queues archive``
  makes a dedicated one.

Failure handling:

* a failure that retrying cannot fix (bad audio, rules that cannot read the transcript, no such call) is
  recorded on the call by ``pipeline.process`` and the job ends normally: no retry (``PERMANENT_ERRORS``);
* anything else (database or Redis away, the engine failing, a bug) raises, and RQ retries the job up to
  3 times with backoff (10 s, 30 s, 90 s) through the worker's scheduler; a failure the service could
  record leaves the call ``failed`` with stage and reason meanwhile;
* a job that ran out of retries while the database was away, or whose worker died, leaves its call
  ``queued``/``processing`` with no live job: ``reconcile`` finds it and enqueues it again, and marks it
  ``failed`` once it has been lost ``settings.ops.max_attempts`` times;
* every outcome is counted for ``/metrics`` (``on_job_success`` / ``on_job_failure``).

Time limits grow with the recording's length. Job ids are derived from the call id, the stage and the
rules version, so enqueueing the same work twice is refused by Redis instead of running it twice.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Sequence
from typing import Any

from redis import Redis
from redis.exceptions import RedisError
from rq import Callback, Queue, Retry
from rq.exceptions import DuplicateJobError, NoSuchJobError
from rq.job import Job
from rq.registry import FailedJobRegistry, ScheduledJobRegistry, StartedJobRegistry

from pipeline.errors import (
    AudioError,
    ConfigError,
    Conflict,
    ExtractionError,
    NotFound,
    PipelineError,
    StorageUnavailable,
)
from pipeline.settings import Settings

logger = logging.getLogger(__name__)

INTAKE = "intake"
DISPATCH = "dispatch"
ARCHIVE = "archive"
#: every queue, highest priority first (a worker given no names listens to all of them)
ALL_QUEUES: tuple[str, ...] = (INTAKE, DISPATCH, ARCHIVE)

RETRY_MAX = 3
RETRY_INTERVALS: tuple[int, ...] = (10, 30, 90)
#: seconds a finished job's result stays readable in Redis
RESULT_TTL = 24 * 3600

#: fixed part of an intake job's time limit: model warm-up, decoding, extraction, storing
TIMEOUT_BASE_S = 300
#: seconds allowed per second of audio (two channels on CPU, beam search, with a wide margin)
TIMEOUT_PER_AUDIO_S = 6.0
TIMEOUT_MAX_S = 6 * 3600
#: a batch of re-extractions from stored transcripts (hundreds of calls at ~1,600 a second, one transaction)
ARCHIVE_EXTRACT_TIMEOUT_S = 1800

#: failures that a retry cannot fix
PERMANENT_ERRORS: tuple[type[PipelineError], ...] = (
    AudioError, ExtractionError, NotFound, Conflict, ConfigError,
)

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def retry_policy() -> Retry:
    """RQ retry policy for every job: 3 retries after 10, 30 and 90 seconds."""
    return Retry(max=RETRY_MAX, interval=list(RETRY_INTERVALS))


def job_timeout(duration_s: float | None) -> int:
    """Time limit in seconds for processing a recording of ``duration_s`` seconds.

    >>> job_timeout(60.0)
    660
    >>> job_timeout(None)
    300
    """
    seconds = TIMEOUT_BASE_S + TIMEOUT_PER_AUDIO_S * max(duration_s or 0.0, 0.0)
    return int(min(seconds, TIMEOUT_MAX_S))


def job_id(call_id: str, stage: str, version: str) -> str:
    """A job id for one stage of one call under one rules version (letters, digits, ``_`` and ``-``).

    The version enters as a short hash, since rules versions are long composite strings.

    >>> job_id("3f2a9c0d5e6b7a81", "intake", "taxonomy@2026.11.3+urgency@2026.11.2")
    'intake-3f2a9c0d5e6b7a81-404902c431'
    """
    digest = hashlib.sha256((version or "").encode()).hexdigest()[:10]
    return "-".join(_UNSAFE.sub("_", part) for part in (stage, call_id, digest))


def intake_job_id(call_id: str) -> str:
    """The id of the intake job of ``call_id`` under the rules version this process runs."""
    from pipeline.extractors import RULES_VERSION

    return job_id(call_id, INTAKE, RULES_VERSION)


def connect(settings: Settings) -> Redis:
    """A Redis connection for the queues (connects lazily; see ``ping``)."""
    return Redis.from_url(settings.redis_url, socket_connect_timeout=5, health_check_interval=30)


def ping(connection: Redis) -> None:
    """Raise ``StorageUnavailable`` unless Redis answers."""
    try:
        connection.ping()
    except RedisError as exc:
        raise StorageUnavailable(f"job queue unavailable: {exc}") from exc


def get_queue(connection: Redis, name: str) -> Queue:
    """The RQ queue called ``name`` on this connection."""
    if name not in ALL_QUEUES:
        raise ValueError(f"unknown queue {name!r}; known: {', '.join(ALL_QUEUES)}")
    return Queue(name, connection=connection)


def is_permanent(exc: BaseException) -> bool:
    """True for a failure that retrying cannot fix (the job records it and ends; RQ does not retry)."""
    return isinstance(exc, PERMANENT_ERRORS)


def on_job_success(job: Job, connection: Redis, result: Any, *args: Any, **kwargs: Any) -> None:
    """RQ success callback of every job: counted as ``done`` for ``/metrics``."""
    from workers import metrics

    metrics.record_job(connection, queue=job.origin, outcome="done")


def on_job_failure(job: Job, connection: Redis, exc_type: type[BaseException] | None,
                   exc_value: BaseException | None, traceback: Any, *args: Any, **kwargs: Any) -> None:
    """RQ failure callback of every job (a raised exception, a timeout, a worker found dead).

    Counts it as ``retried`` when RQ will run it again, else ``failed``, and logs which. Nothing is
    written to the database here: what the service could record is recorded already, and what it could
    not (the database away, the worker gone) is what ``reconcile`` repairs.
    """
    from workers import metrics

    will_retry = bool(job.retries_left and job.retries_left > 0)
    outcome = "retried" if will_retry else "failed"
    metrics.record_job(connection, queue=job.origin, outcome=outcome)
    name = exc_type.__name__ if exc_type else "failure"
    if will_retry:
        logger.warning("job %s failed (%s: %s); %d retr%s left", job.id, name, exc_value, job.retries_left,
                       "y" if job.retries_left == 1 else "ies")
    else:
        logger.error("job %s failed for good (%s: %s)", job.id, name, exc_value)


def queue_depths(connection: Redis) -> dict[str, dict[str, int]]:
    """Jobs per queue and state: ``{"intake": {"queued", "started", "scheduled", "failed"}, ...}``.

    Raises ``StorageUnavailable`` when Redis cannot be reached.
    """
    out: dict[str, dict[str, int]] = {}
    try:
        with connection.pipeline(transaction=False) as pipe:
            for name in ALL_QUEUES:
                queue = get_queue(connection, name)
                pipe.llen(queue.key)
                pipe.zcard(StartedJobRegistry(name, connection=connection).key)
                pipe.zcard(ScheduledJobRegistry(name, connection=connection).key)
                pipe.zcard(FailedJobRegistry(name, connection=connection).key)
            counts = pipe.execute()
    except RedisError as exc:
        raise StorageUnavailable(f"job queue unavailable: {exc}") from exc
    for i, name in enumerate(ALL_QUEUES):
        queued, started, scheduled, failed = counts[4 * i:4 * i + 4]
        out[name] = {"queued": int(queued), "started": int(started), "scheduled": int(scheduled),
                     "failed": int(failed)}
    return out


def fetch_job(connection: Redis, jid: str) -> Job | None:
    """The job with this id, or ``None`` when Redis holds none."""
    try:
        return Job.fetch(jid, connection=connection)
    except NoSuchJobError:
        return None
    except RedisError as exc:
        raise StorageUnavailable(f"job queue unavailable: {exc}") from exc


def requeue_call(connection: Redis, *, call_id: str, duration_s: float | None = None) -> str:
    """Enqueue a call again at the front of ``intake``, replacing whatever job of its id Redis still holds
    (failed, finished, abandoned by a dead worker, or scheduled for a retry). Returns the job id.

    Used by ``reconcile`` (after checking that no worker holds the call) and by a worker that was told to
    stop in the middle of a call.
    """
    jid = intake_job_id(call_id)
    old = fetch_job(connection, jid)
    try:
        if old is not None:
            old.delete()
    except RedisError as exc:
        raise StorageUnavailable(f"job queue unavailable: {exc}") from exc
    return enqueue_call(connection, call_id=call_id, duration_s=duration_s, at_front=True)


def enqueue_reprocess(
    connection: Redis, *, run_id: str, pass_no: int, stage: str, batches: Sequence[Sequence[str]],
    rules_version: str, durations_s: Sequence[float] | None = None,
) -> list[str]:
    """Put the batches of one pass of a reprocess run on the ``archive`` queue, in order; returns job ids.

    Job ids come from the run id, the pass and the batch number (and the rules version), so enqueueing a
    pass twice makes each job once. A transcribe batch's time limit grows with the audio it holds
    (``durations_s``, one total per batch).
    """
    from workers.jobs import reprocess_batch_job

    queue = get_queue(connection, ARCHIVE)
    ids: list[str] = []
    datas = []
    for number, call_ids in enumerate(batches):
        jid = job_id(f"{run_id}_{pass_no}_{number}", ARCHIVE, rules_version)
        if stage == "extract":
            timeout = ARCHIVE_EXTRACT_TIMEOUT_S
        else:
            timeout = job_timeout(durations_s[number] if durations_s else None) * max(1, len(call_ids))
        datas.append(Queue.prepare_data(
            reprocess_batch_job, (run_id, pass_no, list(call_ids)), job_id=jid, timeout=min(timeout, TIMEOUT_MAX_S),
            result_ttl=RESULT_TTL, description=f"reprocess run {run_id} pass {pass_no} batch {number}",
            retry=retry_policy(), on_success=Callback(on_job_success), on_failure=Callback(on_job_failure),
        ))
        ids.append(jid)
    try:
        existing = set()
        with connection.pipeline(transaction=False) as pipe:
            for jid in ids:
                pipe.exists(Job.key_for(jid))
            for jid, found in zip(ids, pipe.execute(), strict=True):
                if found:
                    existing.add(jid)
        fresh = [d for d, jid in zip(datas, ids, strict=True) if jid not in existing]
        if fresh:
            queue.enqueue_many(fresh)
    except RedisError as exc:
        raise StorageUnavailable(f"job queue unavailable: {exc}") from exc
    logger.info("run %s: pass %d enqueued as %d archive job(s)", run_id, pass_no, len(ids))
    return ids


def enqueue_call(connection: Redis, *, call_id: str, duration_s: float | None = None,
                 at_front: bool = False) -> str:
    """Put a stored call on the ``intake`` queue (at the front with ``at_front``) and return the job id.

    Enqueueing a call whose job is already in Redis (queued, running, or finished recently) does
    nothing and returns the same id. Raises ``StorageUnavailable`` when Redis cannot be reached.
    """
    from workers.jobs import process_call_job

    jid = intake_job_id(call_id)
    try:
        get_queue(connection, INTAKE).enqueue(
            process_call_job, call_id, job_id=jid, retry=retry_policy(), job_timeout=job_timeout(duration_s),
            result_ttl=RESULT_TTL, description=f"process call {call_id}", unique=True, at_front=at_front,
            on_success=Callback(on_job_success), on_failure=Callback(on_job_failure),
        )
    except DuplicateJobError:
        logger.info("call %s: job %s already in the queue", call_id, jid)
        return jid
    except RedisError as exc:
        raise StorageUnavailable(f"job queue unavailable: {exc}") from exc
    logger.info("call %s: enqueued as %s (timeout %d s)", call_id, jid, job_timeout(duration_s))
    return jid


#: a dispatch job sends one HTTP request or two, with their own timeouts; this only stops a stuck one
DISPATCH_TIMEOUT_S = 300


def enqueue_dispatch(connection: Redis, *, ticket_id: str, version: int, again: bool = False) -> str:
    """Put one version of an approved ticket on the ``dispatch`` queue and return the job id.

    The job id comes from the ticket id, the stage and the version, so enqueueing the same version
    twice (a double click on approve) makes one job and returns its id. An edited and re-approved
    ticket is a new version and a new job. With ``again`` (a supervisor's retry after a failure) a
    finished or failed job of that id is replaced by a new one; one still queued or running is left.
    Transient send failures are retried by the job itself on the intervals of the settings
    (``CALLINTAKE_DISPATCH__RETRY_INTERVALS``); the retry policy here covers crashes (database away).
    Raises ``StorageUnavailable`` when Redis cannot be reached.
    """
    from rq.exceptions import NoSuchJobError
    from rq.job import Job

    from workers.dispatch_jobs import LIVE_STATES, dispatch_ticket_job

    jid = job_id(ticket_id, DISPATCH, str(int(version)))
    try:
        if again:
            try:
                old = Job.fetch(jid, connection=connection)
            except NoSuchJobError:
                old = None
            if old is not None and old.get_status(refresh=True) not in LIVE_STATES:
                old.delete()
        get_queue(connection, DISPATCH).enqueue(
            dispatch_ticket_job, ticket_id, int(version), job_id=jid, retry=retry_policy(),
            job_timeout=DISPATCH_TIMEOUT_S, result_ttl=RESULT_TTL,
            description=f"dispatch ticket {ticket_id} v{int(version)}", unique=True,
        )
    except DuplicateJobError:
        logger.info("ticket %s: dispatch job %s already in the queue", ticket_id, jid)
        return jid
    except RedisError as exc:
        raise StorageUnavailable(f"job queue unavailable: {exc}") from exc
    logger.info("ticket %s: version %d enqueued for dispatch as %s", ticket_id, int(version), jid)
    return jid
