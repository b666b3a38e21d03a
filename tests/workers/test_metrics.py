"""/metrics: counters added to by several processes, gauges read at scrape time, a scrape that survives a
Redis outage, and the endpoint for supervisors only."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import ROOT, bearer, create_api_keys
from fastapi.testclient import TestClient
from ops_support import add_transcribed_call, factory_fixture, ops_settings_fixture  # noqa: F401  (fixtures)
from prometheus_client.parser import text_string_to_metric_families

from api.app import create_app
from pipeline.settings import Settings
from pipeline.storage.calls import CallStatus
from workers import metrics, queues

pytestmark = pytest.mark.redis


def _samples(body: bytes | str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = body.decode() if isinstance(body, bytes) else body
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def test_counters_from_several_processes_add_up(ops_settings: Settings, tmp_path: Path) -> None:
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(ROOT)!r})
        import redis
        from workers import metrics
        conn = redis.Redis.from_url({ops_settings.redis_url!r})
        for i in range(40):
            metrics.record_job(conn, queue="intake", outcome="done")
            metrics.record_stages(conn, {{"transcribe": 0.3 + i * 0.1, "extract": 0.004}})
            metrics.record_audio(conn, 12.5)
        metrics.record_job(conn, queue="intake", outcome="failed")
    """)
    workers = [subprocess.Popen([sys.executable, "-c", script]) for _ in range(3)]
    assert [w.wait(timeout=120) for w in workers] == [0, 0, 0]

    samples = _samples(metrics.render(queues.connect(ops_settings)))
    assert samples[("callintake_jobs_total", (("outcome", "done"), ("queue", "intake")))] == 120
    assert samples[("callintake_jobs_total", (("outcome", "failed"), ("queue", "intake")))] == 3
    assert samples[("callintake_audio_seconds_total", ())] == pytest.approx(3 * 40 * 12.5)
    assert samples[("callintake_stage_seconds_count", (("stage", "transcribe"),))] == 120
    assert samples[("callintake_stage_seconds_sum", (("stage", "transcribe"),))] == pytest.approx(
        3 * sum(0.3 + i * 0.1 for i in range(40)))
    buckets = {dict(labels)["le"]: value for (name, labels), value in samples.items()
               if name == "callintake_stage_seconds_bucket" and dict(labels)["stage"] == "transcribe"}
    assert buckets["0.25"] == 0 and buckets["0.5"] == 3 * 3 and buckets["5.0"] == 120 and buckets["+Inf"] == 120
    values = [buckets[b] for b in sorted(buckets, key=lambda b: float(b.replace("+Inf", "inf")))]
    assert values == sorted(values)  # cumulative
    assert samples[("callintake_stage_seconds_bucket", (("le", "0.01"), ("stage", "extract")))] == 120
    assert samples[("callintake_queue_up", ())] == 1


def test_scrape_reads_queue_depths_workers_and_calls(ops_settings: Settings, factory) -> None:
    conn = queues.connect(ops_settings)
    for i in range(2):
        queues.enqueue_call(conn, call_id=add_transcribed_call(factory, i, status=CallStatus.QUEUED))
    add_transcribed_call(factory, 5, status=CallStatus.NEEDS_REVIEW)
    samples = _samples(metrics.render(conn, factory))
    assert samples[("callintake_queue_jobs", (("queue", "intake"), ("state", "queued")))] == 2
    assert samples[("callintake_queue_jobs", (("queue", "archive"), ("state", "queued")))] == 0
    assert samples[("callintake_workers", ())] == 0
    assert samples[("callintake_calls", (("status", "queued"),))] == 2
    assert samples[("callintake_calls", (("status", "needs_review"),))] == 1
    assert samples[("callintake_database_up", ())] == 1


def test_scrape_still_answers_when_redis_is_away(ops_settings: Settings, factory) -> None:
    away = queues.connect(ops_settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"}))
    add_transcribed_call(factory, 0, status=CallStatus.FAILED)
    samples = _samples(metrics.render(away, factory))
    assert samples[("callintake_queue_up", ())] == 0
    assert samples[("callintake_calls", (("status", "failed"),))] == 1
    metrics.record_job(away, queue="intake", outcome="done")  # recording never raises


def test_metrics_endpoint_is_for_supervisors(ops_settings: Settings) -> None:
    keys = create_api_keys(ops_settings)
    with TestClient(create_app(ops_settings)) as client:
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers=bearer(keys["operator"])).status_code == 403
        response = client.get("/metrics", headers=bearer(keys["supervisor"]))
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    samples = _samples(response.text)
    assert samples[("callintake_queue_up", ())] == 1 and samples[("callintake_database_up", ())] == 1
