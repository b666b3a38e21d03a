"""The webhook connector against a real HTTP server on loopback: signature, idempotency key, retries on
5xx and timeouts through a real RQ worker, and refusals recorded on the ticket without a retry."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import pytest
import redis
from pydantic import SecretStr
from rq import Queue, SimpleWorker
from rq.job import Job
from support.ticket_server import TicketServer, ticket_server_fixture  # noqa: F401
from support.tickets import edit_ticket, make_ticket

from pipeline.dispatch.service import dispatch_ticket, list_dispatches
from pipeline.dispatch.webhook import verify_signature
from pipeline.errors import Conflict
from pipeline.settings import DispatchSettings, Settings
from pipeline.storage import repo
from pipeline.storage.db import make_engine, make_session_factory, session_scope
from pipeline.storage.dispatch import DispatchStatus
from pipeline.ticket import FIELDS, TicketStatus
from workers import dispatch_jobs, queues

SECRET = "whsec-3c1f0e"


@pytest.fixture
def hook_settings(settings: Settings, ticket_server: TicketServer) -> Settings:
    return settings.model_copy(update={"dispatch": DispatchSettings(
        connector="webhook", url=f"{ticket_server.url}/hooks/tickets", secret=SecretStr(SECRET), timeout_s=0.5,
        retry_intervals=[0, 0, 0], audio_base_url="https://intake.example.org/audio",
    )})


@pytest.fixture
def factory(hook_settings: Settings):
    engine = make_engine(hook_settings)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def rq_conn(redis_url: str):
    conn = redis.Redis.from_url(redis_url)
    conn.flushdb()
    yield conn
    conn.flushdb()


def _row(factory, ticket_id: str):
    with session_scope(factory) as session:
        rows = list_dispatches(session, ticket_id=ticket_id)
        assert len(rows) == 1
        return rows[0]


def _status(factory, ticket_id: str) -> TicketStatus:
    with session_scope(factory) as session:
        return repo.get_ticket(session, ticket_id=ticket_id).status


def _work(conn, settings: Settings, factory) -> None:
    """A real RQ worker in this process, taking dispatch jobs until the queue is empty."""
    dispatch_jobs.install_context(dispatch_jobs.DispatchContext(settings=settings, session_factory=factory))
    try:
        SimpleWorker([Queue(queues.DISPATCH, connection=conn)], connection=conn).work(burst=True)
    finally:
        dispatch_jobs.install_context(None)


def test_delivery_is_signed_complete_and_marks_the_ticket_dispatched(
        hook_settings: Settings, factory, ticket_server: TicketServer, tmp_path: Path) -> None:
    call_id, ticket_id = make_ticket(hook_settings, factory, tmp_path)

    outcome = dispatch_ticket(hook_settings, session_factory=factory, ticket_id=ticket_id)

    assert outcome.status is DispatchStatus.SENT and outcome.sent_now
    [req] = ticket_server.recorded()
    assert (req.method, req.path) == ("POST", "/hooks/tickets")
    # the receiver's check, written out: HMAC-SHA256 of "<timestamp>.<raw body>" under the shared secret
    timestamp = req.header("X-Callintake-Timestamp")
    expected = hmac.new(SECRET.encode(), timestamp.encode() + b"." + req.body, hashlib.sha256).hexdigest()
    assert req.header("X-Callintake-Signature") == f"sha256={expected}"
    assert verify_signature(SECRET.encode(), req.headers, req.body)
    assert not verify_signature(b"another secret", req.headers, req.body)
    assert not verify_signature(SECRET.encode(), req.headers, req.body.replace("暖气".encode(), "燃气".encode()))
    assert not verify_signature(SECRET.encode(), req.headers, req.body, now=int(timestamp) + 301)  # a replay

    body = req.json()
    assert req.header("Idempotency-Key") == body["reference"] == f"callintake_{call_id}_{ticket_id}_v1"
    assert (body["call_id"], body["ticket_id"], body["version"]) == (call_id, ticket_id, 1)
    assert set(FIELDS) <= set(body["ticket"]) and body["ticket"]["department"] == "朝阳区城市管理委员会"
    assert body["ticket"]["evidence"]["district"][0]["text"] == "朝阳区"
    assert body["ticket"]["due_at"].endswith("+08:00")  # the hotline's time zone
    assert "我姓杨" in body["transcript"]["text"] and body["transcript"]["language"] == "zh"
    with session_scope(factory) as session:
        stored_path = repo.get_call(session, call_id=call_id).audio_path
    assert body["audio"]["path"] == stored_path
    assert body["audio"]["url"] == f"https://intake.example.org/audio/{stored_path}"
    assert (hook_settings.data_dir / stored_path).stat().st_size == body["audio"]["size_bytes"]

    row = _row(factory, ticket_id)
    assert (row.status, row.attempts, row.external_ref) == (DispatchStatus.SENT, 1, "WH-1")
    assert row.external_url == f"{ticket_server.url}/tickets/WH-1" and row.last_error is None
    assert _status(factory, ticket_id) is TicketStatus.DISPATCHED


def test_a_version_keeps_its_idempotency_key_and_is_not_sent_again(
        hook_settings: Settings, factory, ticket_server: TicketServer, tmp_path: Path) -> None:
    _, ticket_id = make_ticket(hook_settings, factory, tmp_path)
    ticket_server.lose_next(1, seconds=2.0)  # received and kept, but the answer never arrives in time

    first = dispatch_ticket(hook_settings, session_factory=factory, ticket_id=ticket_id, final_attempt=False)
    assert (first.status, first.transient) == (DispatchStatus.PENDING, True)
    assert "no answer within 0.5 s" in first.error
    second = dispatch_ticket(hook_settings, session_factory=factory, ticket_id=ticket_id, version=1)
    assert second.status is DispatchStatus.SENT

    sent = ticket_server.recorded()
    assert len(sent) == 2
    assert sent[0].header("Idempotency-Key") == sent[1].header("Idempotency-Key")
    assert sent[0].header("X-Callintake-Delivery") != sent[1].header("X-Callintake-Delivery")
    assert json.loads(sent[0].body) == json.loads(sent[1].body)
    assert len(ticket_server.deliveries) == 1  # the receiver made one ticket of it
    # a sent version is not sent again
    third = dispatch_ticket(hook_settings, session_factory=factory, ticket_id=ticket_id, version=1)
    assert third.status is DispatchStatus.SENT and not third.sent_now and len(ticket_server.recorded()) == 2

    # an edited, re-approved ticket is a new version with a new key; the old version's job sends nothing
    version = edit_ticket(factory, ticket_id, address="和平街12号楼", status=TicketStatus.APPROVED)
    stale = dispatch_ticket(hook_settings, session_factory=factory, ticket_id=ticket_id, version=1)
    assert stale.superseded_by == version and len(ticket_server.recorded()) == 2
    fresh = dispatch_ticket(hook_settings, session_factory=factory, ticket_id=ticket_id, version=version)
    assert fresh.status is DispatchStatus.SENT
    last = ticket_server.recorded()[-1]
    assert last.header("Idempotency-Key").endswith("_v2") and last.json()["ticket"]["address"] == "和平街12号楼"
    assert len(ticket_server.deliveries) == 2


@pytest.mark.redis
def test_two_503s_then_success_through_a_worker_is_one_delivery(
        hook_settings: Settings, factory, ticket_server: TicketServer, rq_conn, tmp_path: Path) -> None:
    _, ticket_id = make_ticket(hook_settings, factory, tmp_path)
    ticket_server.fail_next(2, status=503)

    jid = queues.enqueue_dispatch(rq_conn, ticket_id=ticket_id, version=1)
    assert queues.enqueue_dispatch(rq_conn, ticket_id=ticket_id, version=1) == jid  # a double click
    _work(rq_conn, hook_settings, factory)

    assert [r.answered for r in ticket_server.recorded()] == [503, 503, 201]
    assert len(ticket_server.deliveries) == 1
    row = _row(factory, ticket_id)
    assert (row.status, row.attempts, row.last_error, row.last_status_code) == (DispatchStatus.SENT, 3, None, 201)
    assert _status(factory, ticket_id) is TicketStatus.DISPATCHED
    job = Job.fetch(jid, connection=rq_conn)
    assert job.get_status() == "finished" and job.return_value()["status"] == "sent"


@pytest.mark.redis
def test_a_hanging_receiver_times_out_and_the_job_tries_again(
        hook_settings: Settings, factory, ticket_server: TicketServer, rq_conn, tmp_path: Path) -> None:
    _, ticket_id = make_ticket(hook_settings, factory, tmp_path)
    ticket_server.hang_next(1, seconds=3.0)

    queues.enqueue_dispatch(rq_conn, ticket_id=ticket_id, version=1)
    _work(rq_conn, hook_settings, factory)

    answered = [r.answered for r in ticket_server.recorded()]
    assert answered == [None, 201]
    row = _row(factory, ticket_id)
    assert (row.status, row.attempts) == (DispatchStatus.SENT, 2)


@pytest.mark.redis
def test_a_refusal_is_recorded_on_the_ticket_and_not_retried(
        hook_settings: Settings, factory, ticket_server: TicketServer, rq_conn, tmp_path: Path) -> None:
    _, ticket_id = make_ticket(hook_settings, factory, tmp_path)
    ticket_server.fail_next(1, status=400, body="department 朝阳区城市管理委员会 is not known here")

    jid = queues.enqueue_dispatch(rq_conn, ticket_id=ticket_id, version=1)
    _work(rq_conn, hook_settings, factory)

    assert len(ticket_server.recorded()) == 1
    row = _row(factory, ticket_id)
    assert (row.status, row.attempts, row.last_status_code) == (DispatchStatus.FAILED, 1, 400)
    assert "HTTP 400" in row.last_error and "is not known here" in row.last_error
    assert _status(factory, ticket_id) is TicketStatus.APPROVED
    job = Job.fetch(jid, connection=rq_conn)
    assert job.get_status() == "finished" and job.return_value()["status"] == "failed"


@pytest.mark.redis
def test_out_of_retries_the_dispatch_is_failed_with_the_last_reason(
        hook_settings: Settings, factory, ticket_server: TicketServer, rq_conn, tmp_path: Path) -> None:
    _, ticket_id = make_ticket(hook_settings, factory, tmp_path)
    ticket_server.fail_next(10, status=502, body="upstream down")

    queues.enqueue_dispatch(rq_conn, ticket_id=ticket_id, version=1)
    _work(rq_conn, hook_settings, factory)

    assert len(ticket_server.recorded()) == 4  # the first attempt and three retries
    row = _row(factory, ticket_id)
    assert (row.status, row.attempts, row.last_status_code) == (DispatchStatus.FAILED, 4, 502)
    assert "upstream down" in row.last_error


@pytest.mark.redis
def test_retry_after_on_429_postpones_the_retry(
        hook_settings: Settings, factory, ticket_server: TicketServer, rq_conn, tmp_path: Path) -> None:
    from datetime import UTC, datetime

    _, ticket_id = make_ticket(hook_settings, factory, tmp_path)
    ticket_server.fail_next(1, status=429, headers={"Retry-After": "120"})

    jid = queues.enqueue_dispatch(rq_conn, ticket_id=ticket_id, version=1)
    _work(rq_conn, hook_settings, factory)  # the retry is scheduled, so the burst ends after one attempt

    job = Job.fetch(jid, connection=rq_conn)
    assert job.get_status() == "scheduled"
    assert 100 <= (_scheduled_at(rq_conn, jid) - datetime.now(UTC)).total_seconds() <= 121
    row = _row(factory, ticket_id)
    assert (row.status, row.attempts, row.last_status_code) == (DispatchStatus.PENDING, 1, 429)


def _scheduled_at(conn, jid: str):
    from datetime import UTC, datetime

    registry = Queue(queues.DISPATCH, connection=conn).scheduled_job_registry
    return datetime.fromtimestamp(conn.zscore(registry.key, jid), UTC)


def test_tickets_not_approved_are_refused_and_nothing_is_sent(
        hook_settings: Settings, factory, ticket_server: TicketServer, tmp_path: Path) -> None:
    _, ticket_id = make_ticket(hook_settings, factory, tmp_path, status=TicketStatus.NEEDS_REVIEW)
    with pytest.raises(Conflict, match="needs_review"):
        dispatch_ticket(hook_settings, session_factory=factory, ticket_id=ticket_id)
    assert ticket_server.recorded() == []


def test_without_a_configured_ticket_system_the_dispatch_fails_with_the_reason(
        settings: Settings, tmp_path: Path) -> None:
    engine = make_engine(settings)
    factory = make_session_factory(engine)
    try:
        _, ticket_id = make_ticket(settings, factory, tmp_path)
        outcome = dispatch_ticket(settings, session_factory=factory, ticket_id=ticket_id)
        assert outcome.status is DispatchStatus.FAILED and "CALLINTAKE_DISPATCH__CONNECTOR" in outcome.error
        row = _row(factory, ticket_id)
        assert (row.connector, row.status, row.attempts) == ("none", DispatchStatus.FAILED, 1)
        assert _status(factory, ticket_id) is TicketStatus.APPROVED
    finally:
        engine.dispose()
