"""Operator review: check edited values against the ticket contract, edit with an audit trail,
approve or reject, and make a call's audio playable in a browser.

Nothing here knows about HTTP. The API validates request bodies with ``validate_changes`` (a bad value
is a 422 there) and calls ``edit_ticket`` / ``approve_ticket`` / ``reject_ticket`` inside one
transaction; sending an approved ticket onward is the caller's part (the API enqueues it for dispatch).

Rules of the review:

* only a ticket that ``needs_review`` can be edited, approved or rejected (``Conflict`` otherwise);
  approving an approved ticket again at the same version changes nothing (a repeated click is not a
  second approval);
* every edit raises ``tickets.version`` by one and writes one ``ticket_audit`` row per changed field
  (who, when, old → new); a field the operator edited leaves ``needs_review`` (a person has now
  checked it); giving the version the operator saw (``expected_version``) refuses an edit made on a
  stale page (``Conflict``);
* changing the urgency moves ``due_at`` to the call time plus the new tier's limit, and changing the
  category, district or urgency routes the ticket anew (``department``), unless the same edit sets
  those fields itself;
* approving or rejecting records who, when and why on the ticket and in the audit trail; a rejection
  needs a reason.

Example::

    with session_scope(factory) as session:
        changes = validate_changes({"district": "朝阳区"}, language="zh")
        ticket = edit_ticket(session, ticket_id=tid, changes=changes, actor=actor, expected_version=1)
        approve_ticket(session, ticket_id=tid, actor=actor)
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from pipeline.errors import AudioError, Conflict, InvalidEdit, StorageError
from pipeline.settings import Settings
from pipeline.storage import audio_store, repo
from pipeline.storage.base import utcnow
from pipeline.storage.calls import CallRow
from pipeline.storage.tickets import AuditAction, TicketAuditRow, TicketRow
from pipeline.ticket import REQUEST_TYPES, URGENCIES, VULNERABLE, TicketStatus

logger = logging.getLogger(__name__)

__all__ = [
    "EDITABLE_FIELDS", "Actor", "InvalidEdit", "approve_ticket", "edit_ticket", "list_audit", "playable_audio",
    "reject_ticket", "validate_changes",
]

#: the fields an operator may change, in the order the review page shows them
EDITABLE_FIELDS = (
    "request_type", "category", "urgency", "due_at", "district", "street", "community", "address",
    "department", "callback_number", "caller_surname", "vulnerable", "amounts", "summary",
)
#: longest text per field (the column sizes)
MAX_CHARS = {"street": 60, "community": 60, "address": 255, "department": 100, "caller_surname": 40,
             "summary": 1000}
#: fields that may be cleared (set to null)
NULLABLE = frozenset({"district", "street", "community", "address", "callback_number", "caller_surname"})
REASON_MAX = 1000


@dataclass(frozen=True)
class Actor:
    """Who makes a change: the API key's id and the name shown in the audit trail."""

    key_id: str | None
    name: str


# ------------------------------------------------------------------------------------------ validation
def _rules() -> Any:
    from pipeline.extractors.rules import load_rules

    return load_rules()


def validate_changes(changes: Mapping[str, Any], *, language: str = "zh", zone: tzinfo | None = None,
                     rules: Any = None) -> dict[str, Any]:
    """The edited values, checked against ``TICKET_SCHEMA.md`` and normalised; ``InvalidEdit`` names
    the first field that is wrong and why.

    ``category`` must be a taxonomy code, ``district`` one of Beijing's 16, ``callback_number`` a phone
    number (spaces, dashes and brackets are dropped: ``139 1102 3456`` → ``13911023456``),
    ``vulnerable`` any of the four groups, ``amounts`` numbers ≥ 0, ``due_at`` ISO 8601 (a time
    without an offset is read in ``zone``, the hotline's). Empty text clears a nullable field.

    >>> validate_changes({"district": "朝阳区", "callback_number": "139-1102-3456"})
    {'district': '朝阳区', 'callback_number': '13911023456'}
    """
    rules = rules or _rules()
    out: dict[str, Any] = {}
    for name, value in changes.items():
        if name not in EDITABLE_FIELDS:
            raise InvalidEdit(f"{name}: not a field that can be edited (editable: {', '.join(EDITABLE_FIELDS)})")
        out[name] = _check(name, value, language=language, zone=zone, rules=rules)
    return out


def _check(name: str, value: Any, *, language: str, zone: tzinfo | None, rules: Any) -> Any:
    if isinstance(value, str):
        value = value.strip()
        if value == "" and name in NULLABLE:
            value = None
    if value is None:
        if name in NULLABLE:
            return None
        raise InvalidEdit(f"{name}: a value is required")
    if name == "request_type":
        return _choice(name, value, REQUEST_TYPES)
    if name == "category":
        return _choice(name, value, tuple(rules.categories))
    if name == "urgency":
        return _choice(name, value, URGENCIES)
    if name == "district":
        return _choice(name, value, tuple(rules.districts))
    if name == "due_at":
        return _datetime(name, value, zone)
    if name == "callback_number":
        return normalise_phone(value, language=language)
    if name == "vulnerable":
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise InvalidEdit(f"vulnerable: a list of {', '.join(VULNERABLE)}")
        for v in value:
            _choice(name, v, VULNERABLE)
        return sorted(set(value))
    if name == "amounts":
        if not isinstance(value, list | tuple):
            raise InvalidEdit("amounts: a list of numbers (yuan or dollars)")
        amounts = []
        for v in value:
            if isinstance(v, bool) or not isinstance(v, int | float) or v < 0 or v != v or v in (float("inf"),):
                raise InvalidEdit(f"amounts: {v!r} is not an amount (a number ≥ 0)")
            amounts.append(int(v) if float(v).is_integer() else float(v))
        return amounts
    if not isinstance(value, str):
        raise InvalidEdit(f"{name}: text expected, got {type(value).__name__}")
    if not value:
        raise InvalidEdit(f"{name}: must not be empty")
    limit = MAX_CHARS.get(name)
    if limit and len(value) > limit:
        raise InvalidEdit(f"{name}: at most {limit} characters ({len(value)} given)")
    if "\n" in value or "\r" in value:
        raise InvalidEdit(f"{name}: one line only")
    return value


def _choice(name: str, value: Any, allowed: Sequence[str]) -> str:
    if value not in allowed:
        shown = ", ".join(allowed) if len(allowed) <= 30 else ", ".join(allowed[:30]) + ", …"
        raise InvalidEdit(f"{name}: {value!r} is not one of {shown}")
    return str(value)


def _datetime(name: str, value: Any, zone: tzinfo | None) -> datetime:
    if isinstance(value, datetime):
        parsed = value
    else:
        try:
            parsed = datetime.fromisoformat(str(value))
        except ValueError as exc:
            raise InvalidEdit(f"{name}: {value!r} is not an ISO 8601 time (2026-06-01T14:30+08:00)") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone or ZoneInfo("Asia/Shanghai"))
    return parsed


_PHONE_PUNCTUATION = re.compile(r"[\s\-–()（）.+]")


def normalise_phone(value: Any, *, language: str = "zh") -> str:
    """A callback number as the contract writes it (digits only), or ``InvalidEdit``.

    Chinese mobiles (11 digits from 13–19), Beijing landlines with or without 010, and North American
    numbers (10 digits) are accepted; a leading 86 / 0086 / 1 country code is dropped.
    """
    from pipeline.text.phones import validate_number

    text = _PHONE_PUNCTUATION.sub("", str(value))
    if not text.isdigit():
        raise InvalidEdit(f"callback_number: {value!r} has characters other than digits")
    number, _rule = validate_number(text, language)
    if number is None:
        number, _rule = validate_number(text, "en" if language != "en" else "zh")
    # the number found must be the whole input (less a country code or the Beijing area code)
    if number is None or not (text.endswith(number) or number == "010" + text):
        raise InvalidEdit(
            f"callback_number: {value!r} is not a phone number (a mobile like 13911023456, a Beijing "
            "landline like 01063812234, or a North American number like 5552194481)"
        )
    return number


# ---------------------------------------------------------------------------------------------- changes
def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, tuple):
        return list(value)
    return value


def _require_status(ticket: TicketRow, action: str) -> None:
    if ticket.status is not TicketStatus.NEEDS_REVIEW:
        raise Conflict(f"ticket {ticket.id} is {ticket.status.value}; only a ticket that needs review can be "
                       f"{action}", stage="review")


def _require_version(ticket: TicketRow, expected: int | None) -> None:
    if expected is not None and expected != ticket.version:
        raise Conflict(f"ticket {ticket.id} is at version {ticket.version}, not {expected}: someone changed it "
                       "meanwhile; reload it", stage="review")


def edit_ticket(
    session: Session, *, ticket_id: str, changes: Mapping[str, Any], actor: Actor,
    expected_version: int | None = None, zone: tzinfo | None = None, rules: Any = None,
) -> TicketRow:
    """Apply validated ``changes`` (see ``validate_changes``), audit each changed field, raise the version.

    Values equal to the stored ones are not changes; an edit that changes nothing leaves the version
    as it is. Returns the ticket row.
    """
    rules = rules or _rules()
    ticket = repo.get_ticket(session, ticket_id=ticket_id)
    _require_status(ticket, "edited")
    _require_version(ticket, expected_version)
    changes = dict(changes)

    derived: dict[str, Any] = {}
    if "urgency" in changes and "due_at" not in changes and changes["urgency"] != ticket.urgency:
        call = session.get(CallRow, ticket.call_id)
        if call is not None and changes["urgency"] in rules.limits:
            derived["due_at"] = call.received_at + rules.limits[changes["urgency"]]
    routed = {"category", "urgency", "district"} & set(changes)
    if routed and "department" not in changes:
        # an emergency of public_safety.emergency keeps the 110 / 120 / 119 its call's words chose
        from pipeline.extractors.department import route

        numbers = {rules.crime_number, rules.medical_number, rules.rescue_number}
        derived["department"] = route(
            rules, category=changes.get("category", ticket.category), urgency=changes.get("urgency", ticket.urgency),
            district=changes.get("district", ticket.district),
            emergency_number=ticket.department if ticket.department in numbers else None,
        )

    applied: list[tuple[str, Any, Any]] = []
    for name, new in {**derived, **changes}.items():
        old = getattr(ticket, name)
        if name == "due_at":
            same = old is not None and new is not None and old == new
        else:
            same = _jsonable(old) == _jsonable(new)
        if same:
            continue
        setattr(ticket, name, new)
        applied.append((name, old, new))
    if not applied:
        return ticket

    ticket.version += 1
    now = utcnow()
    ticket.updated_at = now
    checked = {name for name in changes}  # what the operator set, not what followed from it
    ticket.needs_review = [f for f in (ticket.needs_review or []) if f not in checked]
    for name, old, new in applied:
        session.add(TicketAuditRow(
            ticket_id=ticket.id, at=now, key_id=actor.key_id, actor=actor.name, action=AuditAction.EDIT,
            field=name, old_value=_jsonable(old), new_value=_jsonable(new), version=ticket.version,
        ))
    session.flush()
    logger.info("ticket %s: %s edited by %s (version %d)", ticket.id, ", ".join(n for n, _, _ in applied),
                actor.name, ticket.version)
    return ticket


def approve_ticket(session: Session, *, ticket_id: str, actor: Actor, reason: str | None = None,
                   expected_version: int | None = None) -> tuple[TicketRow, bool]:
    """Approve a ticket for dispatch; returns ``(ticket, newly_approved)``.

    An already approved (or dispatched) ticket at the expected version is returned unchanged with
    ``newly_approved=False``; a rejected one is a ``Conflict``.
    """
    ticket = repo.get_ticket(session, ticket_id=ticket_id)
    _require_version(ticket, expected_version)
    if ticket.status in (TicketStatus.APPROVED, TicketStatus.DISPATCHED):
        return ticket, False
    _require_status(ticket, "approved")
    _decide(session, ticket, TicketStatus.APPROVED, AuditAction.APPROVE, actor, _reason(reason, required=False))
    return ticket, True


def reject_ticket(session: Session, *, ticket_id: str, actor: Actor, reason: str,
                  expected_version: int | None = None) -> TicketRow:
    """Reject a ticket (not sent onward); the reason is required and kept."""
    ticket = repo.get_ticket(session, ticket_id=ticket_id)
    _require_version(ticket, expected_version)
    _require_status(ticket, "rejected")
    _decide(session, ticket, TicketStatus.REJECTED, AuditAction.REJECT, actor, _reason(reason, required=True))
    return ticket


def _reason(reason: str | None, *, required: bool) -> str | None:
    text = (reason or "").strip()
    if required and not text:
        raise InvalidEdit("reason: a rejection needs a reason")
    if len(text) > REASON_MAX:
        raise InvalidEdit(f"reason: at most {REASON_MAX} characters")
    return text or None


def _decide(session: Session, ticket: TicketRow, status: TicketStatus, action: AuditAction, actor: Actor,
            reason: str | None) -> None:
    now = utcnow()
    old = ticket.status
    ticket.status = status
    ticket.reviewed_at = now
    ticket.reviewed_by = actor.name
    ticket.review_reason = reason
    ticket.updated_at = now
    session.add(TicketAuditRow(
        ticket_id=ticket.id, at=now, key_id=actor.key_id, actor=actor.name, action=action, field="status",
        old_value=old.value, new_value=status.value, reason=reason, version=ticket.version,
    ))
    session.flush()
    logger.info("ticket %s: %s by %s at version %d%s", ticket.id, status.value, actor.name, ticket.version,
                f" ({reason})" if reason else "")


def list_audit(session: Session, *, ticket_id: str) -> list[TicketAuditRow]:
    """The ticket's audit trail, oldest first."""
    query = select(TicketAuditRow).where(TicketAuditRow.ticket_id == ticket_id).order_by(
        TicketAuditRow.at, TicketAuditRow.id)
    return list(session.scalars(query))


# ------------------------------------------------------------------------------------------------ audio
#: (ffprobe format, codec) pairs every current browser plays as they are; anything else is transcoded
_PLAYABLE_CODECS = {"mp3", "flac", "vorbis", "opus", "aac", "pcm_s16le", "pcm_u8", "pcm_s24le", "pcm_f32le"}
_PLAYABLE_FORMATS = {"mp3", "flac", "ogg", "wav", "mov,mp4,m4a,3gp,3g2,mj2"}
_MEDIA_TYPES = {"mp3": "audio/mpeg", "flac": "audio/flac", "ogg": "audio/ogg", "wav": "audio/wav",
                "m4a": "audio/mp4", "aac": "audio/aac"}
_transcode_lock = threading.Lock()


def playable_audio(settings: Settings, *, audio_path: str, audio_sha256: str) -> tuple[Path, str]:
    """A file a browser can play for a stored recording, and its media type.

    MP3, FLAC, Ogg, AAC and PCM WAV are served as stored. Telephone codecs that browsers do not play
    (µ-law and A-law WAV, AMR, GSM…) are transcoded once with ffmpeg to 16-bit PCM WAV at the same rate
    and channels, cached under ``<data_dir>/playable/`` by the audio's SHA-256 (PCM keeps seeking
    exact, which clicking a line of the dialogue relies on). ``StorageError`` when the stored file is
    missing, ``AudioError`` when ffmpeg cannot read it.
    """
    from pipeline.asr.audio import probe

    source = audio_store.resolve(settings.data_dir, audio_path)
    if not source.is_file():
        raise StorageError(f"the stored audio {audio_path} is missing", stage="review")
    cached = settings.data_dir / "playable" / f"{audio_sha256}.wav"
    if cached.is_file():
        return cached, "audio/wav"
    info = probe(source)
    if info.format in _PLAYABLE_FORMATS and info.codec in _PLAYABLE_CODECS:
        ext = source.suffix.lstrip(".").lower()
        return source, _MEDIA_TYPES.get(ext, "application/octet-stream")
    with _transcode_lock:  # one transcode at a time in this process; the rename makes it safe across
        if not cached.is_file():
            _transcode(source, cached)
    return cached, "audio/wav"


def _transcode(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.part.wav")
    command = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", str(source),
               "-vn", "-acodec", "pcm_s16le", "-f", "wav", str(partial)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        partial.unlink(missing_ok=True)
        raise AudioError(f"{source.name}: could not be transcoded for playing: {exc}", stage="review") from exc
    if done.returncode != 0 or not partial.is_file():
        partial.unlink(missing_ok=True)
        reason = (done.stderr or "").strip().splitlines()
        raise AudioError(f"{source.name}: could not be transcoded for playing: "
                         f"{reason[-1] if reason else 'ffmpeg failed'}", stage="review")
    os.replace(partial, target)
    logger.info("transcoded %s for playing (%d bytes)", source.name, target.stat().st_size)
