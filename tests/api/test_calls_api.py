"""The HTTP API in-process (ASGI over httpx), on real databases and a real Redis."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
from conftest import make_tone_wav, make_truncated_wav
from fastapi.testclient import TestClient

from api.app import create_app
from pipeline.settings import Settings
from pipeline.storage import repo
from pipeline.storage.db import make_engine, make_session_factory, session_scope
from pipeline.ticket import TicketDraft

pytestmark = pytest.mark.redis


@pytest.fixture
def rq_settings(settings: Settings, redis_url: str) -> Iterator[Settings]:
    yield settings.model_copy(update={"queue_mode": "rq", "redis_url": redis_url})
    redis.Redis.from_url(redis_url).flushdb()


@pytest.fixture
def client(rq_settings: Settings, auth: dict[str, dict[str, str]]) -> Iterator[TestClient]:
    """The app; requests carry the uploader's key unless a test sends another."""
    with TestClient(create_app(rq_settings), headers=auth["uploader"]) as c:
        yield c


def _queued_job_ids(settings: Settings) -> list[str]:
    conn = redis.Redis.from_url(settings.redis_url)
    return [j.decode() for j in conn.lrange("rq:queue:intake", 0, -1)]


def test_upload_is_stored_queued_once_and_readable(client: TestClient, rq_settings: Settings,
                                                    tmp_path: Path) -> None:
    wav = make_tone_wav(tmp_path / "call.wav").read_bytes()
    first = client.post("/calls", files={"file": ("call.wav", wav, "audio/wav")},
                        data={"caller_number": "13700001111", "line": "L2", "received_at": "2026-06-01T10:15:00"})
    assert first.status_code == 202, first.text
    body = first.json()
    assert set(body) == {"call_id", "status"} and body["status"] == "queued"
    call_id = body["call_id"]

    again = client.post("/calls", files={"file": ("again.wav", wav, "audio/wav")})
    assert again.status_code == 200 and again.json()["call_id"] == call_id

    jobs = _queued_job_ids(rq_settings)
    assert len(jobs) == 1 and jobs[0].startswith(f"intake-{call_id}-")

    call = client.get(f"/calls/{call_id}").json()  # the uploader reads its own call
    assert call["status"] == "queued" and call["transcript"] is None and call["ticket_id"] is None
    assert call["caller_number"] == "13700001111" and call["line"] == "L2"
    assert datetime.fromisoformat(call["received_at"]) == datetime(2026, 6, 1, 2, 15, tzinfo=UTC)
    assert call["channels"] == 2 and call["sample_rate"] == 8000
    listing = client.get("/calls").json()
    assert listing["total"] == 1 and listing["items"][0]["id"] == call_id


@pytest.mark.parametrize("name,content,status,code", [
    ("empty.wav", b"", 400, "empty_audio"),
    ("letter.wav", b"To whom it may concern: the lift is broken again.\n" * 50, 415, "unsupported_audio"),
    ("scan.mp3", b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n" * 200, 415, "unsupported_audio"),
])
def test_bad_uploads_get_a_clear_4xx_and_nothing_is_stored(client: TestClient, name: str, content: bytes,
                                                            status: int, code: str) -> None:
    response = client.post("/calls", files={"file": (name, content, "audio/wav")})
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and name in error["message"] or error["code"] == "empty_audio"
    assert client.get("/calls").json()["total"] == 0
    assert client.get("/health").status_code == 200


def test_missing_file_field_is_422(client: TestClient) -> None:
    response = client.post("/calls", data={"line": "L1"})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_request"


def test_bad_received_at_is_422(client: TestClient, tmp_path: Path) -> None:
    wav = make_tone_wav(tmp_path / "c.wav", freq=300).read_bytes()
    response = client.post("/calls", files={"file": ("c.wav", wav)}, data={"received_at": "yesterday-ish"})
    assert response.status_code == 422


def test_truncated_wav_is_accepted_for_the_worker(client: TestClient, tmp_path: Path) -> None:
    cut = make_truncated_wav(tmp_path / "cut.wav").read_bytes()
    response = client.post("/calls", files={"file": ("cut.wav", cut, "audio/wav")})
    assert response.status_code == 202


@pytest.fixture
def small_limit_client(rq_settings: Settings, auth: dict[str, dict[str, str]]) -> Iterator[TestClient]:
    small = rq_settings.model_copy(
        update={"audio": rq_settings.audio.model_copy(update={"max_upload_mb": 0.05})}
    )
    with TestClient(create_app(small), headers=auth["uploader"]) as c:
        yield c


def test_over_the_limit_is_413_with_a_declared_length(small_limit_client: TestClient, tmp_path: Path) -> None:
    big = make_tone_wav(tmp_path / "big.wav", seconds=60.0).read_bytes()  # ~960 KB
    response = small_limit_client.post("/calls", files={"file": ("big.wav", big, "audio/wav")})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "audio_too_large"
    assert small_limit_client.get("/calls").json()["total"] == 0


def test_over_the_limit_is_413_when_streamed_without_a_length(small_limit_client: TestClient,
                                                               tmp_path: Path) -> None:
    big = make_tone_wav(tmp_path / "big.wav", seconds=60.0).read_bytes()
    boundary = "callintake-boundary"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.wav\"\r\n"
            "Content-Type: audio/wav\r\n\r\n").encode()
    tail = f"\r\n--{boundary}--\r\n".encode()

    def body() -> Iterator[bytes]:
        yield head
        for i in range(0, len(big), 32 * 1024):
            yield big[i:i + 32 * 1024]
        yield tail

    response = small_limit_client.post(
        "/calls", content=body(), headers={"content-type": f"multipart/form-data; boundary={boundary}"}
    )
    assert response.status_code == 413
    assert small_limit_client.get("/calls").json()["total"] == 0


def test_unknown_ids_are_404(client: TestClient, auth: dict[str, dict[str, str]]) -> None:
    for path in ("/calls/0123456789abcdef", "/tickets/0123456789abcdef"):
        response = client.get(path, headers=auth["operator"])
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"


def test_tickets_are_filtered_and_paged(client: TestClient, rq_settings: Settings,
                                        auth: dict[str, dict[str, str]]) -> None:
    client.headers.update(auth["operator"])
    engine = make_engine(rq_settings)
    factory = make_session_factory(engine)
    base = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
    with session_scope(factory) as session:
        for i, (urgency, district, category) in enumerate([
            ("emergency", "西城区", "public_safety.fire"), ("normal", "西城区", "traffic.parking"),
            ("urgent", "通州区", "utilities.power"), ("normal", "通州区", "traffic.road"),
        ]):
            call = repo.add_call(session, audio_sha256=f"{i:064x}", audio_path=f"audio/x/{i}.wav", size_bytes=10,
                                 received_at=base + timedelta(minutes=i))
            repo.save_ticket(session, call_id=call.id, draft=TicketDraft(
                request_type="help", category=category, urgency=urgency, due_at=base + timedelta(hours=2),
                department="119", summary=f"第{i}号工单", language="zh", district=district,
                amounts=(1330000.0,), rules_version="t1",
            ))
    engine.dispose()
    everything = client.get("/tickets").json()
    assert everything["total"] == 4
    assert client.get("/tickets", params={"district": "西城区"}).json()["total"] == 2
    assert client.get("/tickets", params={"urgency": "normal", "district": "通州区"}).json()["total"] == 1
    assert client.get("/tickets", params={"category": "traffic."}).json()["total"] == 2
    assert client.get("/tickets", params={"status": "approved"}).json()["total"] == 0
    assert client.get("/tickets", params={"urgency": "whenever"}).status_code == 422
    page = client.get("/tickets", params={"limit": 3, "offset": 3}).json()
    assert (len(page["items"]), page["total"]) == (1, 4)
    ticket = client.get(f"/tickets/{everything['items'][0]['id']}").json()
    assert ticket["amounts"] == [1330000] and ticket["status"] == "needs_review"
    assert {"evidence", "confidence", "needs_review", "vulnerable", "callback_number"} <= set(ticket)


def test_database_unreachable_is_503_never_500(rq_settings: Settings, tmp_path: Path,
                                               auth: dict[str, dict[str, str]]) -> None:
    down = rq_settings.model_copy(update={"database_url": "postgresql+psycopg://postgres@127.0.0.1:1/none"})
    wav = make_tone_wav(tmp_path / "c.wav", freq=900).read_bytes()
    with TestClient(create_app(down), raise_server_exceptions=False, headers=auth["supervisor"]) as c:
        for response in (c.get("/calls"), c.get("/tickets"), c.get("/calls/abc"),
                         c.post("/calls", files={"file": ("c.wav", wav, "audio/wav")})):
            assert response.status_code == 503, response.text
            assert response.json()["error"]["code"] == "storage_unavailable"
            assert response.headers["retry-after"]
        health = c.get("/health")
        assert health.status_code == 503 and health.json()["queue"] == "ok"


def test_queue_unreachable_is_503_and_the_call_is_kept(settings: Settings, tmp_path: Path,
                                                       auth: dict[str, dict[str, str]]) -> None:
    down = settings.model_copy(update={"queue_mode": "rq", "redis_url": "redis://127.0.0.1:1/0"})
    wav = make_tone_wav(tmp_path / "c.wav", freq=1000).read_bytes()
    with TestClient(create_app(down), raise_server_exceptions=False, headers=auth["uploader"]) as c:
        response = c.post("/calls", files={"file": ("c.wav", wav, "audio/wav")})
        assert response.status_code == 503 and response.json()["error"]["code"] == "storage_unavailable"
        assert c.get("/calls").json()["total"] == 1
        assert c.get("/health").status_code == 503


def test_openapi_documents_the_routes(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/calls", "/calls/{call_id}", "/tickets", "/tickets/{ticket_id}", "/health"} <= set(paths)
    assert client.get("/docs").status_code == 200


@pytest.mark.model
def test_inline_mode_processes_the_upload_in_the_api(settings: Settings, model_cache_dir: Path,
                                                     sample_calls: list[Path],
                                                     auth: dict[str, dict[str, str]]) -> None:
    inline = settings.model_copy(update={
        "queue_mode": "inline", "asr": settings.asr.model_copy(update={"model_cache_dir": model_cache_dir}),
    })
    sample = sample_calls[0]
    with TestClient(create_app(inline), headers=auth["supervisor"]) as c:
        response = c.post("/calls", files={"file": (sample.name, sample.read_bytes())})
        assert response.status_code == 202
        assert c.get("/health").json()["queue"] == "inline"
        call = c.get(f"/calls/{response.json()['call_id']}").json()  # background work ran after the answer
        assert call["status"] == "needs_review" and call["ticket_id"] and call["transcript"]["text"]
        assert c.get(f"/tickets/{call['ticket_id']}").json()["call_id"] == call["id"]
