"""Dispatch and follow-up: the hand-off of each ticket version onward, the department's outcome and the
citizen's rating.

Revision ID: 0005
Revises: 0002
Create Date: 2026-11-25

Self-contained (no ORM imports), like 0001.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _time() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def _enum(name: str, *values: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=False, length=20)


def upgrade() -> None:
    op.create_table(
        "dispatches",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("ticket_id", sa.String(32), sa.ForeignKey("tickets.id", ondelete="CASCADE"), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("connector", sa.String(20), nullable=False),
        sa.Column("status", _enum("dispatch_status", "pending", "sent", "failed"), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sa.String(120), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("external_ref", sa.String(255), nullable=True),
        sa.Column("external_url", sa.String(1024), nullable=True),
        sa.Column("created_at", _time(), nullable=False),
        sa.Column("updated_at", _time(), nullable=False),
        sa.Column("last_attempt_at", _time(), nullable=True),
        sa.Column("sent_at", _time(), nullable=True),
        sa.UniqueConstraint("ticket_id", "version", "connector", name="uq_dispatches_ticket_version_connector"),
    )
    op.create_index("ix_dispatches_ticket_id", "dispatches", ["ticket_id"])
    op.create_index("ix_dispatches_status", "dispatches", ["status"])

    op.create_table(
        "ticket_followups",
        sa.Column(
            "ticket_id", sa.String(32), sa.ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("resolved", sa.Boolean(), nullable=True),
        sa.Column("outcome_note", sa.Text(), nullable=True),
        sa.Column("outcome_at", _time(), nullable=True),
        sa.Column("first_outcome_at", _time(), nullable=True),
        sa.Column("outcome_by", sa.String(100), nullable=True),
        sa.Column("rating", _enum("followup_rating", "satisfied", "basically_satisfied", "dissatisfied"),
                  nullable=True),
        sa.Column("rating_note", sa.Text(), nullable=True),
        sa.Column("rated_at", _time(), nullable=True),
        sa.Column("rated_by", sa.String(100), nullable=True),
        sa.Column("created_at", _time(), nullable=False),
        sa.Column("updated_at", _time(), nullable=False),
    )
    op.create_index("ix_ticket_followups_first_outcome_at", "ticket_followups", ["first_outcome_at"])


def downgrade() -> None:
    op.drop_index("ix_ticket_followups_first_outcome_at", table_name="ticket_followups")
    op.drop_table("ticket_followups")
    op.drop_index("ix_dispatches_status", table_name="dispatches")
    op.drop_index("ix_dispatches_ticket_id", table_name="dispatches")
    op.drop_table("dispatches")
