"""Turning a stored call into a ticket draft, in-process: decode, transcribe, extract, store.

Used by the queue jobs (``process_call``) and the CLI (``process_files``); nothing here knows about HTTP
or queues.

What probes as audio but fails to decode or transcribe later (a truncated WAV, a corrupt MP3 frame run)
is **a call that failed**: its status becomes ``failed`` with ``error_stage`` (``decode``, ``transcribe``,
``extract``, ``store``) and a readable ``error_reason``.

Call status goes ``queued`` → ``processing`` → ``transcribed`` (transcript stored) → ``needs_review``
(ticket stored), each step committed on its own so that readers see progress; a failure anywhere
records ``failed``. Re-running ``process_call`` is safe: a ticket already stored for the current rules
version is returned as it is (unless ``force``), and a stored transcript is reused for extraction.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from pipeline.errors import Conflict, PipelineError, StorageError, StorageUnavailable
from pipeline.intake import ingest_file
from pipeline.settings import Settings
from pipeline.storage import audio_store, repo
from pipeline.storage.calls import CallRow, CallStatus
from pipeline.storage.db import SessionFactory, make_engine, make_session_factory, session_scope, upgrade
from pipeline.ticket import TicketDraft
from pipeline.transcript import Transcript

logger = logging.getLogger(__name__)


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




__all__ = ["ProcessResult", "process_call", "process_files"]
