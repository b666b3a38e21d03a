"""API keys: created with a role, shown once, stored as a hash, checked in constant time, revocable.

A key reads ``ck_<id>_<secret>``: ``id`` names the stored row (so a key is found without scanning), and
``secret`` is 256 random bits of which only the SHA-256 is stored. A secret that random needs no slow
password hash: nobody can guess one, and a stolen database yields no key.

Roles (``pipeline.storage.keys.Role``): ``uploader`` (call-centre systems: upload, read their
own calls), ``operator`` (review tickets), ``supervisor`` (everything, plus statistics and reprocessing).
A supervisor passes every role check.

Example::

    with session_scope(factory) as session:
        row, key = create_key(session, role=Role.OPERATOR, name="desk 3")
    print(key)                       # ck_3f2a9c0d5e6b7a81_Jx…; shown this once
    with session_scope(factory) as session:
        principal = authenticate(session, key=key)   # Principal(key_id=…, name="desk 3", role=operator)
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from pipeline.errors import Conflict, NotFound
from pipeline.storage.base import utcnow
from pipeline.storage.keys import ApiKeyRow, Role

__all__ = ["KEY_PREFIX", "Principal", "Role", "authenticate", "create_key", "find_principal", "list_keys",
           "revoke_key"]

KEY_PREFIX = "ck"
SECRET_BYTES = 32
#: ``last_used_at`` is written at most this often per key, so that reads do not all become writes
LAST_USED_GRANULARITY = timedelta(minutes=5)
NAME_MAX = 100


@dataclass(frozen=True)
class Principal:
    """Who is asking: the key's id, a name for the audit trail, and the key's role."""

    key_id: str
    name: str
    role: Role

    def allows(self, roles: Iterable[Role | str]) -> bool:
        """True when this principal has one of ``roles`` (a supervisor has them all)."""
        return self.role is Role.SUPERVISOR or self.role in {Role(r) for r in roles}


def hash_secret(secret: str) -> str:
    """Hex SHA-256 of a key's secret part."""
    return hashlib.sha256(secret.encode()).hexdigest()


def create_key(session: Session, *, role: Role | str, name: str | None = None) -> tuple[ApiKeyRow, str]:
    """Store a new key for ``role`` and return its row and the key itself (which is not stored).

    ``name`` defaults to ``<role>-<id>``; it is what the audit trail shows for changes made with the key.
    """
    role = Role(role)
    row = ApiKeyRow(role=role, name="", secret_sha256="", created_at=utcnow())
    secret = secrets.token_urlsafe(SECRET_BYTES)
    row.secret_sha256 = hash_secret(secret)
    session.add(row)
    session.flush()  # assigns the id
    row.name = (name or "").strip()[:NAME_MAX] or f"{role.value}-{row.id}"
    session.flush()
    return row, f"{KEY_PREFIX}_{row.id}_{secret}"


def list_keys(session: Session, *, include_revoked: bool = True) -> list[ApiKeyRow]:
    """Every key, oldest first (revoked ones too unless ``include_revoked=False``)."""
    query = select(ApiKeyRow).order_by(ApiKeyRow.created_at, ApiKeyRow.id)
    if not include_revoked:
        query = query.where(ApiKeyRow.revoked_at.is_(None))
    return list(session.scalars(query))


def revoke_key(session: Session, *, key_id: str) -> ApiKeyRow:
    """Revoke a key at once (requests and logged-in pages using it are refused from now on).

    ``NotFound`` for an unknown id, ``Conflict`` when it is already revoked.
    """
    row = session.get(ApiKeyRow, key_id)
    if row is None:
        raise NotFound(f"no API key with id {key_id!r}")
    if row.revoked_at is not None:
        raise Conflict(f"API key {key_id} was already revoked at {row.revoked_at.isoformat()}")
    row.revoked_at = utcnow()
    session.flush()
    return row


def parse_key(key: str) -> tuple[str, str] | None:
    """``(id, secret)`` of a well-formed key, else ``None``."""
    parts = key.strip().split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


def authenticate(session: Session, *, key: str) -> Principal | None:
    """The principal a presented key stands for, or ``None`` (malformed, unknown, wrong or revoked).

    The secret's hash is compared in constant time; the time taken does not tell a wrong secret from an
    unknown id beyond the lookup itself.
    """
    parsed = parse_key(key)
    if parsed is None:
        return None
    key_id, secret = parsed
    row = session.get(ApiKeyRow, key_id[:32])
    presented = hash_secret(secret)
    stored = row.secret_sha256 if row is not None else "0" * 64
    if not hmac.compare_digest(presented, stored) or row is None or row.revoked_at is not None:
        return None
    now = utcnow()
    if row.last_used_at is None or now - row.last_used_at > LAST_USED_GRANULARITY:
        row.last_used_at = now
    return Principal(key_id=row.id, name=row.name, role=row.role)


def find_principal(session: Session, *, key_id: str, name: str | None = None) -> Principal | None:
    """The principal of a still-valid key by id (a logged-in session), or ``None`` once it is revoked.

    ``name`` replaces the key's name when given (the name a person typed when logging in).
    """
    row = session.get(ApiKeyRow, key_id)
    if row is None or row.revoked_at is not None:
        return None
    return Principal(key_id=row.id, name=(name or "").strip()[:NAME_MAX] or row.name, role=row.role)
