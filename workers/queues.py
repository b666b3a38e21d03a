"""Queue names, retry and timeout policy, job ids, and enqueueing: the one place they are decided.

Queues, highest priority first:

* ``intake``   a stored call to transcribe and draft a ticket for (``jobs.process_call_job``);
* ``dispatch`` an approved ticket to post onward to the ticket system;
* ``archive``  housekeeping on finished calls.

Every job is retried up to 3 times with backoff (10 s, 30 s, 90 s) on transient failures (database or
Redis away, the engine failing); its timeout grows with the recording's length. Job ids are derived from
the call id, the stage and the rules version, so enqueueing the same work twice is refused by Redis
instead of running it twice.
"""

from __future__ import annotations

import hashlib
import logging
import re

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, Retry
from rq.exceptions import DuplicateJobError

from pipeline.errors import StorageUnavailable
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


def enqueue_call(connection: Redis, *, call_id: str, duration_s: float | None = None) -> str:
    """Put a stored call on the ``intake`` queue and return the job id.

    Enqueueing a call whose job is already in Redis (queued, running, or finished recently) does
    nothing and returns the same id. Raises ``StorageUnavailable`` when Redis cannot be reached.
    """
    from pipeline.extractors import RULES_VERSION
    from workers.jobs import process_call_job

    jid = job_id(call_id, INTAKE, RULES_VERSION)
    try:
        get_queue(connection, INTAKE).enqueue(
            process_call_job, call_id, job_id=jid, retry=retry_policy(), job_timeout=job_timeout(duration_s),
            result_ttl=RESULT_TTL, description=f"process call {call_id}", unique=True,
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
