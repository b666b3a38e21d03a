"""The in-process use cases on real audio files, a real SQLite file and a real PostgreSQL database."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import make_tone_wav, make_truncated_wav

from pipeline.errors import AudioTooLarge, EmptyAudio, NotFound, UnsupportedAudio
from pipeline.intake import CallMetadata, ingest_file, ingest_upload
from pipeline.settings import Settings
from pipeline.storage import repo
from pipeline.storage.calls import CallStatus
from pipeline.storage.db import make_engine, make_session_factory, session_scope


@pytest.fixture
def factory(settings: Settings):
    engine = make_engine(settings)
    yield make_session_factory(engine)
    engine.dispose()


def _stored_files(settings: Settings) -> list[Path]:
    return [p for p in (settings.data_dir / "audio").rglob("*") if p.is_file()] \
        if (settings.data_dir / "audio").exists() else []


def _temp_files(settings: Settings) -> list[Path]:
    return list((settings.data_dir / "tmp").glob("*")) if (settings.data_dir / "tmp").exists() else []


def test_ingest_stores_audio_once_with_metadata(settings: Settings, factory, tmp_path: Path) -> None:
    wav = make_tone_wav(tmp_path / "in" / "hotline.wav")
    meta = CallMetadata(caller_number=" 13800138000 ", line="12345", agent_id="",
                        received_at=datetime(2026, 5, 1, 8, 0))
    first = ingest_file(settings, session_factory=factory, path=wav, metadata=meta)
    assert first.created and first.status is CallStatus.QUEUED
    again = ingest_file(settings, session_factory=factory, path=wav)
    assert (again.call_id, again.created) == (first.call_id, False)
    with session_scope(factory) as session:
        call = repo.get_call(session, call_id=first.call_id)
        assert call.received_at == datetime(2026, 5, 1, 0, 0, tzinfo=UTC)  # 08:00 in Beijing
        assert (call.caller_number, call.line, call.agent_id) == ("13800138000", "12345", None)
        assert (call.channels, call.sample_rate, call.format) == (2, 8000, "wav")
        assert call.duration_s == pytest.approx(2.0, abs=0.05)
        assert call.original_filename == "hotline.wav"
        stored = settings.data_dir / call.audio_path
        assert stored.read_bytes() == wav.read_bytes()
        sha = call.audio_sha256
        assert call.audio_path == f"audio/{sha[:2]}/{sha[2:4]}/{sha}.wav"
    assert _stored_files(settings) == [stored]
    assert _temp_files(settings) == []


def test_concurrent_uploads_of_the_same_bytes_make_one_call(settings: Settings, factory, tmp_path) -> None:
    payload = make_tone_wav(tmp_path / "race.wav", freq=700).read_bytes()
    results, errors = [], []
    barrier = threading.Barrier(6)

    def upload() -> None:
        try:
            barrier.wait()
            results.append(
                ingest_upload(settings, session_factory=factory, chunks=[payload], filename="r.wav")
            )
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=upload) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len({r.call_id for r in results}) == 1
    assert sum(r.created for r in results) == 1
    with session_scope(factory) as session:
        assert repo.list_calls(session)[1] == 1
    assert len(_stored_files(settings)) == 1


@pytest.mark.parametrize("content,error", [
    (b"", EmptyAudio),
    (b"Dear hotline, this is a letter and not a recording.\n" * 40, UnsupportedAudio),
])
def test_non_audio_is_refused_and_nothing_is_stored(settings: Settings, factory, content, error) -> None:
    with pytest.raises(error) as info:
        ingest_upload(settings, session_factory=factory, chunks=[content], filename="letter.wav")
    assert "upload-" not in str(info.value)  # the message names the upload, not a temporary file
    with session_scope(factory) as session:
        assert repo.list_calls(session)[1] == 0
    assert _stored_files(settings) == []
    assert _temp_files(settings) == []


def test_over_the_size_limit_is_refused(settings: Settings, factory, tmp_path: Path) -> None:
    small = settings.model_copy(update={"audio": settings.audio.model_copy(update={"max_upload_mb": 0.01})})
    wav = make_tone_wav(tmp_path / "long.wav", seconds=5.0)
    with pytest.raises(AudioTooLarge):
        ingest_file(small, session_factory=factory, path=wav)
    assert _stored_files(settings) == [] and _temp_files(settings) == []


def test_over_the_duration_limit_is_refused(settings: Settings, factory, tmp_path: Path) -> None:
    short = settings.model_copy(update={"audio": settings.audio.model_copy(update={"max_duration_s": 1.0})})
    with pytest.raises(AudioTooLarge):
        ingest_file(short, session_factory=factory, path=make_tone_wav(tmp_path / "x.wav", seconds=3.0))


def test_missing_file_is_not_found(settings: Settings, factory, tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        ingest_file(settings, session_factory=factory, path=tmp_path / "nowhere.wav")


def test_truncated_wav_is_stored_for_the_worker_to_judge(settings: Settings, factory, tmp_path: Path) -> None:
    result = ingest_file(settings, session_factory=factory, path=make_truncated_wav(tmp_path / "cut.wav"))
    assert result.created and result.status is CallStatus.QUEUED


# --- with the real speech model -------------------------------------------------------------------

@pytest.fixture(scope="module")
def transcriber(model_cache_dir: Path):
    from pipeline.asr import load_transcriber

    return load_transcriber(Settings(asr={"model_cache_dir": model_cache_dir}))


@pytest.mark.model
def test_process_call_drafts_a_ticket_once(settings: Settings, factory, transcriber, sample_calls) -> None:
    from pipeline.extractors import RULES_VERSION
    from pipeline.process import process_call

    sample = next(p for p in sample_calls if p.name.startswith("en_"))
    call_id = ingest_file(settings, session_factory=factory, path=sample).call_id
    result = process_call(settings, call_id=call_id, transcriber=transcriber, session_factory=factory)
    assert result.status is CallStatus.NEEDS_REVIEW and not result.reused
    assert result.language == "en" and result.transcript.text
    assert result.ticket.rules_version == RULES_VERSION
    with session_scope(factory) as session:
        call = repo.get_call(session, call_id=call_id)
        assert (call.status, call.language, call.retry_count) == (CallStatus.NEEDS_REVIEW, "en", 0)
        stored = repo.get_ticket(session, ticket_id=result.ticket_id)
        assert repo.draft_from_row(stored, zone=result.ticket.due_at.tzinfo).to_dict() == result.ticket.to_dict()
        assert repo.find_current_transcript(session, call_id=call_id).text == result.transcript.text

    again = process_call(settings, call_id=call_id, transcriber=transcriber, session_factory=factory)
    assert again.reused and again.ticket_id == result.ticket_id
    assert again.ticket.to_dict() == result.ticket.to_dict()
    with session_scope(factory) as session:
        assert repo.list_tickets(session, call_id=call_id)[1] == 1


@pytest.mark.model
def test_truncated_audio_fails_at_decode_with_a_reason(settings: Settings, factory, transcriber,
                                                      tmp_path: Path) -> None:
    from pipeline.errors import AudioError
    from pipeline.process import process_call

    call_id = ingest_file(settings, session_factory=factory, path=make_truncated_wav(tmp_path / "t.wav")).call_id
    with pytest.raises(AudioError):
        process_call(settings, call_id=call_id, transcriber=transcriber, session_factory=factory)
    with session_scope(factory) as session:
        call = repo.get_call(session, call_id=call_id)
        assert (call.status, call.error_stage) == (CallStatus.FAILED, "decode")
        assert "decode" in call.error_reason or "truncated" in call.error_reason
    with pytest.raises(AudioError):  # a second attempt counts as a retry and fails the same way
        process_call(settings, call_id=call_id, transcriber=transcriber, session_factory=factory)
    with session_scope(factory) as session:
        assert repo.get_call(session, call_id=call_id).retry_count == 1


@pytest.mark.model
def test_process_files_prints_the_contract_and_goes_on_after_a_bad_file(
    tmp_path: Path, model_cache_dir: Path, sample_calls
) -> None:
    from pipeline.process import process_files
    from pipeline.ticket import FIELDS

    settings = Settings(data_dir=tmp_path / "data", asr={"model_cache_dir": model_cache_dir})
    sample = next(p for p in sample_calls if p.name.startswith("zh_"))
    junk = tmp_path / "junk.wav"
    junk.write_text("no sound in here\n" * 20)
    results = list(process_files(settings, [junk, sample, sample]))
    assert [r["file"] for r in results] == [str(junk), str(sample), str(sample)]
    assert set(results[0]) == {"file", "error"} and "junk.wav" in results[0]["error"]
    first, second = results[1], results[2]
    assert set(first) == {"file", "call_id", "language", "duration_s", "transcript", "ticket"}
    assert first["call_id"] == second["call_id"]  # the same call row, processed again
    assert first["language"] == "zh" and first["duration_s"] > 1
    assert set(first["transcript"]) == {"text", "segments"}
    assert all(set(s) == {"start", "end", "speaker", "text"} for s in first["transcript"]["segments"])
    assert first["transcript"]["text"] == " ".join(s["text"] for s in first["transcript"]["segments"])
    assert set(FIELDS) <= set(first["ticket"])
    assert (settings.data_dir / "callintake.db").is_file()
