"""One HTTP request with the connectors' failure rules, on the standard library (no client to install).

* a 2xx answer is returned;
* a timeout (connecting, or waiting for any part of the answer), a refused or reset connection, a
  5xx answer and 429 raise ``TransientDispatchError`` (with ``retry_after`` from a ``Retry-After``
  header, in seconds or as an HTTP date);
* any other answer, redirects included (a POST is never replayed elsewhere), raises
  ``PermanentDispatchError`` with the status and the receiver's reason;
* a URL that cannot be used raises ``PermanentDispatchError`` without sending anything.

Proxies come from the usual environment variables (``https_proxy``, ``no_proxy``).
"""

from __future__ import annotations

import http.client
import json
import logging
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from pipeline.errors import PermanentDispatchError, TransientDispatchError

logger = logging.getLogger(__name__)

#: how much of an error answer is kept as the reason
REASON_MAX_CHARS = 500
#: an answer body larger than this is not read whole (the receiver is misbehaving)
MAX_RESPONSE_BYTES = 4 << 20
USER_AGENT = "callintake/0.1"


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        """The body as JSON, or ``None`` when it is empty or not JSON."""
        if not self.body.strip():
            return None
        try:
            return json.loads(self.body)
        except ValueError:
            return None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirect())


def request(
    method: str, url: str, *, body: bytes | None = None, headers: Mapping[str, str] | None = None,
    timeout: float,
) -> HttpResponse:
    """Send one request and return the 2xx answer; the module docstring says what is raised otherwise."""
    all_headers = {"User-Agent": USER_AGENT, "Accept": "application/json", **(headers or {})}
    try:
        req = urllib.request.Request(url, data=body, headers=all_headers, method=method)
    except ValueError as exc:
        raise PermanentDispatchError(f"cannot send to {url!r}: {exc}") from exc
    if req.type not in ("http", "https"):
        raise PermanentDispatchError(f"cannot send to {url!r}: only http and https URLs are supported")
    where = f"{method} {_safe_url(url)}"
    try:
        with _opener.open(req, timeout=timeout) as answer:
            data = answer.read(MAX_RESPONSE_BYTES)
            return HttpResponse(status=answer.status, headers=dict(answer.headers.items()), body=data)
    except urllib.error.HTTPError as exc:
        status = exc.code
        try:
            data = exc.read(MAX_RESPONSE_BYTES)
        except (OSError, http.client.HTTPException):
            data = b""
        reason = f"{where}: HTTP {status} {exc.reason}{_excerpt(data)}"
        if status == 429 or status >= 500:
            raise TransientDispatchError(
                reason, status_code=status, retry_after=parse_retry_after(exc.headers.get("Retry-After"))
            ) from exc
        raise PermanentDispatchError(reason, status_code=status) from exc
    except TimeoutError as exc:
        raise TransientDispatchError(f"{where}: no answer within {timeout:g} s") from exc
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError):
            raise TransientDispatchError(f"{where}: no connection within {timeout:g} s") from exc
        raise TransientDispatchError(f"{where}: cannot connect: {exc.reason}") from exc
    except (http.client.HTTPException, OSError) as exc:
        raise TransientDispatchError(f"{where}: connection failed: {type(exc).__name__}: {exc}") from exc


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta seconds or an HTTP date); ``None`` if absent
    or unreadable.

    >>> parse_retry_after("120")
    120.0
    >>> parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=datetime(2015, 10, 21, 7, 27, tzinfo=UTC))
    60.0
    """
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _excerpt(data: bytes) -> str:
    """The receiver's reason from an error body: a JSON ``error``/``message``, or the text itself."""
    if not data.strip():
        return ""
    text: str | None = None
    try:
        parsed = json.loads(data)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        for key in ("error_human", "error", "message", "detail", "reason"):
            value = parsed.get(key)
            if isinstance(value, str) and value.strip():
                text = value
                break
            if isinstance(value, dict) and isinstance(value.get("message"), str):
                text = value["message"]
                break
    if text is None:
        text = data.decode("utf-8", "replace")
    text = " ".join(text.split())
    if len(text) > REASON_MAX_CHARS:
        text = text[: REASON_MAX_CHARS - 1] + "…"
    return f": {text}"


def _safe_url(url: str) -> str:
    """The URL without its query string or credentials, for messages."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))
