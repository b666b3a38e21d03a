"""The job functions RQ runs. Thin: take ids, call ``pipeline.service``, return a small summary.

A worker process installs a ``WorkerContext`` (settings, database sessions, the loaded speech model)
before it takes jobs (``workers.worker.run_worker``); a job run by any other RQ worker builds one from
the environment on its first call. Failures that retrying cannot fix (bad audio, rules that cannot
read the transcript) are already recorded on the call by the service, so the job ends normally and RQ
does not retry; transient ones (database or model trouble, anything unexpected) are raised again for
RQ's retry policy.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from pipeline.errors import AudioError, ConfigError, Conflict, ExtractionError, NotFound, PipelineError
from pipeline.settings import Settings

logger = logging.getLogger(__name__)

#: failures that a retry cannot fix
PERMANENT_ERRORS: tuple[type[PipelineError], ...] = (
    AudioError, ExtractionError, NotFound, Conflict, ConfigError,
)


@dataclass(frozen=True)
class WorkerContext:
    """What every job in a worker process shares."""

    settings: Settings
    session_factory: sessionmaker[Session]
    transcriber: Any


_context: WorkerContext | None = None
_lock = threading.Lock()


def install_context(context: WorkerContext | None) -> None:
    """Make ``context`` the one jobs in this process use (``None`` removes it)."""
    global _context
    with _lock:
        _context = context


def build_context(settings: Settings) -> WorkerContext:
    """Connect to the database and load the speech model (seconds)."""
    from pipeline.storage.db import make_engine, make_session_factory
    from pipeline.transcribe import load_transcriber

    factory = make_session_factory(make_engine(settings))
    return WorkerContext(settings=settings, session_factory=factory, transcriber=load_transcriber(settings))


def current_context() -> WorkerContext:
    """The installed context, or one built from the environment on first use."""
    global _context
    with _lock:
        if _context is None:
            logger.info("no worker context installed; loading one from the environment")
            _context = build_context(Settings())
        return _context


def process_call_job(call_id: str) -> dict[str, Any]:
    """Transcribe a stored call and draft its ticket; returns ``{"call_id", "status", ...}``."""
    from pipeline.service import process_call

    context = current_context()
    try:
        result = process_call(context.settings, call_id=call_id, transcriber=context.transcriber,
                              session_factory=context.session_factory)
    except PERMANENT_ERRORS as exc:
        logger.warning("call %s: failed for good at %s: %s", call_id, exc.stage, exc)
        return {"call_id": call_id, "status": "failed", "error": str(exc), "code": exc.code}
    return {"call_id": call_id, "status": result.status.value, "ticket_id": result.ticket_id,
            "reused": result.reused}
