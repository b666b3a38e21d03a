"""What every table shares: the declarative base, UTC times, portable JSON, short string enums, ids.

Times are stored timezone-aware in UTC on every backend (SQLite keeps no zone, so ``UTCDateTime``
attaches UTC on the way out). JSON columns use the portable ``JSON`` type, ``JSONB`` on PostgreSQL.
Status columns are ``StrEnum`` values stored as short strings (no native enum types, so adding a status
never needs ``ALTER TYPE``).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, DateTime, Enum
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

__all__ = ["Base", "JSONType", "UTCDateTime", "new_id", "status_enum", "utcnow"]


def new_id() -> str:
    """A short random identifier: 16 hex characters (64 bits) of a UUID4."""
    return uuid.uuid4().hex[:16]


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware datetime, normalised to UTC when written and read."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} refused: give it a time zone")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


#: JSON that is JSONB on PostgreSQL (indexable, compact) and plain JSON text elsewhere
JSONType = JSON().with_variant(JSONB(), "postgresql")


def status_enum(enum_cls: type[StrEnum], name: str) -> Enum:
    return Enum(
        enum_cls, name=name, native_enum=False, create_constraint=False, length=20,
        values_callable=lambda members: [m.value for m in members], validate_strings=True,
    )


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSONType, list[Any]: JSONType}
