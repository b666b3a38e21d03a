"""The generic webhook: POST the ticket as signed JSON to one URL.

Every delivery is ``POST <url>`` with ``Content-Type: application/json; charset=utf-8``, the body of
``DispatchPayload.to_json`` (UTF-8, keys sorted), and these headers:

=============================  ==========================================================================
``Idempotency-Key``            the payload's reference, ``callintake_<call>_<ticket>_v<version>``: the same
                               for every retry of one version, new for each edited and re-approved version
``X-Callintake-Timestamp``     Unix seconds when this attempt was signed
``X-Callintake-Signature``     ``sha256=<hex>``: HMAC-SHA256 under the shared secret of
                               ``<timestamp>.<raw body bytes>``
``X-Callintake-Delivery``      a fresh id per attempt (for the receiver's logs)
=============================  ==========================================================================

A receiver recomputes the HMAC over the timestamp header, a ``.``, and the body exactly as received,
compares it in constant time, and refuses timestamps more than five minutes from its clock (so a
captured request cannot be replayed later). ``verify_signature`` below is that check.

The receiver answers 2xx to accept (a JSON body's ``id`` and ``url`` are kept as the external id and
link), 2xx again for a key it has seen (idempotent replay), 5xx or 429 (with ``Retry-After``) to be
asked again later, and any other 4xx to refuse for good (the body's ``error``/``message`` is recorded
as the reason).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Mapping

from pipeline.dispatch import http
from pipeline.dispatch.base import DispatchPayload, SendResult
from pipeline.dispatch.registry import register
from pipeline.errors import PermanentDispatchError
from pipeline.settings import DispatchSettings

SIGNATURE_HEADER = "X-Callintake-Signature"
TIMESTAMP_HEADER = "X-Callintake-Timestamp"
DELIVERY_HEADER = "X-Callintake-Delivery"
IDEMPOTENCY_HEADER = "Idempotency-Key"
#: how far a receiver should let a timestamp be from its own clock
TOLERANCE_S = 300


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """The signature header value for ``body`` sent at ``timestamp``: ``sha256=<hex>``.

    >>> sign(b"s3cret", "1700000000", b'{"a":1}')
    'sha256=1698a50bc74d1ff1db85c4e0a5297c2ad9fdba245d5737cdb789e4cc6e098940'
    """
    mac = hmac.new(secret, timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_signature(
    secret: bytes, headers: Mapping[str, str], body: bytes, *, now: float | None = None,
    tolerance_s: int = TOLERANCE_S,
) -> bool:
    """The receiver's check: the signature matches the timestamp and body, and the timestamp is recent."""
    lowered = {k.lower(): v for k, v in headers.items()}
    timestamp = lowered.get(TIMESTAMP_HEADER.lower(), "")
    signature = lowered.get(SIGNATURE_HEADER.lower(), "")
    if not timestamp.isdigit() or not signature.startswith("sha256="):
        return False
    if abs((now if now is not None else time.time()) - int(timestamp)) > tolerance_s:
        return False
    return hmac.compare_digest(signature, sign(secret, timestamp, body))


def encode_body(payload: DispatchPayload) -> bytes:
    """The exact bytes posted: compact UTF-8 JSON with sorted keys (the same for every retry)."""
    return json.dumps(payload.to_json(), ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


@register("webhook")
class WebhookConnector:
    """POST signed JSON to ``settings.url``; see the module docstring for the contract."""

    name = "webhook"

    def __init__(self, settings: DispatchSettings) -> None:
        self.url = settings.url.strip()
        self.secret = settings.secret.get_secret_value().encode()
        self.timeout_s = settings.timeout_s
        if not self.url:
            raise PermanentDispatchError("the webhook URL is not set (CALLINTAKE_DISPATCH__URL)")
        if not self.secret:
            raise PermanentDispatchError(
                "the webhook secret is not set (CALLINTAKE_DISPATCH__SECRET); deliveries are always signed"
            )

    def send(self, payload: DispatchPayload) -> SendResult:
        body = encode_body(payload)
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            IDEMPOTENCY_HEADER: payload.reference,
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(self.secret, timestamp, body),
            DELIVERY_HEADER: uuid.uuid4().hex,
        }
        answer = http.request("POST", self.url, body=body, headers=headers, timeout=self.timeout_s)
        data = answer.json()
        external_ref = external_url = None
        if isinstance(data, dict):
            ref = data.get("id", data.get("ticket_id"))
            external_ref = str(ref) if ref not in (None, "") else None
            url = data.get("url")
            external_url = str(url) if isinstance(url, str) and url else None
        location = {k.lower(): v for k, v in answer.headers.items()}.get("location")
        return SendResult(external_ref=external_ref, external_url=external_url or location,
                          status_code=answer.status, reused=bool(isinstance(data, dict) and data.get("duplicate")))

