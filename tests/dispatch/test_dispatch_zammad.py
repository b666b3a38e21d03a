"""The Zammad connector against a real HTTP server speaking Zammad's ticket API on loopback."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis
from pydantic import SecretStr
from rq import Queue, SimpleWorker
from support.ticket_server import ZAMMAD_TOKEN, TicketServer, ticket_server_fixture  # noqa: F401
from support.tickets import make_ticket

from pipeline.dispatch.service import dispatch_ticket, list_dispatches
from pipeline.settings import DispatchSettings, Settings
from pipeline.storage import repo
from pipeline.storage.db import make_engine, make_session_factory, session_scope
from pipeline.storage.dispatch import DispatchStatus
from pipeline.ticket import TicketStatus
from workers import dispatch_jobs, queues

CREATE = "/api/v1/tickets"
SEARCH = "/api/v1/tickets/search"


def _settings(settings: Settings, server: TicketServer, **overrides) -> Settings:
    fields = dict(connector="zammad", url=server.url + "/", token=SecretStr(ZAMMAD_TOKEN), timeout_s=0.5,
                  retry_intervals=[0, 0], zammad_group="12345 热线", zammad_customer="guess:hotline@example.org")
    fields.update(overrides)
    return settings.model_copy(update={"dispatch": DispatchSettings(**fields)})


@pytest.fixture
def zammad_settings(settings: Settings, ticket_server: TicketServer) -> Settings:
    return _settings(settings, ticket_server)


@pytest.fixture
def factory(zammad_settings: Settings):
    engine = make_engine(zammad_settings)
    yield make_session_factory(engine)
    engine.dispose()


def _row(factory, ticket_id: str):
    with session_scope(factory) as session:
        [row] = list_dispatches(session, ticket_id=ticket_id)
        return row


def test_creates_one_ticket_with_the_transcript_and_the_recording(
        zammad_settings: Settings, factory, ticket_server: TicketServer, tmp_path: Path) -> None:
    call_id, ticket_id = make_ticket(zammad_settings, factory, tmp_path)

    outcome = dispatch_ticket(zammad_settings, session_factory=factory, ticket_id=ticket_id)

    assert outcome.status is DispatchStatus.SENT
    search, create = ticket_server.recorded()
    assert (search.method, search.path) == ("GET", SEARCH)  # looked before creating
    assert search.query["query"] == [outcome.reference]
    assert (create.method, create.path) == ("POST", CREATE)
    assert create.header("Authorization") == f"Token token={ZAMMAD_TOKEN}"
    sent = create.json()
    assert sent["title"].endswith(f"[callintake_{call_id}_{ticket_id}_v1]") and "暖气不热" in sent["title"]
    assert (sent["group"], sent["customer_id"], sent["priority"]) == ("12345 热线", "guess:hotline@example.org",
                                                                      "3 high")
    article = sent["article"]
    assert (article["type"], article["content_type"], article["internal"]) == ("phone", "text/plain", False)
    assert "我姓杨" in article["body"] and "朝阳区城市管理委员会" in article["body"]
    [stored] = ticket_server.tickets.values()
    [attachment] = stored["attachments"]
    with session_scope(factory) as session:
        audio_path = repo.get_call(session, call_id=call_id).audio_path
    assert attachment["data"] == (zammad_settings.data_dir / audio_path).read_bytes()
    assert (attachment["filename"], attachment["mime-type"]) == ("call-0.wav", "audio/x-wav")

    row = _row(factory, ticket_id)
    assert (row.status, row.external_ref) == (DispatchStatus.SENT, str(stored["id"]))
    assert row.external_url == f"{ticket_server.url}/#ticket/zoom/{stored['id']}"
    with session_scope(factory) as session:
        assert repo.get_ticket(session, ticket_id=ticket_id).status is TicketStatus.DISPATCHED


@pytest.mark.redis
def test_a_lost_create_answer_is_found_by_the_retry_instead_of_creating_twice(
        zammad_settings: Settings, factory, ticket_server: TicketServer, redis_url: str,
        tmp_path: Path) -> None:
    _, ticket_id = make_ticket(zammad_settings, factory, tmp_path)
    # Zammad creates the ticket, but its answer arrives after the client stopped waiting
    ticket_server.lose_next(1, seconds=2.0, method="POST", path=CREATE)

    conn = redis.Redis.from_url(redis_url)
    conn.flushdb()
    queues.enqueue_dispatch(conn, ticket_id=ticket_id, version=1)
    dispatch_jobs.install_context(dispatch_jobs.DispatchContext(settings=zammad_settings, session_factory=factory))
    try:
        SimpleWorker([Queue(queues.DISPATCH, connection=conn)], connection=conn).work(burst=True)
    finally:
        dispatch_jobs.install_context(None)
        conn.flushdb()

    assert [(r.method, r.path) for r in ticket_server.recorded()] == [
        ("GET", SEARCH), ("POST", CREATE), ("GET", SEARCH)]
    assert len(ticket_server.tickets) == 1
    row = _row(factory, ticket_id)
    assert (row.status, row.attempts) == (DispatchStatus.SENT, 2)
    assert row.external_ref == str(next(iter(ticket_server.tickets)))


def test_a_ticket_already_in_zammad_is_reused_and_another_reference_is_not(
        zammad_settings: Settings, factory, ticket_server: TicketServer, tmp_path: Path) -> None:
    _, first = make_ticket(zammad_settings, factory, tmp_path, seed=1)
    _, second = make_ticket(zammad_settings, factory, tmp_path, seed=2)
    assert dispatch_ticket(zammad_settings, session_factory=factory, ticket_id=first).status is DispatchStatus.SENT
    # the second ticket's search finds nothing that carries its own reference, so it is created
    assert dispatch_ticket(zammad_settings, session_factory=factory, ticket_id=second).status is DispatchStatus.SENT
    assert len(ticket_server.tickets) == 2
    # a row lost on our side (restored backup): the next attempt finds the Zammad ticket by reference
    with session_scope(factory) as session:
        for row in list_dispatches(session, ticket_id=first):
            session.delete(row)
        repo.get_ticket(session, ticket_id=first).status = TicketStatus.APPROVED
    again = dispatch_ticket(zammad_settings, session_factory=factory, ticket_id=first)
    assert again.status is DispatchStatus.SENT and again.external_ref == "1"
    assert len(ticket_server.tickets) == 2 and len(ticket_server.recorded(method="POST")) == 2


def test_zammad_refusing_the_ticket_is_recorded_with_its_reason(
        settings: Settings, ticket_server: TicketServer, tmp_path: Path) -> None:
    no_group = _settings(settings, ticket_server, zammad_group="")
    engine = make_engine(no_group)
    factory = make_session_factory(engine)
    try:
        _, ticket_id = make_ticket(no_group, factory, tmp_path)
        outcome = dispatch_ticket(no_group, session_factory=factory, ticket_id=ticket_id, final_attempt=False)
        assert outcome.status is DispatchStatus.FAILED and not outcome.transient
        row = _row(factory, ticket_id)
        assert row.last_status_code == 422 and "group is required" in row.last_error
        assert ticket_server.tickets == {}
    finally:
        engine.dispose()


def test_a_wrong_token_is_a_refusal_not_a_retry(
        settings: Settings, ticket_server: TicketServer, tmp_path: Path) -> None:
    wrong = _settings(settings, ticket_server, token=SecretStr("not-the-token"))
    engine = make_engine(wrong)
    factory = make_session_factory(engine)
    try:
        _, ticket_id = make_ticket(wrong, factory, tmp_path)
        outcome = dispatch_ticket(wrong, session_factory=factory, ticket_id=ticket_id, final_attempt=False)
        assert (outcome.status, outcome.transient) == (DispatchStatus.FAILED, False)
        assert "HTTP 401" in outcome.error and "authentication failed" in outcome.error
        assert len(ticket_server.recorded()) == 1  # the search was refused; nothing was created
    finally:
        engine.dispose()


def test_a_recording_over_the_limit_is_linked_not_attached(
        settings: Settings, ticket_server: TicketServer, tmp_path: Path) -> None:
    small = _settings(settings, ticket_server, zammad_max_attachment_mb=0.001,
                      audio_base_url="https://intake.example.org/audio/")
    engine = make_engine(small)
    factory = make_session_factory(engine)
    try:
        call_id, ticket_id = make_ticket(small, factory, tmp_path)
        assert dispatch_ticket(small, session_factory=factory, ticket_id=ticket_id).status is DispatchStatus.SENT
        [stored] = ticket_server.tickets.values()
        assert stored["attachments"] == []
        with session_scope(factory) as session:
            audio_path = repo.get_call(session, call_id=call_id).audio_path
        assert f"https://intake.example.org/audio/{audio_path}" in stored["article"]["body"]
    finally:
        engine.dispose()
