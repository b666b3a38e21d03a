"""Taking a recording in: store it once, content-addressed, and record it as a ``queued`` call.

Used by the API (``ingest_upload``) and the CLI (``ingest_file``); nothing here knows about HTTP or queues.

What ``pipeline.asr.audio.probe`` cannot read as audio (a text file named ``.wav``, zero bytes, more than
two channels, over the size or duration limit) is **refused before anything is stored**: the caller gets
the ``AudioError`` at once (the API answers 4xx) and no call row exists. What probes as audio but fails to
decode or transcribe later is a call that failed (``pipeline.process``).
"""

from __future__ import annotations

import logging
import mimetypes
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from pipeline.errors import AudioError, AudioTooLarge, Conflict, NotFound
from pipeline.settings import Settings
from pipeline.storage import audio_store, repo
from pipeline.storage.calls import CallStatus
from pipeline.storage.db import SessionFactory, session_scope

logger = logging.getLogger(__name__)

MIB = 1 << 20

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


__all__ = ["CallMetadata", "IngestResult", "ingest_file", "ingest_upload", "max_upload_bytes"]
