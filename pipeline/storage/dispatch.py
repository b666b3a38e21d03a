"""Tables for what happens after approval: hand-offs to the ticket system, and the callback loop.

* ``dispatches``: one row per ticket version and connector, the state of its hand-off onward
  (``pending`` → ``sent``, or ``failed`` with the reason), how many attempts it took and what the
  receiving system called the ticket. Unique on ``(ticket_id, version, connector)``, so a version is
  handed to one system once.
* ``ticket_followups``: one row per ticket, the department's reported outcome (resolved or not, a note,
  when) and the citizen's rating at the callback (回访). ``first_outcome_at`` keeps the first report, so
  a later correction does not move the response time.

Created by migration 0005.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from pipeline.storage.base import Base, new_id, status_enum, utcnow

__all__ = ["DispatchRow", "DispatchStatus", "FollowupRow", "Rating", "RATING_LABELS"]


class DispatchStatus(StrEnum):
    PENDING = "pending"
    """Not sent yet: never tried, or a transient failure that will be retried."""
    SENT = "sent"
    """The receiving system accepted it; ``external_ref`` names it there."""
    FAILED = "failed"
    """Given up: refused by the receiver (4xx) or out of retries; ``last_error`` says why."""


class Rating(StrEnum):
    """The citizen's verdict at the callback."""

    SATISFIED = "satisfied"
    BASICALLY_SATISFIED = "basically_satisfied"
    DISSATISFIED = "dissatisfied"


#: the words the hotline uses for each rating
RATING_LABELS: dict[Rating, str] = {
    Rating.SATISFIED: "满意",
    Rating.BASICALLY_SATISFIED: "基本满意",
    Rating.DISSATISFIED: "不满意",
}


class DispatchRow(Base):
    """The hand-off of one version of a ticket to one receiving system."""

    __tablename__ = "dispatches"
    __table_args__ = (
        UniqueConstraint("ticket_id", "version", "connector", name="uq_dispatches_ticket_version_connector"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    ticket_id: Mapped[str] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    connector: Mapped[str] = mapped_column(String(20))
    status: Mapped[DispatchStatus] = mapped_column(
        status_enum(DispatchStatus, "dispatch_status"), default=DispatchStatus.PENDING, index=True
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    idempotency_key: Mapped[str] = mapped_column(String(120))
    """What the receiver sees as the key of this hand-off (``Idempotency-Key``, Zammad reference)."""
    last_error: Mapped[str | None] = mapped_column(Text)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    """The HTTP status of the last answer, when there was one."""
    external_ref: Mapped[str | None] = mapped_column(String(255))
    """The receiver's id for the ticket (Zammad ticket id, the webhook answer's ``id``)."""
    external_url: Mapped[str | None] = mapped_column(String(1024))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    last_attempt_at: Mapped[datetime | None] = mapped_column()
    sent_at: Mapped[datetime | None] = mapped_column()

    def __repr__(self) -> str:
        return (f"DispatchRow(ticket_id={self.ticket_id!r}, version={self.version}, "
                f"connector={self.connector!r}, status={self.status.value!r})")


class FollowupRow(Base):
    """The department's outcome and the citizen's rating for one ticket."""

    __tablename__ = "ticket_followups"

    ticket_id: Mapped[str] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True)
    resolved: Mapped[bool | None] = mapped_column(Boolean)
    """The department's latest report: resolved (True) or not (False); None before any report."""
    outcome_note: Mapped[str | None] = mapped_column(Text)
    outcome_at: Mapped[datetime | None] = mapped_column()
    """When the department reported the latest outcome."""
    first_outcome_at: Mapped[datetime | None] = mapped_column(index=True)
    """When the department first reported; compared with the ticket's ``due_at`` for the response rate."""
    outcome_by: Mapped[str | None] = mapped_column(String(100))
    rating: Mapped[Rating | None] = mapped_column(status_enum(Rating, "followup_rating"))
    rating_note: Mapped[str | None] = mapped_column(Text)
    rated_at: Mapped[datetime | None] = mapped_column()
    rated_by: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    def __repr__(self) -> str:
        return f"FollowupRow(ticket_id={self.ticket_id!r}, resolved={self.resolved!r}, rating={self.rating!r})"
