"""Repository and migrations on real SQLite files and a real PostgreSQL database."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import exc as sa_exc

from pipeline.errors import Conflict, NotFound, StorageUnavailable
from pipeline.settings import Settings
from pipeline.storage import repo
from pipeline.storage.base import Base
from pipeline.storage.calls import CallStatus
from pipeline.storage.db import (
    check_database,
    current_heads,
    make_engine,
    make_session_factory,
    script_heads,
    session_scope,
    upgrade,
)
from pipeline.ticket import Evidence, TicketDraft, TicketStatus
from pipeline.transcript import Segment, Transcript, Word

SHANGHAI = timezone(timedelta(hours=8))


@pytest.fixture
def factory(settings: Settings):
    engine = make_engine(settings)
    yield make_session_factory(engine)
    engine.dispose()


def _sha(seed: str) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()


def _add_call(session, seed: str, **extra):
    sha = _sha(seed)
    return repo.add_call(
        session, audio_sha256=sha, audio_path=f"audio/{sha[:2]}/{sha[2:4]}/{sha}.wav", size_bytes=1234,
        received_at=extra.pop("received_at", datetime(2026, 3, 4, 9, 30, tzinfo=SHANGHAI)), **extra,
    )


def _draft(rules_version: str = "r1", **overrides) -> TicketDraft:
    fields = dict(
        request_type="help", category="utilities.water", urgency="urgent",
        due_at=datetime(2026, 3, 5, 1, 30, tzinfo=UTC), department="北京市自来水集团",
        summary="丰台区新村街道停水两天，家中有老人", language="zh", district="丰台区", street="新村街道",
        callback_number="13800001111", caller_surname="孙", vulnerable=("elderly",), amounts=(250.0,),
        evidence={"district": (Evidence("gazetteer.district", 4, 7, "丰台区", 1.5, 2.0, "caller"),)},
        confidence={"district": 0.95}, needs_review=("address",), rules_version=rules_version,
    )
    fields.update(overrides)
    return TicketDraft(**fields)


def test_migrations_match_the_models(settings: Settings) -> None:
    engine = make_engine(settings)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert diff == []


def test_upgrade_twice_is_harmless(settings: Settings) -> None:
    upgrade(settings)
    upgrade(settings)
    engine = make_engine(settings)
    assert current_heads(engine) == script_heads()
    engine.dispose()


def test_call_round_trip_keeps_utc_and_metadata(factory) -> None:
    with session_scope(factory) as session:
        call = _add_call(session, "a", caller_number="13912345678", line="12345-3", agent_id="A017",
                         original_filename="来电.wav", content_type="audio/wav")
        call_id = call.id
    with session_scope(factory) as session:
        got = repo.get_call(session, call_id=call_id)
        assert got.received_at == datetime(2026, 3, 4, 1, 30, tzinfo=UTC)
        assert got.received_at.tzinfo is not None
        assert got.status is CallStatus.QUEUED
        assert (got.caller_number, got.line, got.agent_id) == ("13912345678", "12345-3", "A017")
        assert got.original_filename == "来电.wav"
        assert repo.find_call_by_sha256(session, sha256=_sha("a")).id == call_id
        assert repo.find_call_by_sha256(session, sha256=_sha("zzz")) is None


def test_same_audio_twice_violates_the_unique_hash(factory) -> None:
    with session_scope(factory) as session:
        _add_call(session, "same")
    session = factory()
    try:
        with pytest.raises(sa_exc.IntegrityError):
            _add_call(session, "same")
    finally:
        session.rollback()
        session.close()


def test_get_missing_rows_raise_not_found(factory) -> None:
    with session_scope(factory) as session:
        with pytest.raises(NotFound):
            repo.get_call(session, call_id="nope")
        with pytest.raises(NotFound):
            repo.get_ticket(session, ticket_id="nope")


def test_status_changes_record_and_clear_failures(factory) -> None:
    with session_scope(factory) as session:
        call_id = _add_call(session, "s").id
    with session_scope(factory) as session:
        repo.set_call_status(session, call_id=call_id, status=CallStatus.FAILED, error_reason="no samples",
                             error_stage="decode")
    with session_scope(factory) as session:
        call = repo.get_call(session, call_id=call_id)
        assert call.status is CallStatus.FAILED
        assert (call.error_stage, call.error_reason) == ("decode", "no samples")
        repo.set_call_status(session, call_id=call_id, status=CallStatus.PROCESSING)
    with session_scope(factory) as session:
        call = repo.get_call(session, call_id=call_id)
        assert (call.status, call.error_stage, call.error_reason) == (CallStatus.PROCESSING, None, None)


def test_latest_transcript_is_current_and_round_trips(factory) -> None:
    first = Transcript.from_segments("zh", [Segment(0.0, 2.0, "agent", "您好，这里是热线")], duration=5.0,
                                     options={"engine": "faster-whisper", "beam_size": 5})
    second = Transcript.from_segments(
        "zh",
        [Segment(0.0, 2.0, "agent", "您好，这里是热线"),
         Segment(2.5, 4.0, "caller", "我们楼停水了", 0.8, (Word(2.5, 3.0, "我们", 0.9),))],
        duration=5.0, options={"engine": "faster-whisper", "beam_size": 8},
    )
    with session_scope(factory) as session:
        call_id = _add_call(session, "t").id
        assert repo.find_current_transcript(session, call_id=call_id) is None
        repo.add_transcript(session, call_id=call_id, transcript=first)
    with session_scope(factory) as session:
        repo.add_transcript(session, call_id=call_id, transcript=second)
    with session_scope(factory) as session:
        row = repo.find_current_transcript(session, call_id=call_id)
        assert row.options["beam_size"] == 8
        assert row.text == "您好，这里是热线 我们楼停水了"
        assert repo.transcript_from_row(row) == second


def test_ticket_round_trip_and_one_per_rules_version(factory) -> None:
    draft = _draft()
    with session_scope(factory) as session:
        call_id = _add_call(session, "k").id
        ticket_id = repo.save_ticket(session, call_id=call_id, draft=draft).id
    with session_scope(factory) as session:
        row = repo.get_ticket(session, ticket_id=ticket_id)
        assert row.status is TicketStatus.NEEDS_REVIEW
        assert repo.draft_from_row(row).to_dict() == draft.to_dict()
        assert row.evidence["district"][0]["text"] == "丰台区"
    # same rules version again: the unreviewed ticket is overwritten, not duplicated
    with session_scope(factory) as session:
        again = repo.save_ticket(session, call_id=call_id, draft=_draft(urgency="emergency"))
        assert again.id == ticket_id
    with session_scope(factory) as session:
        assert repo.get_ticket(session, ticket_id=ticket_id).urgency == "emergency"
        newer = repo.save_ticket(session, call_id=call_id, draft=_draft(rules_version="r2"))
        assert newer.id != ticket_id
    with session_scope(factory) as session:
        assert repo.find_current_ticket(session, call_id=call_id).rules_version == "r2"
        repo.get_ticket(session, ticket_id=ticket_id).status = TicketStatus.APPROVED
    with session_scope(factory) as session, pytest.raises(Conflict):
        repo.save_ticket(session, call_id=call_id, draft=_draft())


def test_list_tickets_filters_and_pages(factory) -> None:
    with session_scope(factory) as session:
        for i in range(5):
            call_id = _add_call(session, f"list{i}").id
            repo.save_ticket(session, call_id=call_id, draft=_draft(
                urgency="emergency" if i % 2 else "normal", district="朝阳区" if i < 3 else "海淀区",
                category="housing.repair" if i == 4 else "utilities.water",
            ))
    with session_scope(factory) as session:
        assert repo.list_tickets(session)[1] == 5
        assert repo.list_tickets(session, urgency="emergency")[1] == 2
        assert repo.list_tickets(session, district="朝阳区")[1] == 3
        assert repo.list_tickets(session, category="housing.")[1] == 1
        assert repo.list_tickets(session, category="housing")[1] == 0
        assert repo.list_tickets(session, status=TicketStatus.APPROVED)[1] == 0
        page, total = repo.list_tickets(session, limit=2, offset=4)
        assert (len(page), total) == (1, 5)
        calls, total = repo.list_calls(session, status=CallStatus.QUEUED, limit=3)
        assert (len(calls), total) == (3, 5)


def test_unreachable_database_is_storage_unavailable(tmp_path) -> None:
    settings = Settings(data_dir=tmp_path, database_url="postgresql+psycopg://postgres@127.0.0.1:1/none")
    engine = make_engine(settings)
    with pytest.raises(StorageUnavailable):
        check_database(engine)
    with pytest.raises(StorageUnavailable), session_scope(make_session_factory(engine)) as session:
        repo.get_call(session, call_id="x")
    with pytest.raises(StorageUnavailable):
        upgrade(settings)


def _upgrade_concurrently(settings: Settings, workers: int = 4) -> list[BaseException]:
    import threading

    errors: list[BaseException] = []
    barrier = threading.Barrier(workers)

    def run() -> None:
        try:
            barrier.wait()
            upgrade(settings)
        except BaseException as exc:  # surfaced by the caller
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def test_services_starting_together_migrate_an_empty_sqlite_file_once(tmp_path) -> None:
    settings = Settings(data_dir=tmp_path / "fresh")
    assert _upgrade_concurrently(settings) == []
    engine = make_engine(settings)
    assert current_heads(engine) == script_heads()
    engine.dispose()


@pytest.mark.postgres
def test_services_starting_together_migrate_an_empty_postgres_database_once(tmp_path) -> None:
    import uuid

    import psycopg
    from conftest import PG_ADMIN_URL

    name = f"callintake_test_{uuid.uuid4().hex[:10]}_m"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
        settings = Settings(data_dir=tmp_path, database_url=f"{base}/{name}")
        assert _upgrade_concurrently(settings) == []
        engine = make_engine(settings)
        assert current_heads(engine) == script_heads()
        engine.dispose()
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_the_migrations_have_one_head() -> None:
    # branches made side by side must be joined by a merge revision before they ship
    assert len(script_heads()) == 1
