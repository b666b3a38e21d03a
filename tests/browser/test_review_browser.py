"""The review pages in a real headless Chromium (Debian's ``chromium``, driven by Playwright; no browser is
downloaded), against the real API served by uvicorn in a subprocess, on a temporary SQLite database, with a
real sample call processed by the bundled model, a real dispatch worker process on a real Redis, and a
real HTTP ticket system on loopback that fails the first two deliveries.

An operator logs in, opens the queue and the ticket, clicks a line of the dialogue (the audio seeks to
that line and plays), corrects a field in place, and approves with the keyboard; the ticket page, left
open, follows the dispatch until it shows it sent with the receiving system's link, and the ticket system
receives exactly one accepted delivery of the edited version. Screenshots: ``tests/artifacts/``.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from conftest import ROOT, bearer, create_api_keys, service_env
from support.ticket_server import TicketServer, ticket_server_fixture  # noqa: F401

from pipeline.settings import Settings

pytestmark = [pytest.mark.model, pytest.mark.redis]

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "tests" / "artifacts"
SAMPLE = ROOT / "audio_samples" / "zh_01_heating_stereo_ulaw.wav"  # stereo µ-law: transcoded for the browser
EDITED_ADDRESS = "和平街十八号院3号楼"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_until(predicate, *, timeout: float, what: str, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.25)
    detail = log.read_text()[-3000:] if log is not None and log.exists() else ""
    pytest.fail(f"timed out waiting for {what}\n{detail}")


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


@pytest.fixture
def stack(tmp_path: Path, redis_url: str, model_cache_dir: Path,
          ticket_server: TicketServer) -> Iterator[dict]:
    """A processed sample call, the API and a dispatch worker as subprocesses, an operator key."""
    from pipeline.asr import load_transcriber
    from pipeline.intake import ingest_file
    from pipeline.process import process_call
    from pipeline.storage.db import make_engine, make_session_factory, upgrade

    settings = Settings(
        data_dir=tmp_path / "data", database_url=f"sqlite:///{tmp_path / 'db' / 'callintake.db'}",
        queue_mode="rq", redis_url=redis_url,
    )
    settings = settings.model_copy(update={"asr": settings.asr.model_copy(update={"model_cache_dir": model_cache_dir})})
    upgrade(settings)
    engine = make_engine(settings)
    factory = make_session_factory(engine)
    call = ingest_file(settings, session_factory=factory, path=SAMPLE)
    result = process_call(settings, call_id=call.call_id, transcriber=load_transcriber(settings),
                          session_factory=factory)
    engine.dispose()
    keys = create_api_keys(settings, label="browser")

    env = service_env(settings, model_cache_dir) | {
        "CALLINTAKE_DISPATCH__CONNECTOR": "webhook",
        "CALLINTAKE_DISPATCH__URL": f"{ticket_server.url}/intake",
        "CALLINTAKE_DISPATCH__SECRET": "browser-test",
        "CALLINTAKE_DISPATCH__TIMEOUT_S": "3",
        "CALLINTAKE_DISPATCH__RETRY_INTERVALS": "[1, 1, 1]",
    }
    port = _free_port()
    api_log, worker_log = tmp_path / "api.log", tmp_path / "worker.log"
    with api_log.open("w") as api_out, worker_log.open("w") as worker_out:
        api = subprocess.Popen(
            [sys.executable, "-m", "pipeline.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env, stdout=api_out, stderr=subprocess.STDOUT, cwd=tmp_path)
        worker = subprocess.Popen([sys.executable, "-m", "pipeline.cli", "-v", "worker", "--queues", "dispatch"],
                                  env=env, stdout=worker_out, stderr=subprocess.STDOUT, cwd=tmp_path)
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if api.poll() is not None:
            pytest.fail(f"the API exited:\n{api_log.read_text()[-3000:]}")
        try:
            return httpx.get(f"{base}/health", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    try:
        _wait_until(up, timeout=60, what="the API", log=api_log)
        yield {"base": base, "keys": keys, "ticket_id": result.ticket_id, "worker": worker,
               "worker_log": worker_log, "api_log": api_log, "server": ticket_server}
    finally:
        _stop(worker)
        _stop(api)
        redis.Redis.from_url(redis_url).flushdb()


def _ticket(stack: dict) -> dict:
    response = httpx.get(f"{stack['base']}/tickets/{stack['ticket_id']}", headers=bearer(stack["keys"]["supervisor"]),
                         timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def test_operator_reviews_a_call_in_the_browser(stack: dict) -> None:
    from playwright.sync_api import sync_playwright

    assert shutil.which("chromium") or Path(CHROMIUM).exists(), "Debian's chromium is needed (make test-system-deps)"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    base, ticket_id, server = stack["base"], stack["ticket_id"], stack["server"]
    server.fail_next(2, status=503)
    before = _ticket(stack)
    assert before["status"] == "needs_review" and before["version"] == 1
    segments = before["transcript"]["segments"]
    assert len(segments) >= 3
    line = next(s for s in segments[1:] if s["start"] >= 2.0)  # a line well into the call

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=["--autoplay-policy=no-user-gesture-required", "--mute-audio"])
        page = browser.new_page(viewport={"width": 1400, "height": 900}, locale="zh-CN")
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))

        # the queue asks for a key first
        response = page.goto(f"{base}/review")
        assert response is not None and response.status == 401
        page.screenshot(path=str(ARTIFACTS / "01_login.png"))
        page.fill("#key", stack["keys"]["operator"])
        page.fill("#name", "李娜")
        page.click("#login-submit")
        page.wait_for_url(f"{base}/review")
        rows = page.locator("#queue-table .ticket-row")
        assert rows.count() == 1 and rows.first.get_attribute("data-id") == ticket_id
        assert "李娜" in page.inner_text("header")
        page.screenshot(path=str(ARTIFACTS / "02_queue.png"), full_page=True)

        # open it from the keyboard
        page.keyboard.press("Enter")
        page.wait_for_url(f"{base}/review/tickets/{ticket_id}")
        page.wait_for_function("document.getElementById('player').readyState >= 1", timeout=30_000)
        duration = page.evaluate("document.getElementById('player').duration")
        assert abs(duration - before["transcript"]["duration_s"]) < 1.5 or duration > line["start"]

        # a click on a line plays the call from that line
        page.click(f"#dialogue .line[data-index='{line['index']}']")
        lo, hi = line["start"] - 0.05, line["start"] + 2
        page.wait_for_function(
            f"(() => {{ const a = document.getElementById('player');"
            f" return !a.paused && a.currentTime >= {lo} && a.currentTime < {hi}; }})()",
            timeout=10_000)
        at_click = page.evaluate("document.getElementById('player').currentTime")
        assert abs(at_click - line["start"]) < 1.0
        page.wait_for_function(f"document.getElementById('player').currentTime > {at_click + 0.3}", timeout=10_000)
        assert page.locator(f"#dialogue .line[data-index='{line['index']}']").get_attribute("class").count("playing")
        evidence_marks = page.locator("mark.ev").count()
        assert evidence_marks >= 1  # the fields' evidence is highlighted in the dialogue
        page.screenshot(path=str(ARTIFACTS / "03_ticket.png"), full_page=True)

        # correct a field in place
        page.keyboard.press(" ")  # pause
        page.fill("#f-address", EDITED_ADDRESS)
        page.keyboard.press("Enter")
        page.wait_for_function("document.getElementById('ticket-version').textContent === '2'", timeout=10_000)
        assert "edited" in page.locator(".field[data-field='address']").get_attribute("class")
        page.screenshot(path=str(ARTIFACTS / "04_edited.png"), full_page=True)

        # approve with the keyboard: back to the (now empty) queue
        page.click("#ticket-summary")
        page.keyboard.press("a")
        page.wait_for_url(f"{base}/review", timeout=15_000)
        assert page.locator("#queue-table .ticket-row").count() == 0
        page.screenshot(path=str(ARTIFACTS / "05_after_approve.png"), full_page=True)

        english = page.goto(f"{base}/review/tickets/{ticket_id}?lang=en")
        assert english is not None and english.status == 200
        assert "Approve" not in page.inner_text(".head-actions")  # approved: nothing left to decide
        assert "Caller" in page.inner_text("#dialogue") or "Call" in page.inner_text("#dialogue")
        page.screenshot(path=str(ARTIFACTS / "06_ticket_en.png"), full_page=True)

        # the open page follows the dispatch (two 503s, then accepted) and links to the receiver's ticket
        try:
            page.wait_for_function("document.getElementById('dispatch-state').dataset.status === 'sent'",
                                   timeout=180_000)
        except Exception:
            pytest.fail("the page never showed the dispatch sent\n" + stack["worker_log"].read_text()[-3000:])
        link = page.locator("#dispatch-link")
        assert link.inner_text() == "WH-1" and link.get_attribute("href") == f"{server.url}/tickets/WH-1"
        shown = page.inner_text("#dispatch-state")
        assert "✓ sent" in shown and "3 attempt(s)" in shown, shown
        assert page.inner_text("#ticket-status") == "dispatched"
        page.screenshot(path=str(ARTIFACTS / "07_dispatched_en.png"), full_page=True)
        browser.close()
    assert errors == [], errors

    after = _ticket(stack)
    assert after["version"] == 2 and after["address"] == EDITED_ADDRESS and after["reviewed_by"] == "李娜"
    edits = [a for a in after["audit"] if a["action"] == "edit"]
    assert [(a["field"], a["new_value"], a["actor"]) for a in edits] == [("address", EDITED_ADDRESS, "李娜")]

    # the dispatch worker delivers it: two 503s, then one accepted request, and never a second ticket
    _wait_until(lambda: _ticket(stack)["status"] == "dispatched", timeout=180, what="the dispatch",
                log=stack["worker_log"])
    posts = server.recorded(method="POST")
    assert [r.answered for r in posts] == [503, 503, 201], [(r.path, r.answered) for r in posts]
    assert len(server.deliveries) == 1
    [delivered] = [r for r in posts if r.answered == 201]
    assert EDITED_ADDRESS in delivered.body.decode()  # the edited version went onward
