"""Stored calls and tickets for dispatch and follow-up tests, made through the product's own functions:
a real WAV recording ingested like an upload, a transcript, a ticket draft, and the review status."""

from __future__ import annotations

import math
import struct
import wave
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pipeline.intake import CallMetadata, ingest_file
from pipeline.settings import Settings
from pipeline.storage import repo
from pipeline.storage.db import session_scope
from pipeline.ticket import Evidence, TicketDraft, TicketStatus
from pipeline.transcript import Segment, Transcript

TRANSCRIPT = (
    ("agent", "您好，12345热线，请讲。"),
    ("caller", "我是朝阳区和平街街道煤炭科技苑社区的，楼里暖气不热，家里有老人，我姓杨。"),
)


def write_wav(path: Path, *, seconds: float = 1.0, freq: float = 440.0) -> Path:
    """A telephone-style 8 kHz 16-bit mono WAV of a tone; another ``freq`` gives other bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rate = 8000
    frames = b"".join(
        struct.pack("<h", int(8000 * math.sin(2 * math.pi * freq * n / rate))) for n in range(int(rate * seconds))
    )
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(frames)
    return path


def make_ticket(
    settings: Settings, factory, tmp_path: Path, *, seed: int = 0, status: TicketStatus = TicketStatus.APPROVED,
    department: str = "朝阳区城市管理委员会", urgency: str = "urgent", received_at: datetime | None = None,
    due_in: timedelta = timedelta(hours=24), summary: str = "朝阳区和平街街道煤炭科技苑社区暖气不热，家中有老人",
) -> tuple[str, str]:
    """Ingest a fresh recording and store an ``status`` ticket for it; returns ``(call_id, ticket_id)``."""
    received_at = received_at or datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
    audio = write_wav(tmp_path / "calls" / f"call-{seed}.wav", freq=300.0 + 7 * seed)
    call = ingest_file(settings, session_factory=factory, path=audio,
                       metadata=CallMetadata(line="12345-1", received_at=received_at))
    segments, start = [], 0.0
    for speaker, text in TRANSCRIPT:
        segments.append(Segment(start=start, end=start + 3.0, speaker=speaker, text=text))
        start += 3.0
    transcript = Transcript(language="zh", segments=tuple(segments), duration=start, options={"engine": "test"})
    draft = TicketDraft(
        request_type="help", category="utilities.heating", urgency=urgency, due_at=received_at + due_in,
        department=department, summary=summary, language="zh", district="朝阳区", street="和平街街道",
        community="煤炭科技苑社区", caller_surname="杨", vulnerable=("elderly",),
        evidence={"district": (Evidence("gazetteer.district", 18, 21, "朝阳区", 3.2, 3.6, "caller"),)},
        rules_version="test-rules",
    )
    with session_scope(factory) as session:
        row = repo.add_transcript(session, call_id=call.call_id, transcript=transcript)
        ticket = repo.save_ticket(session, call_id=call.call_id, draft=draft, transcript_id=row.id)
        ticket.status = status
        ticket_id = ticket.id
    return call.call_id, ticket_id


def edit_ticket(factory, ticket_id: str, **changes) -> int:
    """Change fields of a stored ticket as an operator's edit does (the version goes up); returns it."""
    with session_scope(factory) as session:
        ticket = repo.get_ticket(session, ticket_id=ticket_id)
        for name, value in changes.items():
            setattr(ticket, name, value)
        ticket.version += 1
        return ticket.version
