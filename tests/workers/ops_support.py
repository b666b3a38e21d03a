"""Helpers and fixtures for the queue, worker, reconcile and reprocess tests (a test module imports the
fixtures it uses): settings on a private Redis database, calls stored with a transcript (no speech model
is needed to draft their tickets), real worker processes."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
from conftest import service_env
from sqlalchemy import text

from pipeline.settings import Settings
from pipeline.storage import repo
from pipeline.storage.calls import CallStatus
from pipeline.storage.db import is_sqlite, make_engine, make_session_factory, session_scope
from pipeline.transcript import Segment, Transcript

#: short caller turns whose tickets differ in category, urgency, place and number
CALLER_TURNS = [
    "我们小区从昨天开始停水了，我是朝阳区和平街街道的，电话13911023456，我姓王",
    "楼道里有很大的煤气味，怕是漏气了，我在海淀区中关村街道，电话一三八零一二三四五六七",
    "隔壁装修噪音太大，早上七点就开始砸墙，我住在东城区东花市街道",
    "小区门口马路上有个大坑，晚上骑车特别危险，丰台区方庄这边，我姓李",
    "公司拖欠工资三个月了，一共两万多块钱，电话15001234567",
    "家里暖气一点都不热，屋里才十几度，家里有个七十多岁的老人，西城区金融街街道",
    "路灯坏了好几盏，晚上黑漆漆的，通州区永顺镇，我姓张",
    "楼下饭店油烟特别大，窗户都不敢开，昌平区回龙观",
    "there's a huge pothole outside 12 Maple Avenue and someone got hurt, call me at 2025550123",
    "our heating has been off for three days in the whole building, my name is Sarah Collins",
]


def make_transcript(i: int) -> Transcript:
    """A two-party call: the agent's greeting, then one of ``CALLER_TURNS`` (by ``i``)."""
    caller = CALLER_TURNS[i % len(CALLER_TURNS)]
    english = caller.isascii()
    greeting = "Hotline, how can I help you?" if english else "您好，12345热线，请讲。"
    return Transcript(language="en" if english else "zh", segments=(
        Segment(0.0, 2.0, "agent", greeting),
        Segment(2.5, 12.0, "caller", caller),
    ), duration=12.0)


def add_transcribed_call(factory, i: int, *, received_at: datetime | None = None,
                         status: CallStatus = CallStatus.TRANSCRIBED, line: str | None = None) -> str:
    """Store a call with a transcript (its audio is never needed) and return its id."""
    received_at = received_at or datetime(2026, 3, 2, 1, 0, tzinfo=UTC) + timedelta(minutes=i)
    with session_scope(factory) as session:
        call = repo.add_call(session, audio_sha256=uuid.uuid4().hex * 2, audio_path=f"audio/none/{i}.wav",
                             size_bytes=1, received_at=received_at, duration_s=12.0, line=line)
        transcript = make_transcript(i)
        repo.add_transcript(session, call_id=call.id, transcript=transcript)
        repo.set_call_status(session, call_id=call.id, status=status, language=transcript.language)
        return call.id


@pytest.fixture(name="ops_settings")
def ops_settings_fixture(settings: Settings, redis_url: str, model_cache_dir: Path) -> Iterator[Settings]:
    """Settings for queue work: the private Redis database, short leases, no periodic reconcile."""
    if not is_sqlite(settings.resolved_database_url):
        engine = make_engine(settings)
        with engine.begin() as conn:
            conn.execute(text("TRUNCATE reprocess_runs CASCADE"))
        engine.dispose()
    redis.Redis.from_url(redis_url).flushdb()
    yield settings.model_copy(update={
        "queue_mode": "rq", "redis_url": redis_url,
        "asr": settings.asr.model_copy(update={"model_cache_dir": model_cache_dir}),
        "ops": settings.ops.model_copy(update={"lease_ttl_s": 3.0, "reconcile_every_s": 0.0,
                                               "reconcile_grace_s": 0.0}),
    })
    redis.Redis.from_url(redis_url).flushdb()


@pytest.fixture(name="factory")
def factory_fixture(ops_settings: Settings):
    engine = make_engine(ops_settings)
    yield make_session_factory(engine)
    engine.dispose()


def ops_env(settings: Settings, model_cache: Path, **extra: str) -> dict[str, str]:
    """Environment for a ``callintake`` subprocess on these settings, ops group included."""
    env = service_env(settings, model_cache)
    env.update({
        "CALLINTAKE_OPS__LEASE_TTL_S": str(settings.ops.lease_ttl_s),
        "CALLINTAKE_OPS__RECONCILE_EVERY_S": str(settings.ops.reconcile_every_s),
        "CALLINTAKE_OPS__RECONCILE_GRACE_S": str(settings.ops.reconcile_grace_s),
        "CALLINTAKE_OPS__SHUTDOWN_GRACE_S": str(settings.ops.shutdown_grace_s),
    })
    env.update(extra)
    return env


def start_worker(env: dict[str, str], cwd: Path, *args: str, log_name: str = "worker.log") -> subprocess.Popen:
    """``callintake -v worker ARGS`` as a real process, its output in ``cwd/log_name``."""
    log = (cwd / log_name).open("ab")
    return subprocess.Popen([sys.executable, "-m", "pipeline.cli", "-v", "worker", *args], env=env, stdout=log,
                            stderr=subprocess.STDOUT, cwd=cwd)


def run_cli(env: dict[str, str], cwd: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline.cli", *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)


def wait_for(predicate, *, timeout: float, interval: float = 0.2, what: str = "condition"):
    """Poll ``predicate`` until it returns something true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def stop(process: subprocess.Popen, *, timeout: float = 60) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
