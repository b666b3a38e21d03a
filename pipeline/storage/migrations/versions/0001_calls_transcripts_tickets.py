"""Calls, transcripts and tickets.

Revision ID: 0001
Revises:
Create Date: 2026-11-22

Self-contained on purpose: it does not import the ORM models, so later model changes cannot
rewrite history. Times are ``timestamp with time zone`` (UTC); JSON is JSONB on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json() -> sa.types.TypeEngine:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _time() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def _status(name: str, *values: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=False, length=20)


def upgrade() -> None:
    op.create_table(
        "calls",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("audio_sha256", sa.String(64), nullable=False),
        sa.Column("audio_path", sa.String(255), nullable=False),
        sa.Column("original_filename", sa.String(255), nullable=True),
        sa.Column("content_type", sa.String(100), nullable=True),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("caller_number", sa.String(40), nullable=True),
        sa.Column("line", sa.String(40), nullable=True),
        sa.Column("agent_id", sa.String(40), nullable=True),
        sa.Column("received_at", _time(), nullable=False),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.Column("channels", sa.Integer(), nullable=True),
        sa.Column("sample_rate", sa.Integer(), nullable=True),
        sa.Column("format", sa.String(40), nullable=True),
        sa.Column(
            "status",
            _status("call_status", "queued", "processing", "transcribed", "needs_review", "failed"),
            nullable=False,
        ),
        sa.Column("error_reason", sa.Text(), nullable=True),
        sa.Column("error_stage", sa.String(20), nullable=True),
        sa.Column("retry_count", sa.Integer(), nullable=False),
        sa.Column("language", sa.String(8), nullable=True),
        sa.Column("created_at", _time(), nullable=False),
        sa.Column("updated_at", _time(), nullable=False),
        sa.UniqueConstraint("audio_sha256", name="calls_audio_sha256_key"),
    )
    op.create_index("ix_calls_received_at", "calls", ["received_at"])
    op.create_index("ix_calls_status", "calls", ["status"])

    op.create_table(
        "transcripts",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("call_id", sa.String(32), sa.ForeignKey("calls.id", ondelete="CASCADE"), nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("segments", _json(), nullable=False),
        sa.Column("options", _json(), nullable=False),
        sa.Column("duration_s", sa.Float(), nullable=False),
        sa.Column("created_at", _time(), nullable=False),
    )
    op.create_index("ix_transcripts_call_id", "transcripts", ["call_id"])

    op.create_table(
        "tickets",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("call_id", sa.String(32), sa.ForeignKey("calls.id", ondelete="CASCADE"), nullable=False),
        sa.Column(
            "transcript_id", sa.String(32), sa.ForeignKey("transcripts.id", ondelete="SET NULL"),
            nullable=True,
        ),
        sa.Column("rules_version", sa.String(512), nullable=False),
        sa.Column(
            "status", _status("ticket_status", "needs_review", "approved", "rejected", "dispatched"),
            nullable=False,
        ),
        sa.Column("request_type", sa.String(20), nullable=False),
        sa.Column("category", sa.String(60), nullable=False),
        sa.Column("urgency", sa.String(20), nullable=False),
        sa.Column("due_at", _time(), nullable=False),
        sa.Column("district", sa.String(20), nullable=True),
        sa.Column("street", sa.String(60), nullable=True),
        sa.Column("community", sa.String(60), nullable=True),
        sa.Column("address", sa.String(255), nullable=True),
        sa.Column("department", sa.String(100), nullable=False),
        sa.Column("callback_number", sa.String(40), nullable=True),
        sa.Column("caller_surname", sa.String(40), nullable=True),
        sa.Column("vulnerable", _json(), nullable=False),
        sa.Column("amounts", _json(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("evidence", _json(), nullable=False),
        sa.Column("confidence", _json(), nullable=False),
        sa.Column("needs_review", _json(), nullable=False),
        sa.Column("created_at", _time(), nullable=False),
        sa.Column("updated_at", _time(), nullable=False),
        sa.UniqueConstraint("call_id", "rules_version", name="uq_tickets_call_rules"),
    )
    for column in ("call_id", "category", "district", "status", "urgency"):
        op.create_index(f"ix_tickets_{column}", "tickets", [column])


def downgrade() -> None:
    op.drop_table("tickets")
    op.drop_table("transcripts")
    op.drop_table("calls")
