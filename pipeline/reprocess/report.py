"""A run's diff report: its changes and failures, as CSV and JSON files."""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import select

from pipeline.reprocess.diff import to_json
from pipeline.reprocess.runs import get_run
from pipeline.settings import Settings
from pipeline.storage.db import SessionFactory, session_scope
from pipeline.storage.reprocess import (
    ItemStatus,
    ReprocessChangeRow,
    ReprocessItemRow,
)

logger = logging.getLogger(__name__)

CHANGE_PAGE = 5000


def iter_changes(session_factory: SessionFactory, *, run_id: str) -> Iterator[dict[str, Any]]:
    """The run's diff, one ``{"call_id", "field", "old_value", "new_value", "applied"}`` at a time (values
    as JSON values), in the order they were recorded."""
    after = 0
    while True:
        with session_scope(session_factory) as session:
            rows = session.execute(
                select(ReprocessChangeRow.id, ReprocessChangeRow.call_id, ReprocessChangeRow.field,
                       ReprocessChangeRow.old_value, ReprocessChangeRow.new_value, ReprocessChangeRow.applied)
                .where(ReprocessChangeRow.run_id == run_id, ReprocessChangeRow.id > after)
                .order_by(ReprocessChangeRow.id).limit(CHANGE_PAGE)
            ).all()
        if not rows:
            return
        for r in rows:
            yield {"call_id": r.call_id, "field": r.field, "old_value": json.loads(r.old_value),
                   "new_value": json.loads(r.new_value), "applied": bool(r.applied)}
        after = rows[-1].id


def iter_failures(session_factory: SessionFactory, *, run_id: str) -> Iterator[dict[str, Any]]:
    """The run's failed items: ``{"call_id", "reason"}``."""
    with session_scope(session_factory) as session:
        rows = session.execute(
            select(ReprocessItemRow.call_id, ReprocessItemRow.outcome)
            .where(ReprocessItemRow.run_id == run_id, ReprocessItemRow.status == ItemStatus.FAILED)
            .order_by(ReprocessItemRow.seq)
        ).all()
    for r in rows:
        yield {"call_id": r.call_id, "reason": r.outcome}


def csv_cell(value: Any) -> str:
    """A diff value as a CSV cell: text as it is, nothing as empty, anything else as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return to_json(value)


CSV_HEADER = ("call_id", "field", "old_value", "new_value", "applied")


def write_report(settings: Settings, *, session_factory: SessionFactory, run_id: str,
                 directory: Path | None = None) -> tuple[Path, Path]:
    """Write the run's diff as ``reprocess-<run id>.csv`` and ``.json`` under ``directory`` (default
    ``settings.resolved_report_dir``) and return both paths. The JSON holds the run, the changes and the
    failed calls; it can be written while the run goes on (a report of what is done so far)."""
    progress = get_run(session_factory, run_id=run_id)
    directory = Path(directory or settings.resolved_report_dir)
    directory.mkdir(parents=True, exist_ok=True)
    csv_path = directory / f"reprocess-{run_id}.csv"
    json_path = directory / f"reprocess-{run_id}.json"
    csv_tmp, json_tmp = csv_path.with_suffix(".csv.part"), json_path.with_suffix(".json.part")
    with csv_tmp.open("w", newline="", encoding="utf-8") as out_csv, json_tmp.open("w", encoding="utf-8") as out_js:
        writer = csv.writer(out_csv)
        writer.writerow(CSV_HEADER)
        out_js.write('{"run": ' + to_json(progress.to_dict()) + ',\n "changes": [')
        first = True
        for change in iter_changes(session_factory, run_id=run_id):
            writer.writerow([change["call_id"], change["field"], csv_cell(change["old_value"]),
                             csv_cell(change["new_value"]), "true" if change["applied"] else "false"])
            out_js.write(("\n  " if first else ",\n  ") + to_json(change))
            first = False
        out_js.write('\n ],\n "failed": ' + to_json(list(iter_failures(session_factory, run_id=run_id))) + "}\n")
    csv_tmp.replace(csv_path)
    json_tmp.replace(json_path)
    logger.info("run %s: diff report written to %s and %s", run_id, csv_path, json_path)
    return csv_path, json_path
