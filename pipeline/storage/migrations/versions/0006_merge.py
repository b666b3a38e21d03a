"""Join the three schema branches (reprocess runs, review and keys, dispatch and follow-up) into one head.

Revision ID: 0006
Revises: 0003, 0004, 0005
Create Date: 2026-11-25

The three touch different tables and columns, so they apply in any order; from here on there is one
head again and ``alembic upgrade head`` works as usual.
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0006"
down_revision: str | Sequence[str] | None = ("0003", "0004", "0005")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
