"""The review tables: API keys (who may do what) and the ticket audit trail (who changed what, when).

``api_keys`` holds only the SHA-256 of each key's secret: the key itself is shown once, when it is
created. ``ticket_audit`` gets one row per edited field, approval and rejection; old and new values
are kept as JSON so that lists (``vulnerable``, ``amounts``) and nulls read back as they were.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from pipeline.storage.models import Base, JSONType, _status_enum, new_id, utcnow

__all__ = ["ApiKeyRow", "AuditAction", "Role", "TicketAuditRow"]


class Role(StrEnum):
    """What a key may do. ``supervisor`` may do everything the others may."""

    UPLOADER = "uploader"
    """Call-centre systems: upload calls, read the status of the calls uploaded with the same key."""
    OPERATOR = "operator"
    """Review tickets: read, edit, approve, reject."""
    SUPERVISOR = "supervisor"
    """Everything, plus statistics and reprocessing."""


class AuditAction(StrEnum):
    """What an audit row records."""

    EDIT = "edit"
    APPROVE = "approve"
    REJECT = "reject"


class ApiKeyRow(Base):
    """One API key: its role, a name people recognise, and the hash of its secret."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[Role] = mapped_column(_status_enum(Role, "api_key_role"))
    secret_sha256: Mapped[str] = mapped_column(String(64))
    """Hex SHA-256 of the key's secret part; the key is never stored."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()

    def __repr__(self) -> str:
        return f"ApiKeyRow(id={self.id!r}, name={self.name!r}, role={self.role.value!r})"


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
    action: Mapped[AuditAction] = mapped_column(_status_enum(AuditAction, "audit_action"))
    field: Mapped[str | None] = mapped_column(String(40))
    old_value: Mapped[Any] = mapped_column(JSONType, nullable=True)
    new_value: Mapped[Any] = mapped_column(JSONType, nullable=True)
    reason: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer)
    """The ticket's version after the change."""
