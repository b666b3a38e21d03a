"""Reconcile on a real Redis and real databases: which calls and dispatch jobs are lost, and that each comes
back once."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
from conftest import bearer, create_api_keys
from fastapi.testclient import TestClient
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
from support.ticket_server import TicketServer, ticket_server_fixture  # noqa: F401
from support.tickets import make_ticket

from api.app import create_app
from pipeline.dispatch.service import list_dispatches
from pipeline.reconcile import JobState, iter_in_flight, reconcile
from pipeline.settings import Settings
from pipeline.storage import repo
from pipeline.storage.base import utcnow
from pipeline.storage.calls import CallStatus
from pipeline.storage.db import session_scope
from pipeline.storage.dispatch import DispatchStatus
from pipeline.storage.tickets import TicketRow
from pipeline.ticket import TicketStatus
from workers import metrics, queues
from workers.jobs import process_call_job
from workers.registry import RECONCILE_LOCK, CallLease, RqJobQueue, lease_key, reconcile_once

pytestmark = pytest.mark.redis


def _queued(conn: redis.Redis, queue: str = "intake") -> list[str]:
    return [j.decode() for j in conn.lrange(f"rq:queue:{queue}", 0, -1)]


def _webhook_env(settings: Settings, model_cache: Path, server: TicketServer, **extra: str) -> dict[str, str]:
    return ops_env(settings, model_cache, CALLINTAKE_DISPATCH__CONNECTOR="webhook",
                   CALLINTAKE_DISPATCH__URL=f"{server.url}/intake", CALLINTAKE_DISPATCH__SECRET="reconcile-secret",
                   CALLINTAKE_DISPATCH__TIMEOUT_S="2", **extra)


def _approved_ticket(settings: Settings, factory, tmp_path: Path, seed: int) -> str:
    """An approved ticket whose call is done (``make_ticket`` leaves the call ``queued``, as uploaded)."""
    call_id, ticket_id = make_ticket(settings, factory, tmp_path, seed=seed)
    with session_scope(factory) as session:
        repo.set_call_status(session, call_id=call_id, status=CallStatus.NEEDS_REVIEW)
    return ticket_id


def _ticket_status(factory, ticket_id: str) -> TicketStatus:
    with session_scope(factory) as session:
        return repo.get_ticket(session, ticket_id=ticket_id).status


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


def test_redis_flushed_while_a_dispatch_job_is_queued_reconcile_delivers_it_once(
    ops_settings: Settings, factory, ticket_server: TicketServer, model_cache_dir: Path, tmp_path: Path
) -> None:
    conn = queues.connect(ops_settings)
    ticket_id = _approved_ticket(ops_settings, factory, tmp_path, 1)  # approved
    lost_call = add_transcribed_call(factory, 0, status=CallStatus.QUEUED)
    queues.enqueue_call(conn, call_id=lost_call)
    dispatch_job = queues.enqueue_dispatch(conn, ticket_id=ticket_id, version=1)
    assert _queued(conn, "dispatch") == [dispatch_job]
    conn.flushdb()  # Redis loses both jobs

    env = _webhook_env(ops_settings, model_cache_dir, ticket_server)
    first = run_cli(env, tmp_path, "reconcile", "--grace", "0")
    assert first.returncode == 0, first.stderr[-2000:]
    assert "1 enqueued again, 0 marked failed; 1 approved ticket(s) queued again for dispatch" in first.stdout
    assert _queued(conn) == [queues.intake_job_id(lost_call)] and _queued(conn, "dispatch") == [dispatch_job]
    again = json.loads(run_cli(env, tmp_path, "reconcile", "--grace", "0", "--json").stdout)
    assert (again["requeued"], again["dispatch_requeued"], again["waiting"]) == ([], [], 1)  # both jobs wait now

    done = run_cli(env, tmp_path, "-v", "worker", "--queues", "dispatch", "--burst", timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert _ticket_status(factory, ticket_id) is TicketStatus.DISPATCHED
    assert len(ticket_server.deliveries) == 1 and len(ticket_server.recorded(method="POST")) == 1
    assert ticket_server.recorded(method="POST")[0].header("Idempotency-Key").endswith(f"_{ticket_id}_v1")

    conn.flushdb()  # lost again after it was sent: nothing to send twice
    last = json.loads(run_cli(env, tmp_path, "reconcile", "--grace", "0", "--json").stdout)
    assert last["dispatch_requeued"] == [] and _queued(conn, "dispatch") == []
    assert len(ticket_server.recorded(method="POST")) == 1


def test_reconcile_leaves_dispatches_that_are_waiting_done_refused_or_just_approved(
    ops_settings: Settings, factory, ticket_server: TicketServer, tmp_path: Path
) -> None:
    from pydantic import SecretStr

    from pipeline.dispatch.service import dispatch_ticket
    from pipeline.settings import DispatchSettings

    hook = ops_settings.model_copy(update={"dispatch": DispatchSettings(
        connector="webhook", url=f"{ticket_server.url}/in", secret=SecretStr("s"), timeout_s=2.0)})
    conn = queues.connect(hook)
    lost, waiting, scheduled, sent, refused, fresh = (
        _approved_ticket(hook, factory, tmp_path, n) for n in range(1, 7))
    queues.enqueue_dispatch(conn, ticket_id=waiting, version=1)
    queues.enqueue_dispatch(conn, ticket_id=scheduled, version=1)
    jid = queues.job_id(scheduled, queues.DISPATCH, "1")
    conn.lrem("rq:queue:dispatch", 0, jid)
    conn.hset(Job.key_for(jid), "status", "scheduled")  # a retry waiting in the scheduler
    assert dispatch_ticket(hook, session_factory=factory, ticket_id=sent).status is DispatchStatus.SENT
    ticket_server.fail_next(1, status=400)
    assert dispatch_ticket(hook, session_factory=factory, ticket_id=refused).status is DispatchStatus.FAILED

    with_grace = reconcile_once(hook, session_factory=factory, connection=conn, grace_s=3600)
    assert with_grace is not None and with_grace.dispatch_requeued == []  # all changed within the grace
    with session_scope(factory) as session:
        for tid in (lost, waiting, scheduled, sent, refused):
            repo.get_ticket(session, ticket_id=tid).updated_at = utcnow() - timedelta(minutes=10)
    report = reconcile_once(hook, session_factory=factory, connection=conn, grace_s=60)
    assert report is not None and report.dispatch_requeued == [lost]  # the fresh one is left to its approval
    assert sorted(_queued(conn, "dispatch")) == sorted(queues.job_id(t, queues.DISPATCH, "1") for t in (lost, waiting))
    with session_scope(factory) as session:
        assert [r.status for r in list_dispatches(session, ticket_id=refused)] == [DispatchStatus.FAILED]


def test_admin_reconcile_answers_with_the_dispatches_it_queued_again(ops_settings: Settings, factory,
                                                                     tmp_path: Path) -> None:
    conn = queues.connect(ops_settings)
    ticket_id = _approved_ticket(ops_settings, factory, tmp_path, 1)
    keys = create_api_keys(ops_settings)
    with TestClient(create_app(ops_settings), headers=bearer(keys["supervisor"])) as client:
        answer = client.post("/admin/reconcile", params={"grace_s": 0})
        assert answer.status_code == 200, answer.text
        assert answer.json()["dispatch_requeued"] == [ticket_id] and answer.json()["requeued"] == []
        assert _queued(conn, "dispatch") == [queues.job_id(ticket_id, queues.DISPATCH, "1")]
        assert client.post("/admin/reconcile", params={"grace_s": 0}).json()["dispatch_requeued"] == []
        assert client.post("/admin/reconcile", headers=bearer(keys["operator"])).status_code == 403


def test_a_long_running_dispatch_worker_finds_a_lost_dispatch_by_itself(
    ops_settings: Settings, factory, ticket_server: TicketServer, model_cache_dir: Path, tmp_path: Path
) -> None:
    ticket_id = _approved_ticket(ops_settings, factory, tmp_path, 1)  # approved; its job gone, as after a flush
    env = _webhook_env(ops_settings, model_cache_dir, ticket_server, CALLINTAKE_OPS__RECONCILE_EVERY_S="1")
    worker = start_worker(env, tmp_path, "--queues", "dispatch")
    try:
        def sent() -> bool:
            assert worker.poll() is None, (tmp_path / "worker.log").read_text()[-3000:]
            return _ticket_status(factory, ticket_id) is TicketStatus.DISPATCHED

        wait_for(sent, timeout=60, what="the worker's periodic reconcile to find and send the ticket")
        time.sleep(2.5)  # two more periods: nothing is sent again
    finally:
        stop(worker)
    assert len(ticket_server.deliveries) == 1 and len(ticket_server.recorded(method="POST")) == 1
    assert "speech model not loaded" in (tmp_path / "worker.log").read_text()
