"""Reprocess part of the archive with new rules (or a new engine), resumably, with a diff of what changed.

A *run* is a stored record (``pipeline.storage.reprocess``) with its own id. Starting one selects the
calls (received between ``since`` and ``until``, matching ``where`` filters on the call or its current
ticket) and records one *item* per call, ``pending``. Batches of pending items are then processed, in
the starting process (``run_inline``) or on the ``archive`` queue by workers (``process_batch`` is what
each job runs); each batch records its items ``done``/``failed``/``skipped`` in the same transaction as its
results, so a run that is stopped (``stop_run``, Ctrl-C, a worker killed) resumes (``resume_run``) without
redoing a finished call, and a batch that runs twice finds its items done and returns.

Stages:

* ``extract`` re-extracts from the stored transcript — Whisper does not run. Transcripts, old tickets and
  items are read in a few queries per batch and results written with multi-row statements, so the rules
  (about 1,600 transcripts a second) stay the bottleneck.
* ``transcribe`` decodes and transcribes the audio again (``pipeline.process.process_call`` with
  ``force``), then extracts.

Tickets: the run drafts each call's ticket under its own rules version (one ticket per call and
version, a unique constraint). A call that already has a ticket of that version is skipped (the stage
finds its result stored). A call whose current ticket an operator has already reviewed keeps it: the
new draft is compared but not stored (its changes are reported with ``applied = false``), so approved
work does not come back for review. Calls still in flight (``queued``, ``processing``) are not selected.

The diff compares the call's current ticket before the run with the new draft, field by field (the
ticket contract's fields and ``needs_review``); ``write_report`` writes it as CSV and JSON
(``call_id, field, old_value, new_value, applied``).

Example::

    run = start_run(settings, session_factory=factory, stage="extract",
                    selection=Selection(since=datetime(2026, 1, 1, tzinfo=UTC), where={"category": "housing."}))
    run = run_inline(settings, session_factory=factory, run_id=run.id)
    csv_path, json_path = write_report(settings, session_factory=factory, run_id=run.id)
"""

from pipeline.reprocess.batches import BatchResult, Claim, process_batch, run_inline
from pipeline.reprocess.diff import DIFF_FIELDS, diff_values, values_from_draft, values_from_row
from pipeline.reprocess.report import CSV_HEADER, csv_cell, iter_changes, iter_failures, write_report
from pipeline.reprocess.runs import (
    RunProgress,
    batch_durations,
    format_progress,
    get_run,
    list_runs,
    pending_batches,
    resume_run,
    start_run,
    stop_run,
)
from pipeline.reprocess.selection import STAGES, WHERE_KEYS, Selection, parse_time, parse_where, select_calls
from pipeline.storage.reprocess import RunStatus

__all__ = [
    "BatchResult", "CSV_HEADER", "Claim", "DIFF_FIELDS", "RunProgress", "RunStatus", "STAGES", "Selection",
    "WHERE_KEYS",
    "batch_durations", "csv_cell", "diff_values", "format_progress", "get_run", "iter_changes", "iter_failures",
    "list_runs", "parse_time", "parse_where", "pending_batches", "process_batch", "resume_run", "run_inline",
    "select_calls", "start_run", "stop_run", "values_from_draft", "values_from_row", "write_report",
]
