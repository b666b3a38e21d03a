"""Shared fixtures: real databases (SQLite file, a throw-away PostgreSQL database), a private Redis
database number, and settings that point at them. Nothing here stands in for a real part."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.settings import Settings

PG_ADMIN_URL = os.environ.get("CALLINTAKE_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_TEST_URL = os.environ.get("CALLINTAKE_TEST_REDIS", "redis://127.0.0.1:6379")
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def pg_database_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, dropped at the end."""
    import psycopg

    name = f"callintake_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database: a SQLite file, or the session's PostgreSQL database emptied."""
    from sqlalchemy import text

    from pipeline.storage.db import make_engine, upgrade

    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'db' / 'callintake.db'}"
    else:
        url = request.getfixturevalue("pg_database_url")
    settings = Settings(data_dir=tmp_path / "data", database_url=url)
    upgrade(settings)
    if request.param == "postgres":
        engine = make_engine(settings)
        with engine.begin() as conn:
            conn.execute(text("TRUNCATE tickets, transcripts, calls CASCADE"))
        engine.dispose()
    return url


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    """Settings on a private data directory and a migrated database (SQLite and PostgreSQL)."""
    return Settings(data_dir=tmp_path / "data", database_url=database_url, queue_mode="inline")


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A Redis database number no other test run is using, flushed before and after."""
    import redis

    admin = redis.Redis.from_url(f"{REDIS_TEST_URL}/0")
    token = uuid.uuid4().hex
    for db in range(1, 16):
        if admin.set(f"callintake:test-lock:{db}", token, nx=True, ex=3600):
            break
    else:
        pytest.fail("no free Redis database number (1-15) for tests")
    url = f"{REDIS_TEST_URL}/{db}"
    conn = redis.Redis.from_url(url)
    conn.flushdb()
    try:
        yield url
    finally:
        conn.flushdb()
        if admin.get(f"callintake:test-lock:{db}") == token.encode():
            admin.delete(f"callintake:test-lock:{db}")


@pytest.fixture(scope="session")
def sample_calls() -> list[Path]:
    """The project's own sample recordings (audio_samples/), Mandarin and English."""
    found = sorted(p for p in (ROOT / "audio_samples").iterdir() if p.suffix in {".wav", ".mp3"})
    if not found:
        pytest.fail("audio_samples/ holds no recordings")
    return found


def make_tone_wav(path: Path, *, seconds: float = 2.0, channels: int = 2, freq: int = 440) -> Path:
    """A real telephone-style WAV (8 kHz µ-law) of a tone, made with sox; another ``freq``, other bytes."""
    import subprocess

    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["sox", "-n", "-r", "8000", "-c", str(channels), "-e", "u-law", str(path), "synth", str(seconds),
         "sine", str(freq)],
        check=True, capture_output=True,
    )
    return path


def make_truncated_wav(path: Path) -> Path:
    """A WAV whose header promises 20 s but whose data stops after a few milliseconds."""
    full = make_tone_wav(path.with_name("full-" + path.name), seconds=20.0, channels=1, freq=523)
    path.write_bytes(full.read_bytes()[:44 + 400])
    return path


@pytest.fixture(scope="session")
def model_cache_dir() -> Path:
    """One place for the assembled speech model across tests (override with CALLINTAKE_TEST_MODEL_CACHE)."""
    return Path(os.environ.get("CALLINTAKE_TEST_MODEL_CACHE", ROOT / ".cache" / "models"))


def service_env(settings: Settings, model_cache: Path) -> dict[str, str]:
    """Environment for a ``callintake`` subprocess that uses the same database, data dir and Redis."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLINTAKE_")}
    env.update({
        "CALLINTAKE_DATA_DIR": str(settings.data_dir),
        "CALLINTAKE_DATABASE_URL": settings.resolved_database_url,
        "CALLINTAKE_REDIS_URL": settings.redis_url,
        "CALLINTAKE_QUEUE_MODE": settings.queue_mode,
        "CALLINTAKE_ASR__MODEL_CACHE_DIR": str(model_cache),
        "PYTHONUNBUFFERED": "1",
    })
    return env


# ------------------------------------------------------------------------------------------- API keys
KEY_ROLES = ("uploader", "operator", "supervisor")


def create_api_keys(settings: Settings, *, label: str = "test") -> dict[str, str]:
    """One fresh API key per role in the settings' database: ``{"uploader": "ck_…", ...}``."""
    from pipeline import keys
    from pipeline.storage.db import make_engine, make_session_factory, session_scope

    engine = make_engine(settings)
    try:
        with session_scope(make_session_factory(engine)) as session:
            return {role: keys.create_key(session, role=role, name=f"{label} {role}")[1] for role in KEY_ROLES}
    finally:
        engine.dispose()


def bearer(key: str) -> dict[str, str]:
    """The header that presents an API key."""
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def api_keys(settings: Settings) -> dict[str, str]:
    """A real key of each role (``uploader``, ``operator``, ``supervisor``) in the test's database."""
    return create_api_keys(settings)


@pytest.fixture
def auth(api_keys: dict[str, str]) -> dict[str, dict[str, str]]:
    """``auth["operator"]`` is the ``Authorization`` header of the operator key, and so on."""
    return {role: bearer(key) for role, key in api_keys.items()}
