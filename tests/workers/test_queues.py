"""Queue policy and enqueueing on a real Redis."""

from __future__ import annotations

import re

import pytest
import redis
from rq.job import Job

from pipeline.errors import StorageUnavailable
from pipeline.settings import Settings
from workers import queues


def test_job_ids_are_stable_safe_and_versioned() -> None:
    a = queues.job_id("3f2a9c0d5e6b7a81", "intake", "2026.11-1")
    assert a == queues.job_id("3f2a9c0d5e6b7a81", "intake", "2026.11-1")
    assert re.fullmatch(r"[A-Za-z0-9_-]+", a)
    assert a != queues.job_id("3f2a9c0d5e6b7a81", "intake", "2026.12-1")
    assert a != queues.job_id("3f2a9c0d5e6b7a81", "dispatch", "2026.11-1")


def test_timeouts_grow_with_the_recording_and_stop_at_a_ceiling() -> None:
    assert queues.job_timeout(None) == queues.TIMEOUT_BASE_S
    assert queues.job_timeout(30.0) < queues.job_timeout(600.0)
    assert queues.job_timeout(600.0) >= 600  # never less than real time
    assert queues.job_timeout(10 * 24 * 3600.0) == queues.TIMEOUT_MAX_S


def test_retry_policy_backs_off() -> None:
    policy = queues.retry_policy()
    assert policy.max == 3 and policy.intervals == [10, 30, 90]


def test_unknown_queue_name_is_refused() -> None:
    with pytest.raises(ValueError):
        queues.get_queue(redis.Redis(), "everything")


@pytest.mark.redis
def test_enqueueing_a_call_twice_makes_one_job(redis_url: str) -> None:
    from pipeline.extractors import RULES_VERSION

    conn = redis.Redis.from_url(redis_url)
    conn.flushdb()
    jid = queues.enqueue_call(conn, call_id="00aa11bb22cc33dd", duration_s=42.0)
    assert queues.enqueue_call(conn, call_id="00aa11bb22cc33dd", duration_s=42.0) == jid
    assert jid == queues.job_id("00aa11bb22cc33dd", queues.INTAKE, RULES_VERSION)
    assert [j.decode() for j in conn.lrange("rq:queue:intake", 0, -1)] == [jid]
    job = Job.fetch(jid, connection=conn)
    assert job.func_name == "workers.jobs.process_call_job" and job.args == ("00aa11bb22cc33dd",)
    assert job.timeout == queues.job_timeout(42.0)
    assert job.retries_left == 3 and job.retry_intervals == [10, 30, 90]
    conn.flushdb()


def test_unreachable_redis_is_storage_unavailable() -> None:
    conn = queues.connect(Settings(redis_url="redis://127.0.0.1:1/0"))
    with pytest.raises(StorageUnavailable):
        queues.ping(conn)
    with pytest.raises(StorageUnavailable):
        queues.enqueue_call(conn, call_id="00aa11bb22cc33dd")
