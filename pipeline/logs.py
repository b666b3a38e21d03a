"""Log lines that name the call they are about, as text or as one JSON object a line.

Whatever runs work for one call (a queue job, a reprocess batch, the CLI) enters ``log_context(call_id=…)``;
every record logged inside it, by any module, carries ``call_id`` (a ``contextvars`` variable, so threads
and tasks keep their own). ``configure_logging`` installs one stderr handler with the filter that copies
the context onto records and the chosen format:

* ``text``: ``2026-11-25 17:13:09,512 INFO pipeline.process [call 3f2a9c0d5e6b7a81] ticket drafted ...``
* ``json``: ``{"ts": "2026-11-25T17:13:09.512Z", "level": "INFO", "logger": "pipeline.process",
  "message": "...", "call_id": "3f2a9c0d5e6b7a81", "job_id": "intake-…", "worker": "callintake-h1-42"}``

Example::

    configure_logging(settings.ops.log_format, level=logging.INFO)
    with log_context(call_id=call_id, job_id=job.id):
        logger.info("call %s: transcribing", call_id)
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, TextIO

#: fields a context may carry; each becomes an attribute of every record logged inside it
CONTEXT_FIELDS = ("call_id", "job_id", "run_id", "worker")

_EMPTY: Mapping[str, str] = MappingProxyType({})
_context: ContextVar[Mapping[str, str]] = ContextVar("callintake_log_context", default=_EMPTY)

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s%(context)s %(message)s"


@contextmanager
def log_context(**fields: str | None) -> Iterator[None]:
    """Add ``fields`` (``call_id``, ``job_id``, ``run_id``, ``worker``) to every record logged inside."""
    unknown = set(fields) - set(CONTEXT_FIELDS)
    if unknown:
        raise ValueError(f"unknown log context field(s): {', '.join(sorted(unknown))}")
    merged = dict(_context.get())
    merged.update({k: str(v) for k, v in fields.items() if v is not None})
    token = _context.set(merged)
    try:
        yield
    finally:
        _context.reset(token)


def current_context() -> Mapping[str, str]:
    """The fields in effect here (empty outside any ``log_context``)."""
    return _context.get()


class ContextFilter(logging.Filter):
    """Copies the ``log_context`` fields onto each record (``record.call_id`` …, ``None`` when unset) and
    renders them for the text format as ``record.context`` (`` [call 3f2a…]``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        fields = _context.get()
        for name in CONTEXT_FIELDS:
            if not hasattr(record, name) or getattr(record, name) is None:
                setattr(record, name, fields.get(name))
        parts = []
        if record.call_id:  # type: ignore[attr-defined]
            parts.append(f"call {record.call_id}")  # type: ignore[attr-defined]
        if record.run_id:  # type: ignore[attr-defined]
            parts.append(f"run {record.run_id}")  # type: ignore[attr-defined]
        record.context = f" [{', '.join(parts)}]" if parts else ""
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ``ts`` (UTC, ISO 8601), ``level``, ``logger``, ``message``, the context
    fields that are set, ``exc`` with the traceback when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace(
                "+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is None:
                value = _context.get().get(name)
            if value is not None:
                out[name] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            out["exc"] = record.exc_text
        return json.dumps(out, ensure_ascii=False)


def configure_logging(log_format: str = "text", *, level: int = logging.WARNING,
                      stream: TextIO | None = None) -> logging.Handler:
    """Send the root logger to ``stream`` (stderr) at ``level`` in ``log_format`` (``text`` or ``json``).

    Replaces handlers this function installed before (calling it twice does not double lines); leaves
    other handlers alone. Returns the handler.
    """
    if log_format not in ("text", "json"):
        raise ValueError(f"log format must be 'text' or 'json', not {log_format!r}")
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_callintake", False)]:
        root.removeHandler(old)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler._callintake = True  # type: ignore[attr-defined]
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    root.addHandler(handler)
    root.setLevel(level)
    return handler


__all__ = ["CONTEXT_FIELDS", "ContextFilter", "JsonFormatter", "configure_logging", "current_context",
           "log_context"]
