"""Approved tickets whose dispatch job vanished (Redis restarted or flushed) are queued again; ones with a
job on the way, already sent, refused, or approved a moment ago are left alone."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from conftest import service_env
from pydantic import SecretStr
from rq import Queue, SimpleWorker
from support.ticket_server import TicketServer, ticket_server_fixture  # noqa: F401
from support.tickets import make_ticket

from pipeline.dispatch.service import dispatch_ticket, list_dispatches
from pipeline.settings import DispatchSettings, Settings
from pipeline.storage import repo
from pipeline.storage.base import utcnow
from pipeline.storage.db import make_engine, make_session_factory, session_scope
from pipeline.storage.dispatch import DispatchStatus
from workers import dispatch_jobs, queues

pytestmark = pytest.mark.redis


def _age(factory, ticket_id: str, minutes: int = 10) -> None:
    with session_scope(factory) as session:
        repo.get_ticket(session, ticket_id=ticket_id).updated_at = utcnow() - timedelta(minutes=minutes)


def test_lost_dispatch_jobs_are_queued_again(settings: Settings, redis_url: str, ticket_server: TicketServer,
                                             model_cache_dir: Path, tmp_path: Path) -> None:
    hook = settings.model_copy(update={"queue_mode": "rq", "redis_url": redis_url, "dispatch": DispatchSettings(
        connector="webhook", url=f"{ticket_server.url}/in", secret=SecretStr("lost-secret"), timeout_s=1.0,
        retry_intervals=[0])})
    engine = make_engine(hook)
    factory = make_session_factory(engine)
    conn = redis.Redis.from_url(redis_url)
    conn.flushdb()
    context = dispatch_jobs.DispatchContext(settings=hook, session_factory=factory)
    try:
        lost = [make_ticket(hook, factory, tmp_path, seed=n)[1] for n in (1, 2)]
        waiting = make_ticket(hook, factory, tmp_path, seed=3)[1]
        sent = make_ticket(hook, factory, tmp_path, seed=4)[1]
        refused = make_ticket(hook, factory, tmp_path, seed=5)[1]
        fresh = make_ticket(hook, factory, tmp_path, seed=6)[1]
        for tid in (*lost, waiting, sent, refused):
            queues.enqueue_dispatch(conn, ticket_id=tid, version=1)
        assert dispatch_ticket(hook, session_factory=factory, ticket_id=sent).status is DispatchStatus.SENT
        ticket_server.fail_next(1, status=400)
        assert dispatch_ticket(hook, session_factory=factory, ticket_id=refused).status is DispatchStatus.FAILED
        for tid in (*lost, waiting, sent, refused):
            _age(factory, tid)
        conn.flushdb()  # Redis lost everything ...
        queues.enqueue_dispatch(conn, ticket_id=waiting, version=1)  # ... and this one was queued again since

        requeued = dispatch_jobs.requeue_lost(conn, context, grace_s=60)
        assert sorted(requeued) == sorted(lost)
        assert dispatch_jobs.requeue_lost(conn, context, grace_s=60) == []  # their jobs are queued now
        assert len(conn.lrange("rq:queue:dispatch", 0, -1)) == 3

        dispatch_jobs.install_context(context)
        try:
            SimpleWorker([Queue(queues.DISPATCH, connection=conn)], connection=conn).work(burst=True)
        finally:
            dispatch_jobs.install_context(None)
        with session_scope(factory) as session:
            for tid in (*lost, waiting):
                [row] = list_dispatches(session, ticket_id=tid)
                assert row.status is DispatchStatus.SENT
            assert list_dispatches(session, ticket_id=fresh) == []  # approved a moment ago: not touched
        _age(factory, fresh)
        conn.flushdb()
        env = service_env(hook, model_cache_dir) | {"CALLINTAKE_DISPATCH__CONNECTOR": "webhook"}
        cli = subprocess.run([sys.executable, "-m", "pipeline.cli", "dispatch", "--lost", "--json"], env=env,
                             capture_output=True, text=True, timeout=120)
        assert cli.returncode == 0, cli.stderr
        assert json.loads(cli.stdout) == {"requeued": [fresh]}
    finally:
        conn.flushdb()
        engine.dispose()
