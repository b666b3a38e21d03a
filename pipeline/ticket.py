"""The ticket draft: every field of the ticket contract, with evidence, confidence and review flags.

Field names and values follow ``TICKET_SCHEMA.md`` exactly; ``to_dict`` is the JSON form that
``callintake process --json`` prints under ``"ticket"`` and that the API returns.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

REQUEST_TYPES = ("complaint", "help", "consultation", "suggestion", "report", "praise")
URGENCIES = ("emergency", "urgent", "normal")
VULNERABLE = ("child", "disabled", "elderly", "pregnant")

#: the fields of the contract, in the order they are shown
FIELDS = (
    "request_type", "category", "urgency", "due_at", "district", "street", "community", "address",
    "department", "callback_number", "caller_surname", "vulnerable", "amounts", "summary", "language",
)


class TicketStatus(StrEnum):
    NEEDS_REVIEW = "needs_review"
    APPROVED = "approved"
    REJECTED = "rejected"
    DISPATCHED = "dispatched"


@dataclass(frozen=True)
class Evidence:
    """Where a field's value came from: a span of ``Transcript.text`` and the rule that fired."""

    rule: str
    start_char: int
    end_char: int
    text: str
    start_s: float | None = None
    end_s: float | None = None
    speaker: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule, "start_char": self.start_char, "end_char": self.end_char, "text": self.text,
            "start_s": self.start_s, "end_s": self.end_s, "speaker": self.speaker,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Evidence:
        return cls(
            rule=str(data["rule"]), start_char=int(data["start_char"]), end_char=int(data["end_char"]),
            text=str(data.get("text", "")), start_s=data.get("start_s"), end_s=data.get("end_s"),
            speaker=data.get("speaker"),
        )


@dataclass(frozen=True)
class TicketDraft:
    request_type: str
    category: str
    urgency: str
    due_at: datetime
    department: str
    summary: str
    language: str
    district: str | None = None
    street: str | None = None
    community: str | None = None
    address: str | None = None
    callback_number: str | None = None
    caller_surname: str | None = None
    vulnerable: tuple[str, ...] = ()
    amounts: tuple[float, ...] = ()
    evidence: Mapping[str, tuple[Evidence, ...]] = field(default_factory=dict)
    confidence: Mapping[str, float] = field(default_factory=dict)
    needs_review: tuple[str, ...] = ()
    rules_version: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The contract's JSON form (plus ``confidence``, ``needs_review`` and ``rules_version``)."""
        amounts = [int(a) if float(a).is_integer() else a for a in self.amounts]
        return {
            "request_type": self.request_type,
            "category": self.category,
            "urgency": self.urgency,
            "due_at": self.due_at.isoformat(),
            "district": self.district,
            "street": self.street,
            "community": self.community,
            "address": self.address,
            "department": self.department,
            "callback_number": self.callback_number,
            "caller_surname": self.caller_surname,
            "vulnerable": sorted(self.vulnerable),
            "amounts": amounts,
            "summary": self.summary,
            "language": self.language,
            "evidence": {name: [e.to_dict() for e in spans] for name, spans in self.evidence.items()},
            "confidence": {name: round(value, 3) for name, value in self.confidence.items()},
            "needs_review": list(self.needs_review),
            "rules_version": self.rules_version,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TicketDraft:
        return cls(
            request_type=data["request_type"], category=data["category"], urgency=data["urgency"],
            due_at=datetime.fromisoformat(data["due_at"]), department=data["department"],
            summary=data["summary"], language=data["language"], district=data.get("district"),
            street=data.get("street"), community=data.get("community"), address=data.get("address"),
            callback_number=data.get("callback_number"), caller_surname=data.get("caller_surname"),
            vulnerable=tuple(data.get("vulnerable") or ()), amounts=tuple(data.get("amounts") or ()),
            evidence={k: tuple(Evidence.from_dict(e) for e in v) for k, v in (data.get("evidence") or {}).items()},
            confidence=dict(data.get("confidence") or {}),
            needs_review=tuple(data.get("needs_review") or ()),
            rules_version=str(data.get("rules_version") or ""),
        )
