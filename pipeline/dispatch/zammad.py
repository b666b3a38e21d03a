"""Zammad: create a ticket through its REST API, with the transcript as the first article and the
recording attached.

Requests (Zammad's documented API, token authentication ``Authorization: Token token=<token>``):

* ``GET  <url>/api/v1/tickets/search?query=<reference>&limit=50`` before every create;
* ``POST <url>/api/v1/tickets`` with ``title``, ``group``, ``customer_id`` (when configured),
  ``priority``, ``note`` and an ``article`` (``type: phone``, ``content_type: text/plain``, the ticket
  fields and the transcript as ``body``, the recording as ``attachments: [{filename, data (base64),
  mime-type}]``).

Zammad takes no idempotency key, so the connector looks before it creates: the reference
(``callintake_<call>_<ticket>_v<version>``) goes at the end of the title and into ``note``, and a ticket
whose title or note carries it is the one already created (say, when the answer to an earlier create was
lost to a timeout). The search is Zammad's full-text search; with Elasticsearch behind it a ticket is
found once it has been indexed (normally within seconds), which the retry intervals leave time for.

A recording larger than ``zammad_max_attachment_mb`` is linked in the article instead of attached.
"""

from __future__ import annotations

import base64
import json
import logging
from typing import Any
from urllib.parse import urlencode

from pipeline.dispatch import http
from pipeline.dispatch.base import DispatchPayload, SendResult
from pipeline.dispatch.registry import register
from pipeline.errors import PermanentDispatchError, TransientDispatchError
from pipeline.settings import DispatchSettings

logger = logging.getLogger(__name__)

TITLE_MAX = 250
SEARCH_LIMIT = 50
#: Zammad's default priorities
PRIORITY_BY_URGENCY = {"emergency": "3 high", "urgent": "3 high", "normal": "2 normal"}
#: how the ticket fields are labelled in the article
FIELD_LABELS = (
    ("request_type", "诉求类型 request type"), ("category", "分类 category"), ("urgency", "紧急程度 urgency"),
    ("due_at", "办结时限 due"), ("department", "承办单位 department"), ("district", "区 district"),
    ("street", "街道/乡镇 street"), ("community", "社区 community"), ("address", "地址 address"),
    ("callback_number", "回访电话 callback"), ("caller_surname", "来电人 surname"),
    ("vulnerable", "特殊群体 vulnerable"), ("amounts", "金额 amounts"), ("language", "语言 language"),
)


@register("zammad")
class ZammadConnector:
    """Creates one Zammad ticket per ticket version; see the module docstring."""

    name = "zammad"

    def __init__(self, settings: DispatchSettings) -> None:
        self.base_url = settings.url.strip().rstrip("/")
        self.token = settings.token.get_secret_value()
        self.timeout_s = settings.timeout_s
        self.group = settings.zammad_group
        self.customer = settings.zammad_customer.strip()
        self.max_attachment_bytes = int(settings.zammad_max_attachment_mb * (1 << 20))
        if not self.base_url:
            raise PermanentDispatchError("Zammad's URL is not set (CALLINTAKE_DISPATCH__URL)")
        if not self.token:
            raise PermanentDispatchError("no Zammad access token is set (CALLINTAKE_DISPATCH__TOKEN)")

    # ------------------------------------------------------------------------------------------ API
    def send(self, payload: DispatchPayload) -> SendResult:
        existing = self.find(payload.reference)
        if existing is not None:
            logger.info("call %s: Zammad already has ticket %s for %s", payload.call_id, existing.external_ref,
                        payload.reference)
            return existing
        body = json.dumps(self.ticket_body(payload), ensure_ascii=False).encode()
        answer = http.request("POST", f"{self.base_url}/api/v1/tickets", body=body, headers=self._headers(),
                              timeout=self.timeout_s)
        data = answer.json()
        if not isinstance(data, dict) or data.get("id") in (None, ""):
            # created or not, the next attempt's search tells
            raise TransientDispatchError(
                f"Zammad answered {answer.status} to the create without a ticket id", status_code=answer.status
            )
        ticket_id = str(data["id"])
        return SendResult(external_ref=ticket_id, external_url=self.ticket_url(ticket_id),
                          status_code=answer.status)

    def find(self, reference: str) -> SendResult | None:
        """The Zammad ticket that carries ``reference`` in its title or note (the oldest, if several)."""
        query = urlencode({"query": reference, "limit": SEARCH_LIMIT})
        answer = http.request("GET", f"{self.base_url}/api/v1/tickets/search?{query}", headers=self._headers(),
                              timeout=self.timeout_s)
        matches = [t for t in _search_hits(answer.json()) if _carries(t, reference)]
        if not matches:
            return None
        first = min(matches, key=lambda t: _int_or_max(t.get("id")))
        ticket_id = str(first["id"])
        return SendResult(external_ref=ticket_id, external_url=self.ticket_url(ticket_id),
                          status_code=answer.status, reused=True)

    def ticket_url(self, ticket_id: str) -> str:
        """The agent interface's link to a ticket."""
        return f"{self.base_url}/#ticket/zoom/{ticket_id}"

    # ------------------------------------------------------------------------------------- the body
    def ticket_body(self, payload: DispatchPayload) -> dict[str, Any]:
        """The JSON of ``POST /api/v1/tickets`` for ``payload``."""
        ticket = payload.ticket
        suffix = f" [{payload.reference}]"
        summary = " ".join(str(ticket.get("summary") or "").split()) or f"来电 {payload.call_id}"
        title = summary[: TITLE_MAX - len(suffix)] + suffix
        article: dict[str, Any] = {
            "subject": summary[:TITLE_MAX],
            "body": self.article_text(payload),
            "content_type": "text/plain",
            "type": "phone",
            "internal": False,
        }
        attachment = self._attachment(payload)
        if attachment is not None:
            article["attachments"] = [attachment]
        body: dict[str, Any] = {
            "title": title,
            "group": self.group,
            "priority": PRIORITY_BY_URGENCY.get(str(ticket.get("urgency")), "2 normal"),
            "note": payload.reference,
            "article": article,
        }
        if self.customer:
            body["customer_id"] = self.customer
        return body

    def article_text(self, payload: DispatchPayload) -> str:
        """The first article: the ticket fields, where the recording is, and the whole transcript."""
        ticket = payload.ticket
        lines = [str(ticket.get("summary") or ""), ""]
        for name, label in FIELD_LABELS:
            value = ticket.get(name)
            if value in (None, "", []):
                continue
            if isinstance(value, list):
                value = ", ".join(str(v) for v in value)
            lines.append(f"{label}: {value}")
        lines += [
            f"来电时间 received: {payload.received_at}",
            f"录音 recording: {payload.audio.url or payload.audio.path}",
            f"参考编号 reference: {payload.reference}",
            "",
            "通话记录 transcript:",
            payload.transcript_text,
        ]
        return "\n".join(lines)

    def _attachment(self, payload: DispatchPayload) -> dict[str, str] | None:
        audio = payload.audio
        if audio.size_bytes > self.max_attachment_bytes:
            logger.info("call %s: recording of %d bytes is linked, not attached", payload.call_id, audio.size_bytes)
            return None
        try:
            data = audio.local_path.read_bytes()
        except OSError as exc:
            # a shared volume that is not mounted here now may be on the next attempt
            raise TransientDispatchError(f"the recording {audio.path} cannot be read: {exc}") from exc
        return {"filename": audio.filename, "data": base64.b64encode(data).decode("ascii"),
                "mime-type": audio.content_type}

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Token token={self.token}", "Content-Type": "application/json; charset=utf-8"}


def _search_hits(data: Any) -> list[dict[str, Any]]:
    """Tickets in a search answer: ``{"tickets": [ids], "assets": {"Ticket": {id: {...}}}}`` or, with
    ``expand=true``, a plain list of tickets."""
    if isinstance(data, list):
        return [t for t in data if isinstance(t, dict)]
    if not isinstance(data, dict):
        return []
    assets = (data.get("assets") or {}).get("Ticket") or {}
    if not isinstance(assets, dict):
        return []
    ids = data.get("tickets")
    if isinstance(ids, list):
        return [assets[str(i)] for i in ids if isinstance(assets.get(str(i)), dict)]
    return [t for t in assets.values() if isinstance(t, dict)]


def _carries(ticket: dict[str, Any], reference: str) -> bool:
    return reference in str(ticket.get("title") or "") or reference in str(ticket.get("note") or "")


def _int_or_max(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 1 << 62
