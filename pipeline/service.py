"""The product's use cases, in-process: take a recording in, turn a stored call into a ticket.

Used by the API (``ingest_upload``), the queue jobs (``process_call``) and the CLI (``process_files``);
nothing here knows about HTTP or queues.

Bad audio, by design, is split in two:

* what ``pipeline.asr.audio.probe`` cannot read as audio (a text file named ``.wav``, zero bytes, more than
  two channels, over the size or duration limit) is **refused before anything is stored**: the caller
  gets the ``AudioError`` at once (the API answers 4xx) and no call row exists;
* what probes as audio but fails to decode or transcribe later (a truncated WAV, a corrupt MP3 frame run)
  is **a call that failed**: its status becomes ``failed`` with ``error_stage`` (``decode``,
  ``transcribe``, ``extract``, ``store``) and a readable ``error_reason``.

Call status goes ``queued`` → ``processing`` → ``transcribed`` (transcript stored) → ``needs_review``
(ticket stored), each step committed on its own so that readers see progress; a failure anywhere
records ``failed``. Re-running ``process_call`` is safe: a ticket already stored for the current rules
version is returned as it is (unless ``force``), and a stored transcript is reused for extraction.
"""

from __future__ import annotations

import logging
import mimetypes
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session, sessionmaker

from pipeline.errors import (
    AudioError,
    AudioTooLarge,
    Conflict,
    NotFound,
    PipelineError,
    StorageError,
    StorageUnavailable,
)
from pipeline.settings import Settings
from pipeline.storage import audio_store, repo
from pipeline.storage.calls import CallRow, CallStatus
from pipeline.storage.db import make_engine, make_session_factory, session_scope, upgrade
from pipeline.ticket import TicketDraft, TicketStatus
from pipeline.transcript import Transcript

logger = logging.getLogger(__name__)

MIB = 1 << 20
SessionFactory = sessionmaker[Session]

#: ffprobe format names → the extension the stored file gets
_FORMAT_EXT = {
    "wav": "wav", "mp3": "mp3", "flac": "flac", "ogg": "ogg", "amr": "amr", "aac": "aac",
    "mov,mp4,m4a,3gp,3g2,mj2": "m4a", "matroska,webm": "webm", "aiff": "aiff", "au": "au",
}


@dataclass(frozen=True)
class CallMetadata:
    """What a call centre may send along with a recording. All optional."""

    caller_number: str | None = None
    line: str | None = None
    agent_id: str | None = None
    received_at: datetime | None = None
    """When the call came in; naive times are read in the hotline's time zone. Default: now."""


@dataclass(frozen=True)
class IngestResult:
    """A stored call: ``created`` is False when the same bytes were already stored."""

    call_id: str
    status: CallStatus
    created: bool
    duration_s: float | None = None


@dataclass(frozen=True)
class ProcessResult:
    """The outcome of ``process_call`` for a call that reached ``needs_review``."""

    call_id: str
    status: CallStatus
    language: str | None
    duration_s: float | None
    transcript: Transcript
    ticket: TicketDraft
    ticket_id: str
    reused: bool = False
    """True when the stored ticket was returned without running anything."""


def max_upload_bytes(settings: Settings) -> int:
    """The upload size limit in bytes."""
    return int(settings.audio.max_upload_mb * MIB)


def ingest_upload(
    settings: Settings, *, session_factory: SessionFactory, chunks: Iterable[bytes], filename: str | None,
    content_type: str | None = None, metadata: CallMetadata | None = None,
) -> IngestResult:
    """Store an uploaded recording once and record it as a ``queued`` call.

    The bytes are hashed while they are written to a temporary file (``AudioTooLarge`` past the upload
    limit, ``EmptyAudio`` for none). Bytes already stored return the existing call (``created=False``),
    also when two uploads of the same bytes race: the unique hash decides and the loser reads the
    winner's row. New bytes are probed first; what is not audio raises an ``AudioError`` and nothing is
    stored.

    Example::

        with open("call.wav", "rb") as f:
            result = ingest_upload(settings, session_factory=factory, chunks=iter_chunks(f),
                                   filename="call.wav", metadata=CallMetadata(line="12345-1"))
    """
    from pipeline.asr.audio import probe

    metadata = metadata or CallMetadata()
    display = Path(filename or "upload").name or "upload"
    pending = audio_store.receive(
        settings.data_dir, chunks, max_bytes=max_upload_bytes(settings), ext=Path(display).suffix
    )
    try:
        existing = _find_by_sha(session_factory, pending.sha256)
        if existing is not None:
            audio_store.discard(pending)
            logger.info("call %s: same audio uploaded again (%s)", existing.call_id, display)
            return existing
        try:
            info = probe(pending.path)
        except AudioError as exc:
            message = str(exc).replace(pending.path.name, display)
            raise type(exc)(message, stage="upload") from exc
        if info.duration_s > settings.audio.max_duration_s:
            raise AudioTooLarge(
                f"{display}: {info.duration_s:.0f} s is longer than the limit of "
                f"{settings.audio.max_duration_s:.0f} s", stage="upload",
            )
        ext = _FORMAT_EXT.get(info.format) or audio_store.normalise_ext(Path(display).suffix)
        relative = audio_store.keep(settings.data_dir, pending, ext=ext)
    except BaseException:
        audio_store.discard(pending)
        raise

    received_at = datetime.now(UTC)
    if metadata.received_at is not None:
        received_at = _aware(metadata.received_at, settings.timezone)
    try:
        with session_scope(session_factory) as session:
            call = repo.add_call(
                session, audio_sha256=pending.sha256, audio_path=relative, size_bytes=pending.size_bytes,
                received_at=received_at, original_filename=filename, content_type=content_type,
                caller_number=_blank_to_none(metadata.caller_number), line=_blank_to_none(metadata.line),
                agent_id=_blank_to_none(metadata.agent_id), duration_s=info.duration_s,
                channels=info.channels, sample_rate=info.sample_rate, format=info.format,
            )
            result = IngestResult(
                call_id=call.id, status=call.status, created=True, duration_s=call.duration_s
            )
    except Conflict:
        # another upload of the same bytes committed first: theirs is the call
        existing = _find_by_sha(session_factory, pending.sha256)
        if existing is None:
            raise
        logger.info("call %s: concurrent upload of the same audio (%s)", existing.call_id, display)
        return existing
    logger.info("call %s: stored %s (%d bytes, %s, %.1f s, %d ch)", result.call_id, display,
                pending.size_bytes, info.codec, info.duration_s, info.channels)
    return result


def ingest_file(
    settings: Settings, *, session_factory: SessionFactory, path: Path, metadata: CallMetadata | None = None
) -> IngestResult:
    """``ingest_upload`` for a file on disk (the CLI's way in). ``NotFound`` when the file does not exist.

    Example::

        result = ingest_file(settings, session_factory=factory, path=Path("audio_samples/zh_01.wav"))
    """
    path = Path(path)
    if not path.is_file():
        raise NotFound(f"{path}: no such file", stage="upload")
    content_type = mimetypes.guess_type(path.name)[0]
    with path.open("rb") as stream:
        return ingest_upload(
            settings, session_factory=session_factory, chunks=audio_store.iter_chunks(stream),
            filename=path.name, content_type=content_type, metadata=metadata,
        )


def process_call(
    settings: Settings, *, call_id: str, transcriber: Any, session_factory: SessionFactory,
    force: bool = False, rules: Any = None, timings: dict[str, float] | None = None,
) -> ProcessResult:
    """Turn a stored call into a stored ticket draft: decode, transcribe, extract, store.

    ``transcriber`` is a loaded ``pipeline.asr.Transcriber`` (load it once, reuse it). Without
    ``force``, a ticket already stored for this call and the current rules version is returned as it is
    (``reused=True``) and a stored transcript is reused instead of transcribing again; with ``force``
    the call is transcribed and extracted afresh (an unreviewed ticket of the same rules version is
    overwritten, a reviewed one is kept and a warning logged).

    ``timings``, when given, receives the seconds spent in each stage that ran (``decode``,
    ``transcribe``, ``extract``, ``store``), for metrics.

    Any ``PipelineError`` (and any unexpected exception) is recorded on the call as ``failed`` with its
    stage and reason, then raised again. ``StorageUnavailable`` is raised without recording (the
    database is what failed), so that a queue can retry later.

    Example::

        result = process_call(settings, call_id=cid, transcriber=load_transcriber(settings),
                              session_factory=factory)
        result.ticket.urgency   # "urgent"
    """
    from pipeline.extractors import RULES_VERSION, extract_ticket

    with session_scope(session_factory) as session:
        call = repo.get_call(session, call_id=call_id)
        if not force:
            stored = repo.find_ticket(session, call_id=call_id, rules_version=RULES_VERSION)
            if stored is not None:
                logger.info("call %s: ticket %s already drafted by rules %s", call_id, stored.id,
                            RULES_VERSION)
                return _result_from_rows(session, call, stored.id, reused=True, zone=settings.timezone)
        if call.status in (CallStatus.PROCESSING, CallStatus.FAILED):
            call.retry_count += 1  # an earlier attempt crashed or failed
        repo.set_call_status(session, call_id=call_id, status=CallStatus.PROCESSING)
        audio_path = audio_store.resolve(settings.data_dir, call.audio_path)
        received_at = call.received_at
        stored_transcript = None if force else repo.find_current_transcript(session, call_id=call_id)
        transcript = repo.transcript_from_row(stored_transcript) if stored_transcript else None
        transcript_id = stored_transcript.id if stored_transcript else None

    stage = "decode"
    mark = time.perf_counter()
    try:
        if transcript is None:
            from pipeline.asr.audio import decode

            if not audio_path.is_file():
                raise StorageError(f"the stored audio of call {call_id} is missing ({audio_path})")
            decoded = decode(audio_path, settings.audio)
            mark = _lap(timings, stage, mark)
            stage = "transcribe"
            transcript = transcriber.transcribe(decoded)
            if settings.asr.vocabulary:
                from pipeline.asr.vocabulary import correct_transcript

                transcript = correct_transcript(transcript)
            mark = _lap(timings, stage, mark)
            stage = "store"
            with session_scope(session_factory) as session:
                row = repo.add_transcript(session, call_id=call_id, transcript=transcript)
                call = repo.set_call_status(session, call_id=call_id, status=CallStatus.TRANSCRIBED,
                                            language=transcript.language)
                if not call.duration_s:
                    call.duration_s = round(decoded.duration_s, 3)
                transcript_id = row.id
            mark = _lap(timings, stage, mark)
            logger.info("call %s: transcribed (%s, %.1f s, %d segments)", call_id, transcript.language,
                        transcript.duration, len(transcript.segments))
        stage = "extract"
        local_time = received_at.astimezone(ZoneInfo(settings.timezone))
        draft = extract_ticket(transcript, received_at=local_time, rules=rules)
        mark = _lap(timings, stage, mark)
        stage = "store"
        with session_scope(session_factory) as session:
            try:
                ticket_id = repo.save_ticket(
                    session, call_id=call_id, draft=draft, transcript_id=transcript_id
                ).id
            except Conflict as exc:
                # a reviewed ticket of this rules version stays as the operator left it
                kept = repo.find_ticket(session, call_id=call_id, rules_version=draft.rules_version)
                if kept is None:
                    raise
                logger.warning("call %s: %s", call_id, exc)
                ticket_id = kept.id
            call = repo.set_call_status(session, call_id=call_id, status=CallStatus.NEEDS_REVIEW,
                                        language=transcript.language)
            result = ProcessResult(
                call_id=call_id, status=call.status, language=transcript.language, duration_s=call.duration_s,
                transcript=transcript, ticket=draft, ticket_id=ticket_id,
            )
        _lap(timings, stage, mark)
    except StorageUnavailable:
        raise
    except PipelineError as exc:
        _record_failure(session_factory, call_id, stage, str(exc))
        raise
    except Exception as exc:
        logger.exception("call %s: unexpected failure in stage %s", call_id, stage)
        _record_failure(session_factory, call_id, stage, f"internal error: {type(exc).__name__}: {exc}")
        raise
    logger.info("call %s: ticket %s drafted (%s, %s, %s)", call_id, result.ticket_id, draft.category,
                draft.urgency, draft.district or "no district")
    return result


def _lap(timings: dict[str, float] | None, stage: str, since: float) -> float:
    now = time.perf_counter()
    if timings is not None:
        timings[stage] = timings.get(stage, 0.0) + (now - since)
    return now


def _record_failure(session_factory: SessionFactory, call_id: str, stage: str, reason: str) -> None:
    logger.warning("call %s: failed at %s: %s", call_id, stage, reason)
    try:
        with session_scope(session_factory) as session:
            repo.set_call_status(session, call_id=call_id, status=CallStatus.FAILED, error_reason=reason,
                                 error_stage=stage)
    except PipelineError:
        logger.exception("call %s: could not record the failure", call_id)


def _result_from_rows(
    session: Session, call: CallRow, ticket_id: str, *, reused: bool, zone: str
) -> ProcessResult:
    ticket = repo.get_ticket(session, ticket_id=ticket_id)
    row = repo.find_current_transcript(session, call_id=call.id)
    transcript = repo.transcript_from_row(row) if row else Transcript(language=ticket.language, segments=())
    return ProcessResult(
        call_id=call.id, status=call.status, language=call.language or transcript.language,
        duration_s=call.duration_s, transcript=transcript, ticket=repo.draft_from_row(ticket, zone=ZoneInfo(zone)),
        ticket_id=ticket.id, reused=reused,
    )


def process_files(settings: Settings, paths: Sequence[Path]) -> Iterator[dict[str, Any]]:
    """Run recordings through the whole pipeline in-process, storing into the settings' database.

    Yields one dict per path, in order: ``{"file", "call_id", "language", "duration_s", "transcript":
    {"text", "segments": [{"start", "end", "speaker", "text"}]}, "ticket": {...}}``, or ``{"file",
    "error", "call_id"?}`` for a file that failed (the others still run). The speech model is loaded
    once, when the first file needs it. A file stored before is transcribed and extracted again (so
    engine and rule changes show) on the same call row.

    Example::

        for result in process_files(Settings(), [Path("audio_samples/zh_01.wav")]):
            print(result["ticket"]["category"])
    """
    upgrade(settings)
    engine = make_engine(settings)
    factory = make_session_factory(engine)
    transcriber: Any = None
    load_error: PipelineError | None = None
    try:
        for path in paths:
            call_id: str | None = None
            try:
                call_id = ingest_file(settings, session_factory=factory, path=Path(path)).call_id
                if transcriber is None:
                    if load_error is not None:
                        raise load_error
                    try:
                        from pipeline.asr import load_transcriber

                        transcriber = load_transcriber(settings)
                    except PipelineError as exc:
                        load_error = exc
                        raise
                result = process_call(settings, call_id=call_id, transcriber=transcriber,
                                      session_factory=factory, force=True)
                yield {
                    "file": str(path),
                    "call_id": result.call_id,
                    "language": result.language,
                    "duration_s": result.duration_s,
                    "transcript": {
                        "text": result.transcript.text,
                        "segments": [
                            {"start": round(s.start, 3), "end": round(s.end, 3), "speaker": s.speaker,
                             "text": s.text}
                            for s in result.transcript.segments
                        ],
                    },
                    "ticket": result.ticket.to_dict(),
                }
            except Exception as exc:  # one bad file must not stop the batch
                if not isinstance(exc, PipelineError):
                    logger.exception("%s: unexpected failure", path)
                message = str(exc) if isinstance(exc, PipelineError) else f"internal error: {exc}"
                out: dict[str, Any] = {"file": str(path), "error": message}
                if call_id:
                    out["call_id"] = call_id
                yield out
    finally:
        engine.dispose()


def _find_by_sha(session_factory: SessionFactory, sha256: str) -> IngestResult | None:
    with session_scope(session_factory) as session:
        call = repo.find_call_by_sha256(session, sha256=sha256)
        if call is None:
            return None
        return IngestResult(call_id=call.id, status=call.status, created=False, duration_s=call.duration_s)


def _aware(value: datetime, zone: str) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=ZoneInfo(zone))


def _blank_to_none(value: str | None) -> str | None:
    value = (value or "").strip()
    return value or None


__all__ = [
    "CallMetadata", "IngestResult", "ProcessResult", "TicketStatus", "ingest_file", "ingest_upload",
    "max_upload_bytes", "process_call", "process_files",
]
