"""What every connector shares: the payload it sends, what it answers, and the two ways it can fail
(the errors live in ``pipeline.errors`` with the rest of the tree):

    PipelineError
    └── DispatchError                 a hand-off that did not happen
        ├── TransientDispatchError    timeout, connection refused or reset, 5xx, 429: try again later
        │                             (``retry_after`` when the receiver said how long to wait)
        └── PermanentDispatchError    the receiver refused it (other 4xx), or nothing is configured:
                                      retrying the same request cannot help

Both carry ``status_code`` when an HTTP answer came back. Connectors raise nothing else on purpose;
anything else escaping one is a bug, and ``pipeline.dispatch.service`` records it like a transient failure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class AudioRef:
    """The recording a ticket came from: where it is stored and, when configured, a public link."""

    path: str
    """Relative to the data directory (``audio/ab/cd/<sha256>.wav``)."""
    local_path: Path
    """Absolute path on this host, for connectors that attach the bytes."""
    sha256: str
    filename: str
    content_type: str
    size_bytes: int
    duration_s: float | None = None
    url: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path, "url": self.url, "sha256": self.sha256, "filename": self.filename,
            "content_type": self.content_type, "size_bytes": self.size_bytes, "duration_s": self.duration_s,
        }


@dataclass(frozen=True)
class DispatchPayload:
    """One version of an approved ticket, as every connector receives it."""

    ticket_id: str
    call_id: str
    version: int
    reference: str
    """Names this hand-off exactly (call, ticket, version): the webhook's ``Idempotency-Key`` and the
    marker a Zammad ticket carries in its title. Letters, digits and ``_`` only."""
    ticket: Mapping[str, Any]
    """The ticket contract's fields (``TICKET_SCHEMA.md``), with ``evidence``."""
    transcript_text: str
    language: str
    audio: AudioRef
    received_at: str
    """When the call came in, ISO 8601 in the hotline's time zone."""
    line: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The JSON body of a webhook delivery (see the README's webhook contract)."""
        return {
            "reference": self.reference,
            "ticket_id": self.ticket_id,
            "call_id": self.call_id,
            "version": self.version,
            "received_at": self.received_at,
            "line": self.line,
            "ticket": dict(self.ticket),
            "transcript": {"language": self.language, "text": self.transcript_text},
            "audio": self.audio.to_dict(),
        }


@dataclass(frozen=True)
class SendResult:
    """What the receiving system answered to an accepted hand-off."""

    external_ref: str | None = None
    """The receiver's id for the ticket."""
    external_url: str | None = None
    status_code: int | None = None
    reused: bool = False
    """True when the receiver already had it (found by reference, or an idempotent replay)."""


@runtime_checkable
class Connector(Protocol):
    """Sends one ticket version onward. ``send`` is safe to call again with the same payload: the
    receiver must end up with one ticket (idempotency key, or look before creating)."""

    name: str

    def send(self, payload: DispatchPayload) -> SendResult:
        """Hand the payload over; ``TransientDispatchError`` or ``PermanentDispatchError`` when it fails."""
        ...


def make_reference(*, call_id: str, ticket_id: str, version: int) -> str:
    """The reference of one ticket version: ``callintake_<call id>_<ticket id>_v<version>``.

    The call id is what the receiving side knows the case by; the ticket id keeps two tickets of one
    call (drafted by different rules versions) apart. Only letters, digits and ``_``, so that search
    engines (Zammad's Elasticsearch) keep it as one word.

    >>> make_reference(call_id="3f2a9c0d5e6b7a81", ticket_id="00aa11bb22cc33dd", version=2)
    'callintake_3f2a9c0d5e6b7a81_00aa11bb22cc33dd_v2'
    """
    safe = ["".join(ch if ch.isascii() and ch.isalnum() else "_" for ch in part) for part in (call_id, ticket_id)]
    return f"callintake_{safe[0]}_{safe[1]}_v{int(version)}"
