"""The ORM tables: calls, transcripts and tickets.

Times are stored timezone-aware in UTC on every backend (SQLite keeps no zone, so ``UTCDateTime``
attaches UTC on the way out). JSON columns use the portable ``JSON`` type, ``JSONB`` on PostgreSQL.
Status columns are ``StrEnum`` values stored as short strings (no native enum types, so adding a status
never needs ``ALTER TYPE``).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, DateTime, Enum, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from pipeline.ticket import TicketStatus

__all__ = ["Base", "CallRow", "CallStatus", "TicketRow", "TicketStatus", "TranscriptRow", "new_id", "utcnow"]


def new_id() -> str:
    """A short random identifier: 16 hex characters (64 bits) of a UUID4."""
    return uuid.uuid4().hex[:16]


def utcnow() -> datetime:
    return datetime.now(UTC)


class CallStatus(StrEnum):
    QUEUED = "queued"
    PROCESSING = "processing"
    TRANSCRIBED = "transcribed"
    NEEDS_REVIEW = "needs_review"
    FAILED = "failed"


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware datetime, normalised to UTC when written and read."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} refused: give it a time zone")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


#: JSON that is JSONB on PostgreSQL (indexable, compact) and plain JSON text elsewhere
JSONType = JSON().with_variant(JSONB(), "postgresql")


def _status_enum(enum_cls: type[StrEnum], name: str) -> Enum:
    return Enum(
        enum_cls, name=name, native_enum=False, create_constraint=False, length=20,
        values_callable=lambda members: [m.value for m in members], validate_strings=True,
    )


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSONType, list[Any]: JSONType}


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
        _status_enum(CallStatus, "call_status"), default=CallStatus.QUEUED, index=True
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


class TicketRow(Base):
    """The ticket drafted from a call by one version of the rules, and its review status."""

    __tablename__ = "tickets"
    __table_args__ = (UniqueConstraint("call_id", "rules_version", name="uq_tickets_call_rules"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), index=True)
    transcript_id: Mapped[str | None] = mapped_column(ForeignKey("transcripts.id", ondelete="SET NULL"))
    rules_version: Mapped[str] = mapped_column(String(512))
    status: Mapped[TicketStatus] = mapped_column(
        _status_enum(TicketStatus, "ticket_status"), default=TicketStatus.NEEDS_REVIEW, index=True
    )
    request_type: Mapped[str] = mapped_column(String(20))
    category: Mapped[str] = mapped_column(String(60), index=True)
    urgency: Mapped[str] = mapped_column(String(20), index=True)
    due_at: Mapped[datetime] = mapped_column()
    district: Mapped[str | None] = mapped_column(String(20), index=True)
    street: Mapped[str | None] = mapped_column(String(60))
    community: Mapped[str | None] = mapped_column(String(60))
    address: Mapped[str | None] = mapped_column(String(255))
    department: Mapped[str] = mapped_column(String(100))
    callback_number: Mapped[str | None] = mapped_column(String(40))
    caller_surname: Mapped[str | None] = mapped_column(String(40))
    vulnerable: Mapped[list[Any]] = mapped_column(JSONType)
    amounts: Mapped[list[Any]] = mapped_column(JSONType)
    summary: Mapped[str] = mapped_column(Text)
    language: Mapped[str] = mapped_column(String(8))
    evidence: Mapped[dict[str, Any]] = mapped_column(JSONType)
    confidence: Mapped[dict[str, Any]] = mapped_column(JSONType)
    needs_review: Mapped[list[Any]] = mapped_column(JSONType)
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    """Raised by one on every edit; ``call id + version`` names exactly what was sent onward."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # review (migration 0004): the last approval or rejection
    reviewed_at: Mapped[datetime | None] = mapped_column()
    reviewed_by: Mapped[str | None] = mapped_column(String(100))
    review_reason: Mapped[str | None] = mapped_column(Text)

    call: Mapped[CallRow] = relationship(back_populates="tickets")

    def __repr__(self) -> str:
        return f"TicketRow(id={self.id!r}, call_id={self.call_id!r}, status={self.status.value!r})"


# the other tables share Base; importing their modules here keeps the metadata complete: dispatch and
# follow-up, reprocess runs, review keys and audit
from pipeline.storage import dispatch_models as _dispatch_models  # noqa: E402, F401
from pipeline.storage import ops_models as _ops_models  # noqa: E402, F401
from pipeline.storage import review_models as _review_models  # noqa: E402, F401
