"""`callintake dispatch TICKET_ID`: one attempt in-process, as a real command against a real server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import service_env
from support.ticket_server import TicketServer, ticket_server_fixture  # noqa: F401
from support.tickets import make_ticket

from pipeline.settings import Settings
from pipeline.storage.db import make_engine, make_session_factory


def _run(settings: Settings, model_cache: Path, server: TicketServer, *args: str) -> subprocess.CompletedProcess:
    env = service_env(settings, model_cache) | {
        "CALLINTAKE_DISPATCH__CONNECTOR": "webhook", "CALLINTAKE_DISPATCH__URL": f"{server.url}/in",
        "CALLINTAKE_DISPATCH__SECRET": "cli-secret", "CALLINTAKE_DISPATCH__TIMEOUT_S": "2",
    }
    return subprocess.run([sys.executable, "-m", "pipeline.cli", "dispatch", *args], env=env, capture_output=True,
                          text=True, timeout=120)


def test_dispatch_command_sends_once_and_reports_refusals(settings: Settings, model_cache_dir: Path,
                                                          ticket_server: TicketServer, tmp_path: Path) -> None:
    engine = make_engine(settings)
    factory = make_session_factory(engine)
    _, ticket_id = make_ticket(settings, factory, tmp_path, seed=1)
    _, refused_id = make_ticket(settings, factory, tmp_path, seed=2)
    engine.dispose()

    first = _run(settings, model_cache_dir, ticket_server, "--json", ticket_id)
    assert first.returncode == 0, first.stderr
    outcome = json.loads(first.stdout)
    assert (outcome["status"], outcome["sent_now"], outcome["attempts"]) == ("sent", True, 1)
    assert outcome["external_ref"] == "WH-1"

    again = _run(settings, model_cache_dir, ticket_server, ticket_id)
    assert again.returncode == 0 and "already sent to webhook: WH-1" in again.stdout
    assert len(ticket_server.recorded()) == 1

    ticket_server.fail_next(1, status=400, body="no such district")
    refused = _run(settings, model_cache_dir, ticket_server, refused_id)
    assert refused.returncode == 1
    assert "not sent to webhook (attempt 1)" in refused.stderr and "HTTP 400" in refused.stderr
    assert "no such district" in refused.stderr

    missing = _run(settings, model_cache_dir, ticket_server, "0000000000000000")
    assert missing.returncode == 2 and "no ticket with id" in missing.stderr
