"""The calls table (one recorded call as received, with its processing status) and its transcripts."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sqlalchemy import Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from pipeline.storage.base import Base, JSONType, new_id, status_enum, utcnow

if TYPE_CHECKING:
    from pipeline.storage.tickets import TicketRow

__all__ = ["CallRow", "CallStatus", "TranscriptRow"]


class CallStatus(StrEnum):
    QUEUED = "queued"
    PROCESSING = "processing"
    TRANSCRIBED = "transcribed"
    NEEDS_REVIEW = "needs_review"
    FAILED = "failed"


class CallRow(Base):
    """One recorded call as received, with its processing status."""

    __tablename__ = "calls"
    __table_args__ = (UniqueConstraint("audio_sha256", name="calls_audio_sha256_key"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    audio_sha256: Mapped[str] = mapped_column(String(64))
    audio_path: Mapped[str] = mapped_column(String(255))
    """Path of the stored audio, relative to the data directory."""
    original_filename: Mapped[str | None] = mapped_column(String(255))
    content_type: Mapped[str | None] = mapped_column(String(100))
    size_bytes: Mapped[int] = mapped_column(Integer)
    caller_number: Mapped[str | None] = mapped_column(String(40))
    line: Mapped[str | None] = mapped_column(String(40))
    agent_id: Mapped[str | None] = mapped_column(String(40))
    received_at: Mapped[datetime] = mapped_column(index=True)
    duration_s: Mapped[float | None] = mapped_column(Float)
    channels: Mapped[int | None] = mapped_column(Integer)
    sample_rate: Mapped[int | None] = mapped_column(Integer)
    format: Mapped[str | None] = mapped_column(String(40))
    status: Mapped[CallStatus] = mapped_column(
        status_enum(CallStatus, "call_status"), default=CallStatus.QUEUED, index=True
    )
    error_reason: Mapped[str | None] = mapped_column(Text)
    error_stage: Mapped[str | None] = mapped_column(String(20))
    retry_count: Mapped[int] = mapped_column(Integer, default=0)
    language: Mapped[str | None] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # review (migration 0004)
    uploaded_by_key_id: Mapped[str | None] = mapped_column(String(32), index=True)
    """The API key the call was uploaded with; an uploader key reads only its own calls."""

    transcripts: Mapped[list[TranscriptRow]] = relationship(
        back_populates="call", order_by="TranscriptRow.created_at", cascade="all, delete-orphan"
    )
    tickets: Mapped[list[TicketRow]] = relationship(back_populates="call", cascade="all, delete-orphan")

    def __repr__(self) -> str:
        return f"CallRow(id={self.id!r}, status={self.status.value!r})"


class TranscriptRow(Base):
    """One transcription of a call; a call may have several (engine changes), the latest is current."""

    __tablename__ = "transcripts"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), index=True)
    language: Mapped[str] = mapped_column(String(8))
    text: Mapped[str] = mapped_column(Text)
    segments: Mapped[list[Any]] = mapped_column(JSONType)
    """``[{start, end, speaker, text, confidence, words?}]`` as ``pipeline.transcript.Segment.to_dict``."""
    options: Mapped[dict[str, Any]] = mapped_column(JSONType)
    """The engine options the transcript was made with."""
    duration_s: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    call: Mapped[CallRow] = relationship(back_populates="transcripts")
