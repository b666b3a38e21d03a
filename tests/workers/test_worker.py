"""A real worker (the bundled model, a real Redis, real databases) taking real jobs."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from conftest import make_truncated_wav, service_env
from rq.job import Job
from support.processes import run_measured

from pipeline.intake import ingest_file
from pipeline.settings import Settings
from pipeline.storage import repo
from pipeline.storage.calls import CallStatus
from pipeline.storage.db import make_engine, make_session_factory, session_scope
from workers import jobs, queues
from workers.worker import run_worker

pytestmark = [pytest.mark.model, pytest.mark.redis]


@pytest.fixture
def worker_settings(settings: Settings, redis_url: str, model_cache_dir: Path):
    yield settings.model_copy(update={
        "queue_mode": "rq", "redis_url": redis_url,
        "asr": settings.asr.model_copy(update={"model_cache_dir": model_cache_dir}),
    })
    redis.Redis.from_url(redis_url).flushdb()


@pytest.fixture
def factory(worker_settings: Settings):
    engine = make_engine(worker_settings)
    yield make_session_factory(engine)
    engine.dispose()


def test_burst_worker_drafts_tickets_and_records_bad_audio(worker_settings: Settings, factory, sample_calls,
                                                           tmp_path: Path) -> None:
    conn = queues.connect(worker_settings)
    good = ingest_file(worker_settings, session_factory=factory, path=sample_calls[0])
    bad = ingest_file(worker_settings, session_factory=factory, path=make_truncated_wav(tmp_path / "cut.wav"))
    lost = ingest_file(worker_settings, session_factory=factory, path=sample_calls[1])
    with session_scope(factory) as session:  # its audio disappears, as when a shared volume is not mounted
        (worker_settings.data_dir / repo.get_call(session, call_id=lost.call_id).audio_path).unlink()
    good_job = queues.enqueue_call(conn, call_id=good.call_id, duration_s=good.duration_s)
    bad_job = queues.enqueue_call(conn, call_id=bad.call_id, duration_s=bad.duration_s)
    lost_job = queues.enqueue_call(conn, call_id=lost.call_id, duration_s=lost.duration_s)

    assert run_worker(worker_settings, burst=True, queues=["intake"]) == 0

    with session_scope(factory) as session:
        call = repo.get_call(session, call_id=good.call_id)
        assert call.status is CallStatus.NEEDS_REVIEW
        assert repo.find_current_ticket(session, call_id=good.call_id) is not None
        failed = repo.get_call(session, call_id=bad.call_id)
        assert (failed.status, failed.error_stage) == (CallStatus.FAILED, "decode") and failed.error_reason
    assert Job.fetch(good_job, connection=conn).return_value()["status"] == "needs_review"
    bad_result = Job.fetch(bad_job, connection=conn)
    assert bad_result.get_status() == "finished"  # bad audio is not retried
    assert bad_result.return_value()["status"] == "failed"
    retried = Job.fetch(lost_job, connection=conn)  # a failure that may pass is retried later
    assert retried.get_status() == "scheduled" and retried.retries_left == 2
    with session_scope(factory) as session:
        lost_call = repo.get_call(session, call_id=lost.call_id)
        assert lost_call.status is CallStatus.FAILED and "missing" in lost_call.error_reason
    assert jobs.installed_context() is None  # the worker removed what it installed


def test_sigterm_lets_the_running_job_finish(worker_settings: Settings, factory, sample_calls,
                                             model_cache_dir: Path, tmp_path: Path) -> None:
    conn = queues.connect(worker_settings)
    call = ingest_file(worker_settings, session_factory=factory, path=sample_calls[-1])
    queues.enqueue_call(conn, call_id=call.call_id, duration_s=call.duration_s)
    log = (tmp_path / "worker.log").open("w")
    worker = subprocess.Popen([sys.executable, "-m", "pipeline.cli", "-v", "worker"],
                              env=service_env(worker_settings, model_cache_dir), stdout=log,
                              stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 180
        while True:
            with session_scope(factory) as session:
                status = repo.get_call(session, call_id=call.call_id).status
            if status is not CallStatus.QUEUED or worker.poll() is not None or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert status is CallStatus.PROCESSING, (tmp_path / "worker.log").read_text()[-2000:]
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=600) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
        log.close()
    with session_scope(factory) as session:
        assert repo.get_call(session, call_id=call.call_id).status is CallStatus.NEEDS_REVIEW


def test_an_intake_worker_loads_the_model_once_before_taking_jobs(worker_settings: Settings, model_cache_dir: Path,
                                                                  tmp_path: Path) -> None:
    """The other side of tests/dispatch/test_dispatch_worker.py's dispatch-only worker: the same command on
    ``intake`` loads the model at start, and its peak memory shows it (the dispatch worker stays under 200 MB)."""
    if "postgres" in worker_settings.resolved_database_url:
        pytest.skip("one database is enough for a model load")
    log = tmp_path / "worker.log"
    command = [sys.executable, "-m", "pipeline.cli", "-v", "worker", "--queues", "intake", "--burst"]
    code, peak_mb = run_measured(command, log=log, env=service_env(worker_settings, model_cache_dir), cwd=tmp_path,
                                 timeout=300)
    text = log.read_text()
    assert code == 0, text[-3000:]
    assert text.count("loading the speech model") == 1
    assert "listening on intake (burst=True; speech model loaded in" in text
    assert peak_mb > 300, f"peak RSS {peak_mb:.0f} MB"
