"""Reprocess runs: the run, the calls it covers, and the diff of what it changed.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25

Self-contained (no ORM imports), like 0001.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json() -> sa.types.TypeEngine:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _time() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def _enum(name: str, *values: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=False, length=20)


def upgrade() -> None:
    op.create_table(
        "reprocess_runs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("status", _enum("reprocess_run_status", "running", "stopped", "done"), nullable=False),
        sa.Column("stage", sa.String(20), nullable=False),
        sa.Column("rules_version", sa.String(512), nullable=False),
        sa.Column("filters", _json(), nullable=False),
        sa.Column("mode", sa.String(10), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column("changed", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("skipped", sa.Integer(), nullable=False),
        sa.Column("passes", sa.Integer(), nullable=False),
        sa.Column("pass_started_at", _time(), nullable=False),
        sa.Column("pass_start_done", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(100), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", _time(), nullable=False),
        sa.Column("updated_at", _time(), nullable=False),
        sa.Column("finished_at", _time(), nullable=True),
    )
    op.create_index("ix_reprocess_runs_status", "reprocess_runs", ["status"])

    op.create_table(
        "reprocess_items",
        sa.Column("run_id", sa.String(32), sa.ForeignKey("reprocess_runs.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("call_id", sa.String(32), sa.ForeignKey("calls.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("status", _enum("reprocess_item_status", "pending", "done", "failed", "skipped"),
                  nullable=False),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.Column("updated_at", _time(), nullable=True),
    )
    op.create_index("ix_reprocess_items_run_status_seq", "reprocess_items", ["run_id", "status", "seq"])

    op.create_table(
        "reprocess_changes",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(32), sa.ForeignKey("reprocess_runs.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("call_id", sa.String(32), sa.ForeignKey("calls.id", ondelete="CASCADE"), nullable=False),
        sa.Column("field", sa.String(40), nullable=False),
        sa.Column("old_value", sa.Text(), nullable=False),
        sa.Column("new_value", sa.Text(), nullable=False),
        sa.Column("applied", sa.Boolean(), nullable=False),
    )
    op.create_index("ix_reprocess_changes_run_id", "reprocess_changes", ["run_id"])


def downgrade() -> None:
    op.drop_table("reprocess_changes")
    op.drop_table("reprocess_items")
    op.drop_table("reprocess_runs")
