"""Request and response bodies (Pydantic lives here, at the edge)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from pipeline.storage.models import CallStatus
from pipeline.ticket import TicketStatus


class ErrorDetail(BaseModel):
    code: str = Field(examples=["unsupported_audio"])
    message: str = Field(examples=["letter.wav: not an audio file (no audio stream found)"])
    stage: str | None = None


class ErrorRead(BaseModel):
    error: ErrorDetail


class CallAccepted(BaseModel):
    """Answer to an upload: 202 for a new call (queued), 200 when the same audio was already stored."""

    call_id: str
    status: CallStatus


class TranscriptRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    language: str
    text: str
    segments: list[dict[str, Any]]
    """``{start, end, speaker, text, confidence, words?}`` per segment, in time order."""
    options: dict[str, Any]
    """The engine options the transcript was made with."""
    duration_s: float
    created_at: datetime


class CallSummary(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    status: CallStatus
    received_at: datetime
    duration_s: float | None
    language: str | None
    error_stage: str | None
    error_reason: str | None
    original_filename: str | None


class CallRead(CallSummary):
    caller_number: str | None
    line: str | None
    agent_id: str | None
    channels: int | None
    sample_rate: int | None
    format: str | None
    size_bytes: int
    audio_sha256: str
    retry_count: int
    created_at: datetime
    updated_at: datetime
    ticket_id: str | None = None
    """The call's current ticket, once drafted."""
    transcript: TranscriptRead | None = None
    """The current transcript, once transcribed."""


class CallList(BaseModel):
    items: list[CallSummary]
    total: int
    limit: int
    offset: int


class TicketSummary(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    call_id: str
    status: TicketStatus
    request_type: str
    category: str
    urgency: str
    due_at: datetime
    district: str | None
    department: str
    summary: str
    language: str
    created_at: datetime


class TicketRead(TicketSummary):
    """Every field of the ticket contract, with the evidence behind each."""

    rules_version: str
    transcript_id: str | None
    street: str | None
    community: str | None
    address: str | None
    callback_number: str | None
    caller_surname: str | None
    vulnerable: list[str]
    amounts: list[int | float]
    evidence: dict[str, list[dict[str, Any]]]
    confidence: dict[str, float]
    needs_review: list[str]
    updated_at: datetime


class TicketList(BaseModel):
    items: list[TicketSummary]
    total: int
    limit: int
    offset: int


class HealthRead(BaseModel):
    status: str = Field(examples=["ok"])
    database: str
    queue: str
