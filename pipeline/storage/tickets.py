"""The tickets table (the draft a version of the rules made of a call, and its review) and the audit trail.

``ticket_audit`` gets one row per edited field, approval and rejection; old and new values are kept as
JSON so that lists (``vulnerable``, ``amounts``) and nulls read back as they were.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from pipeline.storage.base import Base, JSONType, new_id, status_enum, utcnow
from pipeline.ticket import TicketStatus

if TYPE_CHECKING:
    from pipeline.storage.calls import CallRow

__all__ = ["AuditAction", "TicketAuditRow", "TicketRow", "TicketStatus"]


class TicketRow(Base):
    """The ticket drafted from a call by one version of the rules, and its review status."""

    __tablename__ = "tickets"
    __table_args__ = (UniqueConstraint("call_id", "rules_version", name="uq_tickets_call_rules"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), index=True)
    transcript_id: Mapped[str | None] = mapped_column(ForeignKey("transcripts.id", ondelete="SET NULL"))
    rules_version: Mapped[str] = mapped_column(String(512))
    status: Mapped[TicketStatus] = mapped_column(
        status_enum(TicketStatus, "ticket_status"), default=TicketStatus.NEEDS_REVIEW, index=True
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


class AuditAction(StrEnum):
    """What an audit row records."""

    EDIT = "edit"
    APPROVE = "approve"
    REJECT = "reject"


class TicketAuditRow(Base):
    """One change to a ticket: a field edited (old → new), or the ticket approved or rejected."""

    __tablename__ = "ticket_audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_id: Mapped[str] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    key_id: Mapped[str | None] = mapped_column(String(32))
    """The API key the change was made with (kept when the key is later revoked)."""
    actor: Mapped[str] = mapped_column(String(100))
    """The name of who made the change, as they logged in."""
    action: Mapped[AuditAction] = mapped_column(status_enum(AuditAction, "audit_action"))
    field: Mapped[str | None] = mapped_column(String(40))
    old_value: Mapped[Any] = mapped_column(JSONType, nullable=True)
    new_value: Mapped[Any] = mapped_column(JSONType, nullable=True)
    reason: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer)
    """The ticket's version after the change."""
