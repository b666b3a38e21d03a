"""End to end: `callintake worker --queues dispatch` as a real process consuming real jobs from Redis and
posting to a real HTTP server, retrying on its own schedule."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from conftest import service_env
from support.ticket_server import TicketServer, ticket_server_fixture  # noqa: F401
from support.tickets import make_ticket

from pipeline.dispatch.service import list_dispatches
from pipeline.dispatch.webhook import verify_signature
from pipeline.settings import Settings
from pipeline.storage import repo
from pipeline.storage.db import make_engine, make_session_factory, session_scope
from pipeline.storage.dispatch_models import DispatchStatus
from pipeline.storage.models import TicketStatus
from workers import queues

pytestmark = [pytest.mark.redis, pytest.mark.model]  # the worker loads the speech model before taking jobs

SECRET = "e2e-secret"


def test_worker_process_dispatches_with_retries(settings: Settings, redis_url: str, model_cache_dir: Path,
                                                ticket_server: TicketServer, tmp_path: Path) -> None:
    worker_settings = settings.model_copy(update={"queue_mode": "rq", "redis_url": redis_url})
    engine = make_engine(worker_settings)
    factory = make_session_factory(engine)
    conn = redis.Redis.from_url(redis_url)
    conn.flushdb()
    _, first = make_ticket(worker_settings, factory, tmp_path, seed=1)
    _, second = make_ticket(worker_settings, factory, tmp_path, seed=2)
    ticket_server.fail_next(2, status=503)  # the first two deliveries, whichever ticket they carry
    env = service_env(worker_settings, model_cache_dir) | {
        "CALLINTAKE_DISPATCH__CONNECTOR": "webhook",
        "CALLINTAKE_DISPATCH__URL": f"{ticket_server.url}/intake",
        "CALLINTAKE_DISPATCH__SECRET": SECRET,
        "CALLINTAKE_DISPATCH__TIMEOUT_S": "2",
        "CALLINTAKE_DISPATCH__RETRY_INTERVALS": "[1, 1, 1]",
    }
    log = (tmp_path / "worker.log").open("w")
    worker = subprocess.Popen([sys.executable, "-m", "pipeline.cli", "-v", "worker", "--queues", "dispatch"],
                              env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        queues.enqueue_dispatch(conn, ticket_id=first, version=1)
        queues.enqueue_dispatch(conn, ticket_id=second, version=1)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and worker.poll() is None:
            with session_scope(factory) as session:
                done = all(repo.get_ticket(session, ticket_id=tid).status is TicketStatus.DISPATCHED
                           for tid in (first, second))
            if done:
                break
            time.sleep(0.2)
        assert done, (tmp_path / "worker.log").read_text()[-3000:]
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=60) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
        log.close()
        conn.flushdb()

    requests = ticket_server.recorded()
    assert all(verify_signature(SECRET.encode(), r.headers, r.body) for r in requests)
    keys = [r.header("Idempotency-Key") for r in requests if r.answered == 201]
    assert sorted(keys) == sorted(set(keys)) and len(ticket_server.deliveries) == 2
    with session_scope(factory) as session:
        rows = {tid: _row(session, tid) for tid in (first, second)}
    assert all(row.status is DispatchStatus.SENT for row in rows.values())
    assert sum(row.attempts for row in rows.values()) == 4  # two 503s, then one success each
    engine.dispose()


def _row(session, ticket_id: str):
    [row] = list_dispatches(session, ticket_id=ticket_id)
    return row
