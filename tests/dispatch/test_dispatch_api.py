"""A ticket's hand-offs through the API: visible to operators, retried by supervisors after a failure,
on a real Redis queue with a real worker, or in-process without a queue."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient
from pydantic import SecretStr
from rq import Queue, SimpleWorker
from support.ticket_server import TicketServer, ticket_server_fixture  # noqa: F401
from support.tickets import make_ticket

from api.app import create_app
from pipeline.settings import DispatchSettings, Settings
from pipeline.storage.db import make_engine, make_session_factory
from workers import dispatch_jobs, queues


def _with_webhook(settings: Settings, server: TicketServer, **update) -> Settings:
    return settings.model_copy(update={**update, "dispatch": DispatchSettings(
        connector="webhook", url=f"{server.url}/in", secret=SecretStr("api-secret"), timeout_s=1.0,
        retry_intervals=[0])})


@pytest.mark.redis
def test_a_failed_dispatch_is_visible_and_a_supervisor_sends_it_again(
        settings: Settings, redis_url: str, ticket_server: TicketServer, auth: dict[str, dict[str, str]],
        tmp_path: Path) -> None:
    rq_settings = _with_webhook(settings, ticket_server, queue_mode="rq", redis_url=redis_url)
    engine = make_engine(rq_settings)
    factory = make_session_factory(engine)
    conn = redis.Redis.from_url(redis_url)
    conn.flushdb()

    def work() -> None:
        dispatch_jobs.install_context(dispatch_jobs.DispatchContext(settings=rq_settings, session_factory=factory))
        try:
            SimpleWorker([Queue(queues.DISPATCH, connection=conn)], connection=conn).work(burst=True)
        finally:
            dispatch_jobs.install_context(None)

    try:
        _, ticket_id = make_ticket(rq_settings, factory, tmp_path)
        ticket_server.fail_next(1, status=422, body="callback number missing")
        jid = queues.enqueue_dispatch(conn, ticket_id=ticket_id, version=1)
        work()
        with TestClient(create_app(rq_settings)) as client:
            assert client.get(f"/tickets/{ticket_id}/dispatches").status_code == 401
            [failed] = client.get(f"/tickets/{ticket_id}/dispatches", headers=auth["operator"]).json()["items"]
            assert (failed["status"], failed["attempts"], failed["last_status_code"]) == ("failed", 1, 422)
            assert "callback number missing" in failed["last_error"]

            url = f"/tickets/{ticket_id}/dispatch/retry"
            assert client.post(url, headers=auth["operator"]).status_code == 403
            answer = client.post(url, headers=auth["supervisor"])
            assert answer.status_code == 202, answer.text
            assert answer.json() == {"ticket_id": ticket_id, "version": 1, "connector": "webhook", "job_id": jid,
                                     "status": "pending"}
            [pending] = client.get(f"/tickets/{ticket_id}/dispatches", headers=auth["operator"]).json()["items"]
            assert pending["status"] == "pending"
            work()
            [sent] = client.get(f"/tickets/{ticket_id}/dispatches", headers=auth["operator"]).json()["items"]
            assert (sent["status"], sent["attempts"], sent["external_ref"]) == ("sent", 2, "WH-1")
            assert sent["last_error"] is None and sent["sent_at"]
            again = client.post(url, headers=auth["supervisor"])
            assert again.status_code == 409 and "already sent" in again.json()["error"]["message"]
            assert client.post("/tickets/0000000000000000/dispatch/retry",
                               headers=auth["supervisor"]).status_code == 404
        assert [r.answered for r in ticket_server.recorded()] == [422, 201]
    finally:
        conn.flushdb()
        engine.dispose()


def test_without_a_queue_the_retry_is_sent_in_process(
        settings: Settings, ticket_server: TicketServer, auth: dict[str, dict[str, str]], tmp_path: Path) -> None:
    inline = _with_webhook(settings, ticket_server, queue_mode="inline")
    engine = make_engine(inline)
    factory = make_session_factory(engine)
    try:
        _, ticket_id = make_ticket(inline, factory, tmp_path)
        with TestClient(create_app(inline)) as client:
            answer = client.post(f"/tickets/{ticket_id}/dispatch/retry", headers=auth["supervisor"])
            assert answer.status_code == 202 and answer.json()["job_id"] is None
            [row] = client.get(f"/tickets/{ticket_id}/dispatches", headers=auth["operator"]).json()["items"]
            assert (row["status"], row["external_ref"]) == ("sent", "WH-1")
            assert client.get(f"/tickets/{ticket_id}", headers=auth["operator"]).json()["status"] == "dispatched"
    finally:
        engine.dispose()
