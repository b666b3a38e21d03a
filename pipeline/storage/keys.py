"""The API keys table: who may do what. Only the SHA-256 of each key's secret is kept; the key itself is
shown once, when it is created."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from pipeline.storage.base import Base, new_id, status_enum, utcnow

__all__ = ["ApiKeyRow", "Role"]


class Role(StrEnum):
    """What a key may do. ``supervisor`` may do everything the others may."""

    UPLOADER = "uploader"
    """Call-centre systems: upload calls, read the status of the calls uploaded with the same key."""
    OPERATOR = "operator"
    """Review tickets: read, edit, approve, reject."""
    SUPERVISOR = "supervisor"
    """Everything, plus statistics and reprocessing."""


class ApiKeyRow(Base):
    """One API key: its role, a name people recognise, and the hash of its secret."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[Role] = mapped_column(status_enum(Role, "api_key_role"))
    secret_sha256: Mapped[str] = mapped_column(String(64))
    """Hex SHA-256 of the key's secret part; the key is never stored."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()

    def __repr__(self) -> str:
        return f"ApiKeyRow(id={self.id!r}, name={self.name!r}, role={self.role.value!r})"
