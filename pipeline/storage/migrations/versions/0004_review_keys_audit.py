"""Review: API keys with roles, the ticket audit trail, the uploading key of a call, the last review.

Revision ID: 0004
Revises: 0002
Create Date: 2026-11-25

Self-contained (no ORM imports), like 0001.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
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
        "api_keys",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("role", _enum("api_key_role", "uploader", "operator", "supervisor"), nullable=False),
        sa.Column("secret_sha256", sa.String(64), nullable=False),
        sa.Column("created_at", _time(), nullable=False),
        sa.Column("last_used_at", _time(), nullable=True),
        sa.Column("revoked_at", _time(), nullable=True),
    )
    op.create_table(
        "ticket_audit",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("ticket_id", sa.String(32), sa.ForeignKey("tickets.id", ondelete="CASCADE"), nullable=False),
        sa.Column("at", _time(), nullable=False),
        sa.Column("key_id", sa.String(32), nullable=True),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("action", _enum("audit_action", "edit", "approve", "reject"), nullable=False),
        sa.Column("field", sa.String(40), nullable=True),
        sa.Column("old_value", _json(), nullable=True),
        sa.Column("new_value", _json(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
    )
    op.create_index("ix_ticket_audit_ticket_id", "ticket_audit", ["ticket_id"])
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("uploaded_by_key_id", sa.String(32), nullable=True))
        batch.create_index("ix_calls_uploaded_by_key_id", ["uploaded_by_key_id"])
    with op.batch_alter_table("tickets") as batch:
        batch.add_column(sa.Column("reviewed_at", _time(), nullable=True))
        batch.add_column(sa.Column("reviewed_by", sa.String(100), nullable=True))
        batch.add_column(sa.Column("review_reason", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.drop_column("review_reason")
        batch.drop_column("reviewed_by")
        batch.drop_column("reviewed_at")
    with op.batch_alter_table("calls") as batch:
        batch.drop_index("ix_calls_uploaded_by_key_id")
        batch.drop_column("uploaded_by_key_id")
    op.drop_index("ix_ticket_audit_ticket_id", table_name="ticket_audit")
    op.drop_table("ticket_audit")
    op.drop_table("api_keys")
