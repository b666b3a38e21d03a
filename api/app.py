"""The application factory.

``create_app(settings)`` wires one ``ApiState`` (settings, database engine and sessions, the Redis
connection for the queues) into a FastAPI app with the routers, the error handlers and a streaming
upload size limit. A SQLite database is migrated when the app starts; PostgreSQL is migrated by
``callintake db upgrade``. Nothing connects at import time, and a database that is down when the app
starts only makes requests answer 503 until it is back.

Example::

    uvicorn.run(create_app(Settings()), host="127.0.0.1", port=8000)
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import error_body, install_error_handlers
from pipeline.errors import PipelineError
from pipeline.intake import max_upload_bytes
from pipeline.settings import Settings
from pipeline.storage.db import is_sqlite, make_engine, make_session_factory, upgrade

logger = logging.getLogger(__name__)

#: room for the multipart envelope and the metadata fields on top of the audio itself
MULTIPART_SLACK_BYTES = 256 * 1024


@dataclass
class ApiState:
    """Everything a request handler needs, built once per app."""

    settings: Settings
    engine: Engine
    session_factory: sessionmaker[Session]
    redis: Any = None
    """Redis connection for the queues (``None`` with ``queue_mode="inline"``)."""
    _transcriber: Any = None
    _transcriber_lock: threading.Lock = field(default_factory=threading.Lock)

    def transcriber(self) -> Any:
        """The speech model for inline processing, loaded on first use."""
        with self._transcriber_lock:
            if self._transcriber is None:
                from pipeline.asr import load_transcriber

                self._transcriber = load_transcriber(self.settings)
            return self._transcriber


def get_state(request: Request) -> ApiState:
    """FastAPI dependency: the app's ``ApiState``."""
    state: ApiState = request.app.state.callintake
    return state


#: a handler parameter annotated with this receives the app's ``ApiState``
State = Annotated[ApiState, Depends(get_state)]


class UploadLimit:
    """Refuse request bodies over ``max_bytes`` on upload routes with 413, without reading them whole.

    A declared ``Content-Length`` over the limit is answered before the body is read; a body that
    grows past the limit while streaming (chunked uploads) is cut off and answered 413 as well.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int, paths: tuple[str, ...] = ("/calls",)) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.paths = paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        upload = scope["type"] == "http" and scope["method"] == "POST" and scope["path"].rstrip("/") in self.paths
        if not upload:
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or ()).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._too_large(send)
            return

        seen = 0
        exceeded = False
        started = False

        async def limited_receive() -> Message:
            nonlocal seen, exceeded
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    exceeded = True
                    raise _BodyTooLarge()
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded:
                return  # whatever the app made of the cut-off body, the answer is 413
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except _BodyTooLarge:
            pass
        except Exception:
            if not exceeded:
                raise
        if exceeded and not started:
            await self._too_large(send)

    async def _too_large(self, send: Send) -> None:
        import json

        limit_mib = (self.max_bytes - MULTIPART_SLACK_BYTES) / (1 << 20)
        body = json.dumps(error_body(
            "audio_too_large", f"upload is larger than the limit of {limit_mib:g} MiB", "upload"
        )).encode()
        await send({"type": "http.response.start", "status": 413, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]})
        await send({"type": "http.response.body", "body": body})


class _BodyTooLarge(Exception):
    pass


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the API for ``settings`` (default: from the environment)."""
    from api.auth import install_auth_handlers
    from api.routers import calls, dispatch, followup, health, review, tickets

    settings = settings or Settings()
    engine = make_engine(settings)
    redis = None
    if settings.queue_mode == "rq":
        from workers.queues import connect

        redis = connect(settings)
    state = ApiState(
        settings=settings, engine=engine, session_factory=make_session_factory(engine), redis=redis
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if is_sqlite(settings.resolved_database_url):
            try:
                upgrade(settings)
            except PipelineError:
                logger.exception("could not migrate the database; requests will fail until it is reachable")
        yield
        engine.dispose()
        if redis is not None:
            redis.close()

    app = FastAPI(
        title="callintake",
        version="0.1.0",
        summary="Recorded hotline calls in, reviewed tickets out.",
        description="Upload a recorded call; it is transcribed and turned into a ticket draft for review.",
        lifespan=lifespan,
    )
    app.state.callintake = state
    install_error_handlers(app)
    install_auth_handlers(app)
    tickets.install_handlers(app)
    app.include_router(calls.router)
    app.include_router(tickets.router)
    app.include_router(health.router)
    app.include_router(review.router)
    app.include_router(dispatch.router)
    app.include_router(followup.router)
    review.mount_static(app)
    from api.routers import admin, metrics

    app.include_router(admin.router)
    app.include_router(metrics.router)
    app.add_middleware(UploadLimit, max_bytes=max_upload_bytes(settings) + MULTIPART_SLACK_BYTES)  # type: ignore[arg-type]
    return app
