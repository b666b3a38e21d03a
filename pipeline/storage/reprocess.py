"""Tables for operating on the archive: reprocess runs, the calls each run covers, and what they changed.

A reprocess run is a stored record with its own id, so that it can be stopped, resumed on another host
and reported on long after it ran:

* ``reprocess_runs``     one run: stage, target rules version, filters, counters, status;
* ``reprocess_items``    one row per selected call, ``pending`` until a batch records it ``done``,
  ``failed`` (with the reason) or ``skipped`` — a resumed run takes only the pending ones;
* ``reprocess_changes``  the diff: one row per call and field whose value the run changed
  (old and new values as JSON text, so ``null`` and ``""`` stay apart).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from pipeline.storage.base import Base, new_id, status_enum, utcnow

__all__ = ["ItemStatus", "ReprocessChangeRow", "ReprocessItemRow", "ReprocessRunRow", "RunStatus"]


class RunStatus(StrEnum):
    RUNNING = "running"
    STOPPED = "stopped"
    DONE = "done"


class ItemStatus(StrEnum):
    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"


class ReprocessRunRow(Base):
    """One reprocessing of part of the archive with the rules (and engine) of the host that started it."""

    __tablename__ = "reprocess_runs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    status: Mapped[RunStatus] = mapped_column(status_enum(RunStatus, "reprocess_run_status"),
                                              default=RunStatus.RUNNING, index=True)
    stage: Mapped[str] = mapped_column(String(20))
    """``extract`` (stored transcripts, rules only) or ``transcribe`` (the audio again, then the rules)."""
    rules_version: Mapped[str] = mapped_column(String(512))
    """The rules version the run drafts tickets with; a host with other rules refuses its batches."""
    filters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    """``{"since", "until", "where": {...}}`` as given."""
    mode: Mapped[str] = mapped_column(String(10))
    """``queue`` (batches on the ``archive`` queue) or ``inline`` (in the process that started it)."""
    total: Mapped[int] = mapped_column(Integer, default=0)
    done: Mapped[int] = mapped_column(Integer, default=0)
    """Items finished, whatever the outcome (done + failed + skipped)."""
    changed: Mapped[int] = mapped_column(Integer, default=0)
    """Calls with at least one field changed."""
    failed: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    passes: Mapped[int] = mapped_column(Integer, default=1)
    """Raised by each resume; batches of an earlier pass still in the queue see it and stand down."""
    pass_started_at: Mapped[datetime] = mapped_column(default=utcnow)
    pass_start_done: Mapped[int] = mapped_column(Integer, default=0)
    """``done`` when the current pass started (rate and ETA count from there)."""
    created_by: Mapped[str | None] = mapped_column(String(100))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column()


class ReprocessItemRow(Base):
    """One call of a run and how it went."""

    __tablename__ = "reprocess_items"
    __table_args__ = (Index("ix_reprocess_items_run_status_seq", "run_id", "status", "seq"),)

    run_id: Mapped[str] = mapped_column(ForeignKey("reprocess_runs.id", ondelete="CASCADE"), primary_key=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)
    """Order within the run (oldest call first); batches are consecutive runs of it."""
    status: Mapped[ItemStatus] = mapped_column(status_enum(ItemStatus, "reprocess_item_status"),
                                               default=ItemStatus.PENDING)
    outcome: Mapped[str | None] = mapped_column(Text)
    """What happened: the fields changed, why it was skipped, or the failure."""
    updated_at: Mapped[datetime | None] = mapped_column()


class ReprocessChangeRow(Base):
    """One field of one call that a run changed (or would have, for a ticket already reviewed)."""

    __tablename__ = "reprocess_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("reprocess_runs.id", ondelete="CASCADE"), index=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"))
    field: Mapped[str] = mapped_column(String(40))
    old_value: Mapped[str] = mapped_column(Text)
    """JSON text of the value before (``null`` when the call had no ticket)."""
    new_value: Mapped[str] = mapped_column(Text)
    """JSON text of the value the run drafted."""
    applied: Mapped[bool] = mapped_column(Boolean, default=True)
    """False when the call's ticket had already been reviewed, so the new draft was not stored."""
