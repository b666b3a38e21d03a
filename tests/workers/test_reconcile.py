"""Reconcile on a real Redis and real databases: which calls are lost, and that each comes back once."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
from ops_support import (  # noqa: F401  (fixtures)
    add_transcribed_call,
    factory_fixture,
    ops_env,
    ops_settings_fixture,
    run_cli,
    start_worker,
    stop,
    wait_for,
)
from rq.job import Job

from pipeline.reconcile import JobState, iter_in_flight, reconcile
from pipeline.settings import Settings
from pipeline.storage import repo
from pipeline.storage.db import session_scope
from pipeline.storage.models import CallStatus, TicketRow
from workers import metrics, queues
from workers.jobs import process_call_job
from workers.registry import RECONCILE_LOCK, CallLease, RqJobQueue, lease_key, reconcile_once

pytestmark = pytest.mark.redis


def _queued(conn: redis.Redis) -> list[str]:
    return [j.decode() for j in conn.lrange("rq:queue:intake", 0, -1)]


def _states(settings: Settings, factory, conn) -> dict[str, JobState]:
    calls = [c for page in iter_in_flight(factory, older_than=datetime.now(UTC)) for c in page]
    return dict(RqJobQueue(conn, settings).job_states(calls))


def test_lease_is_exclusive_renewed_and_put_back_after_a_flush(ops_settings: Settings) -> None:
    conn = queues.connect(ops_settings)
    with CallLease(conn, "c0ffee0000000001", owner="worker-a", ttl_s=1.0) as mine:
        assert mine.acquired
        with CallLease(conn, "c0ffee0000000001", owner="worker-b", ttl_s=1.0) as theirs:
            assert not theirs.acquired and theirs.holder == "worker-a"
        time.sleep(2.5)  # well past the TTL: the renewal thread kept it
        assert conn.get(lease_key("c0ffee0000000001")) == b"worker-a"
        conn.flushdb()  # Redis loses everything under a running job ...
        time.sleep(0.6)
        assert conn.get(lease_key("c0ffee0000000001")) == b"worker-a"  # ... and the next renewal restores it
    assert conn.get(lease_key("c0ffee0000000001")) is None
    with CallLease(conn, "c0ffee0000000001", owner="worker-b", ttl_s=1.0) as theirs:
        assert theirs.acquired


def test_each_kind_of_lost_call_is_found_and_enqueued_again_once(ops_settings: Settings, factory) -> None:
    conn = queues.connect(ops_settings)
    intake = queues.get_queue(conn, queues.INTAKE)
    waiting = add_transcribed_call(factory, 0, status=CallStatus.QUEUED)
    queues.enqueue_call(conn, call_id=waiting)
    scheduled = add_transcribed_call(factory, 1, status=CallStatus.QUEUED)
    intake.enqueue_in(timedelta(minutes=5), process_call_job, scheduled, job_id=queues.intake_job_id(scheduled))
    running = add_transcribed_call(factory, 2, status=CallStatus.PROCESSING)
    queues.enqueue_call(conn, call_id=running)
    conn.lrem(intake.key, 0, queues.intake_job_id(running))
    lease = CallLease(conn, running, owner="a-live-worker", ttl_s=30)
    assert lease.acquire()
    killed = add_transcribed_call(factory, 3, status=CallStatus.PROCESSING)  # its worker died mid-job
    queues.enqueue_call(conn, call_id=killed)
    conn.lrem(intake.key, 0, queues.intake_job_id(killed))
    conn.hset(Job.key_for(queues.intake_job_id(killed)), mapping={
        "status": "started", "started_at": "2026-01-01T00:00:00.000000Z"})
    flushed = add_transcribed_call(factory, 4, status=CallStatus.QUEUED)  # its job vanished with Redis
    ended = add_transcribed_call(factory, 5, status=CallStatus.TRANSCRIBED)  # its job failed for good
    queues.enqueue_call(conn, call_id=ended)
    conn.lrem(intake.key, 0, queues.intake_job_id(ended))
    conn.hset(Job.key_for(queues.intake_job_id(ended)), "status", "failed")
    done = add_transcribed_call(factory, 6, status=CallStatus.NEEDS_REVIEW)  # not in flight at all

    try:
        states = _states(ops_settings, factory, conn)
        assert states == {waiting: JobState.WAITING, scheduled: JobState.WAITING, running: JobState.RUNNING,
                          killed: JobState.LOST, flushed: JobState.LOST, ended: JobState.LOST}
        report = reconcile(ops_settings, session_factory=factory, jobs=RqJobQueue(conn, ops_settings), grace_s=0)
        assert sorted(report.requeued) == sorted([killed, flushed, ended])
        assert (report.checked, report.waiting, report.running, report.gave_up) == (6, 2, 1, [])
        # enqueued again at the front, once each; nothing else was touched
        assert sorted(_queued(conn)[:3]) == sorted(queues.intake_job_id(c) for c in (killed, flushed, ended))
        assert sorted(_queued(conn)) == sorted(queues.intake_job_id(c) for c in (killed, flushed, ended, waiting))
        with session_scope(factory) as session:
            again = repo.get_call(session, call_id=killed)
            assert (again.status, again.retry_count) == (CallStatus.QUEUED, 1)  # an attempt was lost
            assert repo.get_call(session, call_id=flushed).retry_count == 0  # a flush is not the call's doing
            assert repo.get_call(session, call_id=ended).status is CallStatus.TRANSCRIBED
            assert repo.get_call(session, call_id=done).status is CallStatus.NEEDS_REVIEW
        second = reconcile(ops_settings, session_factory=factory, jobs=RqJobQueue(conn, ops_settings), grace_s=0)
        assert second.requeued == [] and second.waiting == 5 and second.running == 1
    finally:
        lease.release()


def test_a_call_lost_too_often_is_marked_failed_with_the_reason(ops_settings: Settings, factory) -> None:
    conn = queues.connect(ops_settings)
    poison = add_transcribed_call(factory, 0, status=CallStatus.PROCESSING)
    with session_scope(factory) as session:
        repo.get_call(session, call_id=poison).retry_count = 4
    report = reconcile(ops_settings, session_factory=factory, jobs=RqJobQueue(conn, ops_settings), grace_s=0,
                       max_attempts=5)
    assert report.gave_up == [poison] and report.requeued == []
    with session_scope(factory) as session:
        call = repo.get_call(session, call_id=poison)
        assert call.status is CallStatus.FAILED and call.error_stage == "queue"
        assert "5 attempts" in call.error_reason
    assert _queued(conn) == []


def test_recent_calls_are_left_to_the_upload_that_is_enqueueing_them(ops_settings: Settings, factory) -> None:
    conn = queues.connect(ops_settings)
    add_transcribed_call(factory, 0, status=CallStatus.QUEUED)
    report = reconcile(ops_settings, session_factory=factory, jobs=RqJobQueue(conn, ops_settings), grace_s=3600)
    assert report.checked == 0 and report.requeued == [] and _queued(conn) == []


def test_one_pass_at_a_time_across_processes(ops_settings: Settings, factory) -> None:
    conn = queues.connect(ops_settings)
    add_transcribed_call(factory, 0, status=CallStatus.QUEUED)
    conn.set(RECONCILE_LOCK, "another-host", ex=30)
    assert reconcile_once(ops_settings, session_factory=factory, connection=conn, grace_s=0) is None
    conn.delete(RECONCILE_LOCK)
    report = reconcile_once(ops_settings, session_factory=factory, connection=conn, grace_s=0)
    assert report is not None and len(report.requeued) == 1
    assert conn.get(RECONCILE_LOCK) is None


@pytest.mark.model
def test_redis_flushed_while_calls_are_queued_none_lost_none_doubled(
    ops_settings: Settings, factory, model_cache_dir: Path, tmp_path: Path
) -> None:
    conn = queues.connect(ops_settings)
    calls = [add_transcribed_call(factory, i, status=CallStatus.QUEUED) for i in range(12)]
    for call_id in calls:
        queues.enqueue_call(conn, call_id=call_id, duration_s=12.0)
    assert len(_queued(conn)) == 12
    conn.flushdb()

    env = ops_env(ops_settings, model_cache_dir)
    done = run_cli(env, tmp_path, "reconcile", "--grace", "0", "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert sorted(report["requeued"]) == sorted(calls) and report["checked"] == 12
    assert sorted(_queued(conn)) == sorted(queues.intake_job_id(c) for c in calls)
    again = json.loads(run_cli(env, tmp_path, "reconcile", "--grace", "0", "--json").stdout)
    assert again["requeued"] == [] and again["waiting"] == 12

    worker = start_worker({**env, "CALLINTAKE_OPS__LOG_FORMAT": "json"}, tmp_path, "--burst", "--queues", "intake")
    try:
        assert worker.wait(timeout=600) == 0, (tmp_path / "worker.log").read_text()[-3000:]
    finally:
        stop(worker)
    logged = []
    for line in (tmp_path / "worker.log").read_text().splitlines():
        if line.startswith("{"):
            logged.append(json.loads(line))
    assert {entry.get("call_id") for entry in logged} >= set(calls)  # every call's lines name it
    counted = metrics.read_counters(conn)
    assert counted["jobs|outcome=done|queue=intake"] == 12
    assert counted["stage_seconds_count|stage=extract"] == 12
    assert "stage_seconds_count|stage=transcribe" not in counted  # stored transcripts: Whisper did not run
    with session_scope(factory) as session:
        for call_id in calls:
            assert repo.get_call(session, call_id=call_id).status is CallStatus.NEEDS_REVIEW
            assert session.query(TicketRow).filter_by(call_id=call_id).count() == 1
    assert _queued(conn) == []
    assert json.loads(run_cli(env, tmp_path, "reconcile", "--grace", "0", "--json").stdout)["checked"] == 0


@pytest.mark.model
def test_a_long_running_worker_reconciles_by_itself(ops_settings: Settings, factory, model_cache_dir: Path,
                                                    tmp_path: Path) -> None:
    lost = add_transcribed_call(factory, 0, status=CallStatus.QUEUED)  # no job for it, as after a flush
    env = ops_env(ops_settings, model_cache_dir, CALLINTAKE_OPS__RECONCILE_EVERY_S="1")
    worker = start_worker(env, tmp_path, "--queues", "intake")
    try:
        def drafted() -> bool:
            assert worker.poll() is None, (tmp_path / "worker.log").read_text()[-3000:]
            with session_scope(factory) as session:
                return repo.get_call(session, call_id=lost).status is CallStatus.NEEDS_REVIEW

        wait_for(drafted, timeout=240, what="the worker's periodic reconcile to find and process the call")
    finally:
        stop(worker)
    with session_scope(factory) as session:
        assert session.query(TicketRow).filter_by(call_id=lost).count() == 1
    assert metrics.read_counters(queues.connect(ops_settings))["reconcile_requeued"] >= 1
