"""A real HTTP ticket system on loopback for tests: a webhook receiver and enough of Zammad's REST API.

It records every request (method, path, query, headers, raw body) and can be told how to misbehave
for the next requests: answer with a status (503, 429 with ``Retry-After``, 400), hang past the client's
timeout without doing anything, or do the work and then hang (the answer is lost, the work is done).

Endpoints:

* ``POST <any other path>``: a webhook receiver. Answers 201 ``{"id", "url"}`` for a new
  ``Idempotency-Key`` and 200 ``{"id", "url", "duplicate": true}`` for one it has seen; ``deliveries``
  maps each key to the body it first accepted.
* ``POST /api/v1/tickets``, ``GET /api/v1/tickets/search?query=&limit=``, ``GET /api/v1/tickets/<id>``:
  Zammad's ticket create, search and show, behind ``Authorization: Token token=<token>``. Create checks
  the fields Zammad requires (``title``, ``group``, ``article``) and keeps the article with its
  attachments; search matches the query as a substring of title, note or number (Zammad's
  database search) and answers in Zammad's shape (``tickets`` ids plus ``assets.Ticket``).

Usage::

    with TicketServer() as server:
        server.fail_next(2, status=503)
        ...  # point the connector at server.url
        assert len(server.requests) == 3

or the ``ticket_server`` fixture: ``from support.ticket_server import ticket_server_fixture  # noqa: F401``
in the test module, then a ``ticket_server`` parameter.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

ZAMMAD_TOKEN = "zammad-test-token"


@dataclass
class Recorded:
    """One request as the server received it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    at: float
    answered: int | None = None
    """The status sent back, or ``None`` while hanging or when the answer was lost."""

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == lowered), None)

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class _Behaviour:
    kind: str  # "status", "hang", "lose"
    count: int
    status: int = 503
    seconds: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    method: str | None = None
    path: str | None = None

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and (self.path is None or path == self.path)


class TicketServer:
    """See the module docstring."""

    def __init__(self, host: str = "127.0.0.1", *, zammad_token: str = ZAMMAD_TOKEN) -> None:
        self.zammad_token = zammad_token
        self.requests: list[Recorded] = []
        self.deliveries: dict[str, bytes] = {}
        self.tickets: dict[int, dict[str, Any]] = {}
        self._behaviours: list[_Behaviour] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._next_id = 1
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner._handle(self)

            def do_POST(self) -> None:
                owner._handle(self)

            def do_PUT(self) -> None:
                owner._handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer((host, 0), Handler)
        self._httpd.daemon_threads = True
        self._httpd.block_on_close = False
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="ticket-server", daemon=True)

    # ------------------------------------------------------------------------------------ lifecycle
    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> TicketServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes every hanging handler
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> TicketServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---------------------------------------------------------------------------------- behaviour
    def fail_next(self, count: int = 1, *, status: int = 503, headers: dict[str, str] | None = None,
                  body: Any = None, method: str | None = None, path: str | None = None) -> None:
        """Answer the next ``count`` matching requests with ``status`` (and a JSON ``{"error": body}``)."""
        self._add(_Behaviour("status", count, status=status, headers=dict(headers or {}), body=body,
                             method=method, path=path))

    def hang_next(self, count: int = 1, *, seconds: float, method: str | None = None,
                  path: str | None = None) -> None:
        """Do nothing for ``seconds`` on the next ``count`` matching requests, then answer 504."""
        self._add(_Behaviour("hang", count, seconds=seconds, method=method, path=path))

    def lose_next(self, count: int = 1, *, seconds: float, method: str | None = None,
                  path: str | None = None) -> None:
        """Handle the next ``count`` matching requests fully, then wait ``seconds`` before answering."""
        self._add(_Behaviour("lose", count, seconds=seconds, method=method, path=path))

    def _add(self, behaviour: _Behaviour) -> None:
        with self._lock:
            self._behaviours.append(behaviour)

    def _take(self, method: str, path: str) -> _Behaviour | None:
        with self._lock:
            for behaviour in self._behaviours:
                if behaviour.count > 0 and behaviour.matches(method, path):
                    behaviour.count -= 1
                    return behaviour
            return None

    # ---------------------------------------------------------------------------------- inspection
    def recorded(self, *, method: str | None = None, path: str | None = None) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests
                    if (method is None or r.method == method) and (path is None or r.path == path)]

    def wait_for(self, predicate: Any, *, timeout: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self):
                return True
            time.sleep(0.05)
        return bool(predicate(self))

    # ------------------------------------------------------------------------------------ handling
    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        record = Recorded(method=handler.command, path=parts.path, query=parse_qs(parts.query),
                          headers=dict(handler.headers.items()), body=body, at=time.time())
        with self._lock:
            self.requests.append(record)
        behaviour = self._take(handler.command, parts.path)
        if behaviour is not None and behaviour.kind == "status":
            payload = {"error": behaviour.body or f"told to answer {behaviour.status}"}
            self._answer(handler, record, behaviour.status, payload, behaviour.headers)
            return
        if behaviour is not None and behaviour.kind == "hang":
            self._stopping.wait(behaviour.seconds)
            self._answer(handler, record, 504, {"error": "hung"}, {}, lost=True)
            return
        status, payload, headers = self._route(record)
        if behaviour is not None and behaviour.kind == "lose":
            self._stopping.wait(behaviour.seconds)
            self._answer(handler, record, status, payload, headers, lost=True)
            return
        self._answer(handler, record, status, payload, headers)

    def _answer(self, handler: BaseHTTPRequestHandler, record: Recorded, status: int, payload: Any,
                headers: dict[str, str], *, lost: bool = False) -> None:
        data = json.dumps(payload, ensure_ascii=False).encode()
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json; charset=utf-8")
            handler.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(data)
            handler.wfile.flush()
        except OSError:  # the client gave up waiting
            return
        if not lost:
            record.answered = status

    def _route(self, record: Recorded) -> tuple[int, Any, dict[str, str]]:
        if record.path.startswith("/api/v1/"):
            if record.header("Authorization") != f"Token token={self.zammad_token}":
                return 401, {"error": "authentication failed"}, {}
            if record.method == "POST" and record.path == "/api/v1/tickets":
                return self._zammad_create(record)
            if record.method == "GET" and record.path == "/api/v1/tickets/search":
                return self._zammad_search(record)
            if record.method == "GET" and record.path.startswith("/api/v1/tickets/"):
                ticket = self.tickets.get(_int(record.path.rsplit("/", 1)[-1]))
                return (200, _public(ticket), {}) if ticket else (404, {"error": "Not Found"}, {})
            return 404, {"error": "No route matches"}, {}
        if record.method == "POST":
            return self._webhook(record)
        return 404, {"error": "not found"}, {}

    def _webhook(self, record: Recorded) -> tuple[int, Any, dict[str, str]]:
        key = record.header("Idempotency-Key") or ""
        with self._lock:
            if key and key in self.deliveries:
                ext = f"WH-{list(self.deliveries).index(key) + 1}"
                return 200, {"id": ext, "url": f"{self.url}/tickets/{ext}", "duplicate": True}, {}
            self.deliveries[key] = record.body
            ext = f"WH-{len(self.deliveries)}"
        return 201, {"id": ext, "url": f"{self.url}/tickets/{ext}"}, {}

    def _zammad_create(self, record: Recorded) -> tuple[int, Any, dict[str, str]]:
        try:
            data = record.json()
        except ValueError:
            return 422, {"error": "Unable to parse JSON"}, {}
        missing = [name for name in ("title", "group", "article") if not (data or {}).get(name)]
        if missing:
            return 422, {"error": f"Missing required value for {', '.join(missing)}!",
                         "error_human": f"{', '.join(missing)} is required"}, {}
        article = dict(data["article"])
        attachments = []
        for item in article.pop("attachments", None) or []:
            attachments.append({"filename": item["filename"], "mime-type": item["mime-type"],
                                "data": base64.b64decode(item["data"], validate=True)})
        with self._lock:
            ticket_id = self._next_id
            self._next_id += 1
            self.tickets[ticket_id] = {
                "id": ticket_id, "number": str(31000 + ticket_id), "title": data["title"],
                "group": data["group"], "customer_id": data.get("customer_id"),
                "priority": data.get("priority"), "note": data.get("note"),
                "article": article, "attachments": attachments, "article_ids": [ticket_id * 10],
                "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
            return 201, _public(self.tickets[ticket_id]), {}

    def _zammad_search(self, record: Recorded) -> tuple[int, Any, dict[str, str]]:
        query = (record.query.get("query") or [""])[0]
        limit = _int((record.query.get("limit") or ["10"])[0]) or 10
        with self._lock:
            hits = [t for t in self.tickets.values()
                    if query and any(query in str(t.get(k) or "") for k in ("title", "note", "number"))][:limit]
            return 200, {"tickets": [t["id"] for t in hits], "tickets_count": len(hits),
                         "assets": {"Ticket": {str(t["id"]): _public(t) for t in hits}}}, {}


def _public(ticket: dict[str, Any] | None) -> dict[str, Any]:
    """A stored ticket as Zammad shows it (no article bodies or attachment bytes)."""
    if ticket is None:
        return {}
    return {k: v for k, v in ticket.items() if k not in ("article", "attachments", "group")} | {"group_id": 1}


def _int(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        return 0


@pytest.fixture(name="ticket_server")
def ticket_server_fixture() -> Iterator[TicketServer]:
    """A running ``TicketServer`` on a free loopback port, stopped after the test."""
    server = TicketServer().start()
    try:
        yield server
    finally:
        server.stop()
