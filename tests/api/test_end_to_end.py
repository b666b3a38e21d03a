"""The whole product on real parts: uvicorn serving the API in a subprocess, an HTTP upload, a real RQ
worker process (``callintake worker --burst``) on a real Redis, the bundled Whisper model, and the ticket
read back through ``GET /tickets/{id}`` — on SQLite and on PostgreSQL."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from conftest import ROOT, make_truncated_wav, service_env

from pipeline.settings import Settings
from pipeline.ticket import FIELDS, REQUEST_TYPES, URGENCIES

pytestmark = [pytest.mark.model, pytest.mark.redis]

SAMPLE = ROOT / "audio_samples" / "zh_01_heating_stereo_ulaw.wav"
TAXONOMY_GROUPS = ("housing.", "utilities.", "traffic.", "city.", "environment.", "market.", "labour.",
                   "social.", "health.", "education.", "public_safety.", "weather.", "other")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def live(settings: Settings, redis_url: str, model_cache_dir: Path, tmp_path: Path) -> Iterator[tuple[str, dict]]:
    """The API served by uvicorn in a subprocess; yields its base URL and the environment it runs with."""
    settings = settings.model_copy(update={"queue_mode": "rq", "redis_url": redis_url})
    env = service_env(settings, model_cache_dir)
    port = _free_port()
    log = (tmp_path / "api.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"API did not come up:\n{(tmp_path / 'api.log').read_text()[-3000:]}")
            time.sleep(0.3)
        yield base, env
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
        import redis

        redis.Redis.from_url(redis_url).flushdb()


def _create_key(env: dict, role: str, cwd: Path) -> str:
    """A key made the way an administrator makes one: ``callintake keys create``."""
    made = subprocess.run([sys.executable, "-m", "pipeline.cli", "keys", "create", "--role", role, "--name",
                           f"e2e {role}"], env=env, capture_output=True, text=True, timeout=60, cwd=cwd)
    assert made.returncode == 0, made.stderr
    return made.stdout.strip()


def test_upload_to_ticket_through_the_real_services(live: tuple[str, dict], tmp_path: Path) -> None:
    base, env = live
    uploader = {"Authorization": f"Bearer {_create_key(env, 'uploader', tmp_path)}"}
    operator = {"Authorization": f"Bearer {_create_key(env, 'operator', tmp_path)}"}
    with httpx.Client(base_url=base, timeout=30, headers=uploader) as http:
        assert http.post("/calls", files={"file": ("x.wav", b"RIFF")}, headers={"Authorization": ""}).status_code == 401
        with SAMPLE.open("rb") as audio:
            created = http.post("/calls", files={"file": (SAMPLE.name, audio, "audio/wav")},
                                data={"line": "12345-7", "received_at": "2026-01-12T09:40:00+08:00"})
        assert created.status_code == 202, created.text
        call_id = created.json()["call_id"]
        cut = make_truncated_wav(tmp_path / "cut.wav").read_bytes()
        broken = http.post("/calls", files={"file": ("cut.wav", cut, "audio/wav")})
        assert broken.status_code == 202
        not_audio = http.post("/calls", files={"file": ("notes.wav", b"plain text, not sound\n" * 30)})
        assert not_audio.status_code == 415
        assert http.get(f"/calls/{call_id}").json()["status"] == "queued"

        worker = subprocess.run([sys.executable, "-m", "pipeline.cli", "-v", "worker", "--burst"],
                                env=env, capture_output=True, text=True, timeout=900, cwd=tmp_path)
        assert worker.returncode == 0, worker.stderr[-3000:]

        call = http.get(f"/calls/{call_id}").json()
        assert call["status"] == "needs_review", call
        assert call["language"] == "zh" and call["error_reason"] is None
        transcript = call["transcript"]
        assert transcript["text"].strip() and {s["speaker"] for s in transcript["segments"]} <= {
            "agent", "caller", "mixed"}
        assert transcript["options"]  # how it was made is kept with it
        assert call["ticket_id"]

        assert http.get(f"/tickets/{call['ticket_id']}").status_code == 403  # uploaders do not review
        http.headers.update(operator)
        ticket = http.get(f"/tickets/{call['ticket_id']}")
        assert ticket.status_code == 200
        ticket = ticket.json()
        assert set(FIELDS) <= set(ticket)
        assert ticket["call_id"] == call_id and ticket["status"] == "needs_review"
        assert ticket["request_type"] in REQUEST_TYPES and ticket["urgency"] in URGENCIES
        assert ticket["category"].startswith(TAXONOMY_GROUPS)
        assert ticket["language"] == "zh" and ticket["summary"]
        assert datetime.fromisoformat(ticket["due_at"]) > datetime.fromisoformat("2026-01-12T09:40:00+08:00")
        listed = http.get("/tickets", params={"call_id": call_id}).json()
        assert [t["id"] for t in listed["items"]] == [ticket["id"]]

        http.headers.update(uploader)
        failed = http.get(f"/calls/{broken.json()['call_id']}").json()
        assert failed["status"] == "failed" and failed["error_stage"] == "decode"
        assert failed["error_reason"] and failed["ticket_id"] is None
        assert http.get("/health").status_code == 200
