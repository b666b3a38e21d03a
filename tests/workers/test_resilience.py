"""No call lost: real worker processes killed and stopped mid-transcription, the database taken away behind a
TCP proxy while the API and a worker run, and a hundred identical uploads at once through a real server."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import redis
from conftest import ROOT, bearer, create_api_keys, make_tone_wav
from ops_support import (  # noqa: F401  (fixtures)
    factory_fixture,
    ops_env,
    ops_settings_fixture,
    run_cli,
    start_worker,
    stop,
    wait_for,
)
from rq.job import Job
from sqlalchemy import func, select, text
from tcp_proxy import TcpProxy

from pipeline.intake import ingest_file
from pipeline.settings import Settings
from pipeline.storage import repo
from pipeline.storage.calls import CallRow, CallStatus, TranscriptRow
from pipeline.storage.db import make_engine, make_session_factory, session_scope, upgrade
from pipeline.storage.tickets import TicketRow
from workers import queues

SAMPLE_43S = ROOT / "audio_samples" / "zh_07_gasleak_mono_ulaw.wav"
SHORT_SAMPLE = ROOT / "audio_samples" / "en_01_pothole_stereo_ulaw.wav"
#: how many times the 43-second sample is repeated for a call that is surely still being transcribed
#: when a test stops its worker (one copy takes only a few seconds on two cores)
LONG_REPEATS = 6


@pytest.fixture
def long_sample(tmp_path: Path) -> Path:
    """A recording of about four minutes: the sample call six times over, made with sox."""
    out = tmp_path / "long_call.wav"
    subprocess.run(["sox", *([str(SAMPLE_43S)] * LONG_REPEATS), str(out)], check=True)
    return out


def _status(factory, call_id: str) -> CallStatus:
    with session_scope(factory) as session:
        return repo.get_call(session, call_id=call_id).status


def _counts(factory, call_id: str) -> tuple[int, int]:
    with session_scope(factory) as session:
        tickets = session.scalar(select(func.count()).select_from(TicketRow).where(TicketRow.call_id == call_id))
        transcripts = session.scalar(
            select(func.count()).select_from(TranscriptRow).where(TranscriptRow.call_id == call_id))
    return int(tickets or 0), int(transcripts or 0)


def _one_backend(settings: Settings, backend: str) -> None:
    """Model runs are slow on two shared cores: run this one on ``backend`` only."""
    if not settings.resolved_database_url.startswith(backend):
        pytest.skip(f"runs on {backend} only (a model run per database would double its time)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.model
@pytest.mark.redis
def test_worker_killed_mid_transcription_the_call_still_gets_exactly_one_ticket(
    ops_settings: Settings, factory, model_cache_dir: Path, tmp_path: Path, long_sample: Path
) -> None:
    _one_backend(ops_settings, "postgresql")  # the several-hosts database
    conn = queues.connect(ops_settings)
    call = ingest_file(ops_settings, session_factory=factory, path=long_sample)
    queues.enqueue_call(conn, call_id=call.call_id, duration_s=call.duration_s)
    env = ops_env(ops_settings, model_cache_dir)
    worker = start_worker(env, tmp_path, "--queues", "intake")
    try:
        wait_for(lambda: _status(factory, call.call_id) is CallStatus.PROCESSING or worker.poll() is not None,
                 timeout=240, what="the worker to start on the call")
        assert worker.poll() is None, (tmp_path / "worker.log").read_text()[-3000:]
        time.sleep(1.5)  # inside the decoder now
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
    finally:
        stop(worker)
    assert _status(factory, call.call_id) is CallStatus.PROCESSING  # what the dead worker left
    assert _counts(factory, call.call_id) == (0, 0)

    # the lease outlives the worker by at most its TTL; until then the call counts as running
    def requeued() -> bool:
        done = run_cli(env, tmp_path, "reconcile", "--grace", "0", "--json")
        assert done.returncode == 0, done.stderr[-2000:]
        return call.call_id in json.loads(done.stdout)["requeued"]

    wait_for(requeued, timeout=30, interval=0.5, what="reconcile to find the call lost")
    with session_scope(factory) as session:
        again = repo.get_call(session, call_id=call.call_id)
        assert (again.status, again.retry_count) == (CallStatus.QUEUED, 1)

    burst = start_worker(env, tmp_path, "--burst", "--queues", "intake", log_name="burst.log")
    try:
        assert burst.wait(timeout=600) == 0, (tmp_path / "burst.log").read_text()[-3000:]
    finally:
        stop(burst)
    assert _status(factory, call.call_id) is CallStatus.NEEDS_REVIEW
    assert _counts(factory, call.call_id) == (1, 1)
    assert json.loads(run_cli(env, tmp_path, "reconcile", "--grace", "0", "--json").stdout)["checked"] == 0


@pytest.mark.model
@pytest.mark.redis
def test_sigterm_after_the_grace_puts_the_call_back_at_the_front_of_the_queue(
    ops_settings: Settings, factory, model_cache_dir: Path, tmp_path: Path, long_sample: Path
) -> None:
    _one_backend(ops_settings, "sqlite")
    conn = queues.connect(ops_settings)
    call = ingest_file(ops_settings, session_factory=factory, path=long_sample)
    other = ingest_file(ops_settings, session_factory=factory, path=SHORT_SAMPLE)
    queues.enqueue_call(conn, call_id=call.call_id, duration_s=call.duration_s)
    queues.enqueue_call(conn, call_id=other.call_id, duration_s=other.duration_s)
    env = ops_env(ops_settings, model_cache_dir, CALLINTAKE_OPS__SHUTDOWN_GRACE_S="1")
    worker = start_worker(env, tmp_path, "--queues", "intake")
    try:
        wait_for(lambda: _status(factory, call.call_id) is CallStatus.PROCESSING or worker.poll() is not None,
                 timeout=240, what="the worker to start on the call")
        worker.send_signal(signal.SIGTERM)
        started = time.monotonic()
        assert worker.wait(timeout=60) == 0, (tmp_path / "worker.log").read_text()[-3000:]
        assert time.monotonic() - started < 30  # did not wait for a four-minute call to finish
    finally:
        stop(worker)
    assert _status(factory, call.call_id) is CallStatus.QUEUED
    queued = [j.decode() for j in conn.lrange("rq:queue:intake", 0, -1)]
    assert queued == [queues.intake_job_id(call.call_id), queues.intake_job_id(other.call_id)]
    assert _counts(factory, call.call_id) == (0, 0)

    burst = start_worker(env, tmp_path, "--burst", "--queues", "intake", log_name="burst.log")
    try:
        assert burst.wait(timeout=600) == 0, (tmp_path / "burst.log").read_text()[-3000:]
    finally:
        stop(burst)
    for call_id in (call.call_id, other.call_id):
        assert _status(factory, call_id) is CallStatus.NEEDS_REVIEW
        assert _counts(factory, call_id) == (1, 1)


def _serve(env: dict[str, str], cwd: Path, log_name: str = "api.log") -> tuple[subprocess.Popen, str]:
    port = _free_port()
    log = (cwd / log_name).open("ab")
    server = subprocess.Popen([sys.executable, "-m", "pipeline.cli", "serve", "--host", "127.0.0.1", "--port",
                               str(port)], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=cwd)
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if server.poll() is not None:
            pytest.fail(f"API exited:\n{(cwd / log_name).read_text()[-3000:]}")
        try:
            return httpx.get(f"{base}/health", timeout=2).status_code in (200, 503)
        except httpx.TransportError:
            return False

    wait_for(up, timeout=60, interval=0.3, what="the API to answer")
    return server, base


@pytest.fixture
def proxied_pg(pg_database_url: str, redis_url: str, model_cache_dir: Path, tmp_path: Path) -> Iterator[
        tuple[Settings, TcpProxy]]:
    """Settings whose PostgreSQL is reached through a TCP proxy that the test can cut and restore."""
    direct = Settings(data_dir=tmp_path / "data", database_url=pg_database_url)
    upgrade(direct)
    engine = make_engine(direct)
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE tickets, transcripts, calls, reprocess_runs CASCADE"))
    engine.dispose()
    redis.Redis.from_url(redis_url).flushdb()
    with TcpProxy(("127.0.0.1", 5432)) as proxy:
        url = pg_database_url.replace("@127.0.0.1:5432/", f"@127.0.0.1:{proxy.port}/")
        assert url != pg_database_url
        yield direct.model_copy(update={
            "database_url": url, "queue_mode": "rq", "redis_url": redis_url,
            "asr": direct.asr.model_copy(update={"model_cache_dir": model_cache_dir}),
            "ops": direct.ops.model_copy(update={"lease_ttl_s": 3.0, "reconcile_every_s": 0.0,
                                                 "reconcile_grace_s": 0.0}),
        }), proxy
    redis.Redis.from_url(redis_url).flushdb()


@pytest.mark.model
@pytest.mark.redis
@pytest.mark.postgres
def test_database_away_for_a_while_jobs_retry_and_succeed_and_the_api_answers_503(
    proxied_pg: tuple[Settings, TcpProxy], model_cache_dir: Path, tmp_path: Path
) -> None:
    settings, proxy = proxied_pg
    keys = create_api_keys(settings)
    env = ops_env(settings, model_cache_dir)
    server, base = _serve(env, tmp_path)
    worker = None
    try:
        with httpx.Client(base_url=base, timeout=30, headers=bearer(keys["supervisor"])) as http:
            with SHORT_SAMPLE.open("rb") as audio:
                created = http.post("/calls", files={"file": (SHORT_SAMPLE.name, audio, "audio/wav")})
            assert created.status_code == 202, created.text
            call_id = created.json()["call_id"]

            proxy.cut()
            tone = make_tone_wav(tmp_path / "new.wav", freq=610).read_bytes()
            for response in (http.get(f"/calls/{call_id}"), http.get("/calls"), http.get("/tickets"),
                             http.post("/calls", files={"file": ("new.wav", tone, "audio/wav")}),
                             http.get("/admin/reprocess"), http.get("/metrics")):
                assert response.status_code == 503, (response.request.url, response.status_code, response.text)
                assert response.json()["error"]["code"] == "storage_unavailable"
            assert http.get("/health").status_code == 503

            worker = start_worker(env, tmp_path, "--queues", "intake")
            conn = queues.connect(settings)
            jid = queues.intake_job_id(call_id)

            def retried() -> bool:
                assert worker.poll() is None, (tmp_path / "worker.log").read_text()[-3000:]
                job = Job.fetch(jid, connection=conn)
                return job.get_status() == "scheduled" and job.retries_left is not None and job.retries_left < 3

            wait_for(retried, timeout=240, what="the job to fail on the database and be scheduled for a retry")
            time.sleep(2)
            proxy.restore()

            def finished() -> bool:
                response = http.get(f"/calls/{call_id}")
                return response.status_code == 200 and response.json()["status"] == "needs_review"

            wait_for(finished, timeout=400, interval=1.0, what="the retried job to draft the ticket")
            call = http.get(f"/calls/{call_id}").json()
            assert call["ticket_id"] and call["error_reason"] is None
            assert http.get("/tickets", params={"call_id": call_id}).json()["total"] == 1
            assert http.get("/health").status_code == 200
            metrics = http.get("/metrics")
            assert metrics.status_code == 200 and 'callintake_jobs_total{outcome="retried",queue="intake"}' \
                in metrics.text and "callintake_database_up 1.0" in metrics.text
    finally:
        if worker is not None:
            stop(worker)
        stop(server)


@pytest.mark.redis
def test_a_hundred_identical_uploads_at_once_make_one_call_and_one_job(
    ops_settings: Settings, factory, model_cache_dir: Path, tmp_path: Path
) -> None:
    keys = create_api_keys(ops_settings)
    env = ops_env(ops_settings, model_cache_dir)
    server, base = _serve(env, tmp_path)
    payload = make_tone_wav(tmp_path / f"dup-{uuid.uuid4().hex[:6]}.wav", seconds=3.0, freq=523).read_bytes()
    try:
        def upload(i: int) -> httpx.Response:
            with httpx.Client(base_url=base, timeout=60, headers=bearer(keys["uploader"])) as http:
                return http.post("/calls", files={"file": (f"copy-{i}.wav", payload, "audio/wav")})

        with ThreadPoolExecutor(max_workers=50) as pool:
            responses = list(pool.map(upload, range(100)))
    finally:
        stop(server)
    assert all(r.status_code in (200, 202) for r in responses), {r.status_code: r.text for r in responses}
    assert len({r.json()["call_id"] for r in responses}) == 1
    assert sum(r.status_code == 202 for r in responses) == 1
    with session_scope(factory) as session:
        assert session.scalar(select(func.count()).select_from(CallRow)) == 1
    conn = queues.connect(ops_settings)
    assert conn.lrange("rq:queue:intake", 0, -1) == [queues.intake_job_id(responses[0].json()["call_id"]).encode()]
    stored = [p for p in (ops_settings.data_dir / "audio").rglob("*") if p.is_file()]
    assert len(stored) == 1
    assert not any((ops_settings.data_dir / "tmp").glob("*"))


@pytest.mark.postgres
def test_the_proxy_really_cuts_the_database(pg_database_url: str, tmp_path: Path) -> None:
    """The outage test above is only as good as its proxy: with the link cut, the database is unreachable."""
    direct = Settings(data_dir=tmp_path / "data", database_url=pg_database_url)
    with TcpProxy(("127.0.0.1", 5432)) as proxy:
        url = pg_database_url.replace("@127.0.0.1:5432/", f"@127.0.0.1:{proxy.port}/")
        engine = make_engine(direct, url=url)
        factory = make_session_factory(engine)
        with session_scope(factory) as session:
            assert session.scalar(text("SELECT 1")) == 1
        proxy.cut()
        from pipeline.errors import StorageUnavailable

        with pytest.raises(StorageUnavailable), session_scope(factory) as session:
            session.scalar(text("SELECT 1"))
        proxy.restore()
        with session_scope(factory) as session:
            assert session.scalar(text("SELECT 1")) == 1
        engine.dispose()
