"""Ticket version: a counter raised on every edit, so that a ticket sent onward can be named exactly.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25

The receiving system sees ``call id + version`` as the idempotency key of a hand-off: the same
version sent twice is one ticket, an edited and re-approved ticket is a new version.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="1"))


def downgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.drop_column("version")
