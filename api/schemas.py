"""Request and response bodies (Pydantic lives here, at the edge)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from pipeline.storage.calls import CallStatus
from pipeline.storage.dispatch import DispatchStatus
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
    version: int = 1
    """Raised by one on every edit."""
    needs_review: list[str] = []
    """Fields the rules were unsure of (an operator's edit removes a field from the list)."""


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
    reviewed_at: datetime | None = None
    reviewed_by: str | None = None
    review_reason: str | None = None
    """Why the ticket was approved or rejected, when a reason was given."""
    received_at: datetime | None = None
    """When the call came in."""
    audio_url: str | None = None
    """The call's recording, playable in a browser (HTTP Range supported)."""
    transcript: TicketTranscript | None = None
    """The dialogue the ticket was drafted from; evidence ``start_char``/``end_char`` index its ``text``."""
    audit: list[AuditEntry] = []
    """Every edit, approval and rejection, oldest first."""
    dispatch: TicketDispatch | None = None
    """The latest hand-off onward (all of them: ``/tickets/{id}/dispatches``); ``null`` before the first
    attempt, e.g. while an approved ticket's job is still queued."""


class TicketList(BaseModel):
    items: list[TicketSummary]
    total: int
    limit: int
    offset: int


class HealthRead(BaseModel):
    status: str = Field(examples=["ok"])
    database: str
    queue: str


class SegmentRead(BaseModel):
    """One line of the dialogue: who spoke, when, what; ``start_char``/``end_char`` place it in ``text``."""

    index: int
    start: float
    end: float
    speaker: str = Field(examples=["caller"])
    text: str
    start_char: int
    end_char: int


class TicketTranscript(BaseModel):
    id: str
    language: str
    text: str
    duration_s: float
    segments: list[SegmentRead]


class AuditEntry(BaseModel):
    """One change to a ticket: who, when, which field, old → new (or the approval / rejection)."""

    model_config = ConfigDict(from_attributes=True)

    at: datetime
    actor: str
    key_id: str | None
    action: str = Field(examples=["edit", "approve", "reject"])
    field: str | None
    old_value: Any = None
    new_value: Any = None
    reason: str | None = None
    version: int


class TicketDispatch(BaseModel):
    """Where the ticket went onward: the state of its latest hand-off to the ticket system."""

    model_config = ConfigDict(from_attributes=True)

    version: int
    """The ticket version handed off."""
    connector: str = Field(examples=["webhook"])
    status: DispatchStatus
    """``pending`` (not sent yet; retried after a transient failure), ``sent``, or ``failed`` (refused, or
    out of retries)."""
    attempts: int
    last_error: str | None
    """Why the last attempt did not get through (``None`` once sent)."""
    last_status_code: int | None
    external_ref: str | None
    """The receiving system's id for the ticket."""
    external_url: str | None
    """A link to it there, when the receiver gave one."""
    last_attempt_at: datetime | None
    sent_at: datetime | None
    updated_at: datetime


class TicketUpdate(BaseModel):
    """The fields to change; leave out what stays. Values follow ``TICKET_SCHEMA.md`` (checked: 422 when
    not). Empty text clears a field that may be empty (street, address…)."""

    model_config = ConfigDict(extra="forbid")

    request_type: str | None = None
    category: str | None = Field(None, examples=["utilities.heating"])
    urgency: str | None = None
    due_at: datetime | None = None
    district: str | None = Field(None, examples=["朝阳区"])
    street: str | None = None
    community: str | None = None
    address: str | None = None
    department: str | None = None
    callback_number: str | None = Field(None, examples=["13911023456"])
    caller_surname: str | None = None
    vulnerable: list[str] | None = None
    amounts: list[float] | None = None
    summary: str | None = None


class ReviewDecision(BaseModel):
    """An approval (reason optional) or a rejection (reason required)."""

    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(None, max_length=1000)
    version: int | None = Field(None, description="The version the reviewer saw; 409 when it changed since")


TicketRead.model_rebuild()
