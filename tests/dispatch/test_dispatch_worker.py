"""End to end: `callintake worker --queues dispatch` as a real process consuming real jobs from Redis and
posting to a real HTTP server, retrying on its own schedule, without loading the speech model."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from conftest import service_env
from support.processes import run_measured
from support.ticket_server import TicketServer, ticket_server_fixture  # noqa: F401
from support.tickets import make_ticket

from pipeline.dispatch.service import list_dispatches
from pipeline.dispatch.webhook import verify_signature
from pipeline.settings import Settings
from pipeline.storage import repo
from pipeline.storage.db import make_engine, make_session_factory, session_scope
from pipeline.storage.dispatch import DispatchStatus
from pipeline.ticket import TicketStatus
from workers import queues

pytestmark = pytest.mark.redis  # a dispatch-only worker does not load the speech model

SECRET = "e2e-secret"
#: a dispatch-only worker peaks near 90 MB; one that loads the bundled model passes 450 MB
#: (tests/workers/test_worker.py measures that side)
DISPATCH_WORKER_MAX_RSS_MB = 200


def _webhook_env(settings: Settings, model_cache: Path, server: TicketServer, **extra: str) -> dict[str, str]:
    return service_env(settings, model_cache) | {
        "CALLINTAKE_DISPATCH__CONNECTOR": "webhook",
        "CALLINTAKE_DISPATCH__URL": f"{server.url}/intake",
        "CALLINTAKE_DISPATCH__SECRET": SECRET,
        "CALLINTAKE_DISPATCH__TIMEOUT_S": "2",
    } | extra


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
    env = _webhook_env(worker_settings, model_cache_dir, ticket_server,
                       CALLINTAKE_DISPATCH__RETRY_INTERVALS="[1, 1, 1]")
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


def test_a_dispatch_only_burst_worker_delivers_without_loading_the_model(
    settings: Settings, redis_url: str, model_cache_dir: Path, ticket_server: TicketServer, tmp_path: Path
) -> None:
    worker_settings = settings.model_copy(update={"queue_mode": "rq", "redis_url": redis_url})
    engine = make_engine(worker_settings)
    factory = make_session_factory(engine)
    conn = redis.Redis.from_url(redis_url)
    conn.flushdb()
    _, ticket_id = make_ticket(worker_settings, factory, tmp_path, seed=3)
    log = tmp_path / "worker.log"
    try:
        queues.enqueue_dispatch(conn, ticket_id=ticket_id, version=1)
        code, peak_mb = run_measured(
            [sys.executable, "-m", "pipeline.cli", "-v", "worker", "--queues", "dispatch", "--burst"],
            log=log, env=_webhook_env(worker_settings, model_cache_dir, ticket_server), cwd=tmp_path, timeout=120)
    finally:
        conn.flushdb()
    text = log.read_text()
    assert code == 0, text[-3000:]
    assert len(ticket_server.deliveries) == 1 and len(ticket_server.recorded(method="POST")) == 1
    with session_scope(factory) as session:
        assert repo.get_ticket(session, ticket_id=ticket_id).status is TicketStatus.DISPATCHED
        assert _row(session, ticket_id).status is DispatchStatus.SENT
    engine.dispose()
    assert "listening on dispatch (burst=True; speech model not loaded)" in text, text[-3000:]
    assert "loading the speech model" not in text and "speech model loaded" not in text
    assert peak_mb < DISPATCH_WORKER_MAX_RSS_MB, f"peak RSS {peak_mb:.0f} MB"
