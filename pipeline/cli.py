"""The ``callintake`` command.

    callintake process [--json] FILE...     whole pipeline in-process, one ticket per file
    callintake extract [--json] FILE...     ticket fields from .txt / .json transcripts
    callintake serve [--host] [--port]      the HTTP API (FastAPI + uvicorn)
    callintake worker [--burst]             an RQ worker that loads the model once, then takes jobs
    callintake db upgrade                   create or migrate the database schema
    callintake models path                  assemble the bundled model if needed and print its directory
    callintake models convert SRC DST.pt    a CTranslate2 Whisper directory (or 'bundled') as an
                                            openai-whisper checkpoint, for CALLINTAKE_ASR__MODEL_PATH
    callintake reconcile [--grace S] [--every S]   enqueue again the calls and dispatches whose jobs were lost
    callintake reprocess [--since T] [--until T] [--stage extract|transcribe] [--where K=V]... [--inline]
                         | --resume RUN | --stop RUN | --status RUN | --report RUN   reprocess the archive
    callintake keys create --role ROLE [--name NAME] | list | revoke ID    API keys (shown once)
    callintake dispatch [--json] [--version N] TICKET_ID   send an approved ticket onward now, in-process
    callintake dispatch --lost [--grace S]       queue again approved tickets whose dispatch job was lost

``serve`` and ``worker`` import the API and the worker packages only when run, so that ``pipeline``
stays usable without FastAPI or RQ.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from zoneinfo import ZoneInfo

from pipeline.settings import Settings


def _print_json(obj: object) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def _readable(result: dict) -> str:
    if "error" in result:
        return f"== {result['file']}\n   FAILED: {result['error']}\n"
    ticket = result.get("ticket") or {}
    lines = [f"== {result['file']}  (call {result.get('call_id', '-')}, {result.get('language')}, "
             f"{result.get('duration_s')} s)"]
    for name in ("summary", "request_type", "category", "urgency", "due_at", "district", "street",
                 "community", "address", "department", "callback_number", "caller_surname", "vulnerable",
                 "amounts"):
        value = ticket.get(name)
        if value not in (None, "", []):
            lines.append(f"   {name:16s} {value}")
    if ticket.get("needs_review"):
        lines.append(f"   {'needs_review':16s} {', '.join(ticket['needs_review'])}")
    return "\n".join(lines) + "\n"


def cmd_process(settings: Settings, args: argparse.Namespace) -> int:
    from pipeline.process import process_files

    failed = 0
    for result in process_files(settings, [Path(p) for p in args.files]):
        failed += "error" in result
        if args.json:
            _print_json(result)
        else:
            sys.stdout.write(_readable(result))
            sys.stdout.flush()
    return 1 if failed and failed == len(args.files) else 0


def cmd_extract(settings: Settings, args: argparse.Namespace) -> int:
    from pipeline.extractors import extract_file

    failed = 0
    for path in args.files:
        try:
            result = {"file": path, "ticket": extract_file(Path(path), zone=ZoneInfo(settings.timezone)).to_dict()}
        except Exception as exc:  # one bad file must not stop the batch
            failed += 1
            result = {"file": path, "error": str(exc)}
        if args.json:
            _print_json(result)
        else:
            sys.stdout.write(_readable(result))
    return 1 if failed and failed == len(args.files) else 0


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from api.app import create_app

    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level="info")
    return 0


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    from workers.worker import run_worker

    return run_worker(settings, burst=args.burst, queues=args.queues)


def cmd_db(settings: Settings, args: argparse.Namespace) -> int:
    from pipeline.storage.db import upgrade

    upgrade(settings)
    print(f"database at {settings.resolved_database_url} is up to date")
    return 0


def cmd_models(settings: Settings, args: argparse.Namespace) -> int:
    from pipeline.asr.model_store import bundled_model_dir

    if args.action == "path":
        if args.src or args.dst:
            print("callintake: models path takes no arguments", file=sys.stderr)
            return 2
        print(bundled_model_dir(settings.resolved_model_cache_dir))
        return 0
    if not args.src or not args.dst:
        print("callintake: models convert needs SRC (a CTranslate2 Whisper directory, or 'bundled') and "
              "DST (the openai-whisper checkpoint to write, *.pt)", file=sys.stderr)
        return 2
    if Path(args.dst).suffix != ".pt":
        print(f"callintake: {args.dst}: the checkpoint's name must end in .pt", file=sys.stderr)
        return 2
    from pipeline.asr.convert import convert_ct2_to_openai

    src = bundled_model_dir(settings.resolved_model_cache_dir) if args.src == "bundled" else Path(args.src)
    print(convert_ct2_to_openai(src, Path(args.dst)))
    return 0


def cmd_reconcile(settings: Settings, args: argparse.Namespace) -> int:
    import time

    from pipeline.storage.db import is_sqlite, make_engine, make_session_factory, upgrade
    from workers.queues import connect, ping
    from workers.registry import reconcile_once

    if settings.queue_mode != "rq":
        print("callintake: reconcile works on the job queue (CALLINTAKE_QUEUE_MODE=rq)", file=sys.stderr)
        return 2
    if is_sqlite(settings.resolved_database_url):
        upgrade(settings)
    engine = make_engine(settings)
    connection = connect(settings)
    try:
        ping(connection)
        while True:
            report = reconcile_once(settings, session_factory=make_session_factory(engine), connection=connection,
                                    grace_s=args.grace, owner="cli")
            if report is None:
                print("reconcile: another pass is running", file=sys.stderr)
            elif args.json:
                _print_json(report.to_dict())
            else:
                print(f"reconcile: {report.checked} in flight, {report.waiting} waiting, {report.running} running, "
                      f"{len(report.requeued)} enqueued again, {len(report.gave_up)} marked failed; "
                      f"{len(report.dispatch_requeued)} approved ticket(s) queued again for dispatch")
                sys.stdout.flush()
            if not args.every:
                return 0
            time.sleep(args.every)
    except KeyboardInterrupt:
        return 0
    finally:
        engine.dispose()
        connection.close()


def cmd_reprocess(settings: Settings, args: argparse.Namespace) -> int:
    from pipeline import reprocess
    from pipeline.storage.db import is_sqlite, make_engine, make_session_factory, upgrade

    if is_sqlite(settings.resolved_database_url):
        upgrade(settings)
    engine = make_engine(settings)
    factory = make_session_factory(engine)
    try:
        if args.stop or args.status or args.report:
            run_id = args.stop or args.status or args.report
            if args.stop:
                progress = reprocess.stop_run(factory, run_id=run_id)
            else:
                progress = reprocess.get_run(factory, run_id=run_id)
            if args.report:
                paths = reprocess.write_report(settings, session_factory=factory, run_id=run_id,
                                               directory=args.report_dir)
                print("\n".join(str(p) for p in paths))
            elif args.json:
                _print_json(progress.to_dict())
            else:
                print(reprocess.format_progress(progress))
            return 0
        try:
            selection = reprocess.Selection(
                since=reprocess.parse_time(args.since, settings.timezone) if args.since else None,
                until=reprocess.parse_time(args.until, settings.timezone) if args.until else None,
                where=reprocess.parse_where(args.where or ()),
            )
        except ValueError as exc:
            print(f"callintake: {exc}", file=sys.stderr)
            return 2
        inline = args.inline or settings.queue_mode == "inline"
        if args.resume:
            progress = reprocess.resume_run(factory, run_id=args.resume)
        else:
            progress = reprocess.start_run(settings, session_factory=factory, stage=args.stage, selection=selection,
                                           mode="inline" if inline else "queue")
        print(f"reprocess run {progress.id}: {progress.stage} over {progress.total} call(s)", file=sys.stderr)
        show = _ProgressLine()
        try:
            if inline:
                progress = reprocess.run_inline(settings, session_factory=factory, run_id=progress.id,
                                                batch_size=args.batch_size, on_progress=show)
            else:
                progress = _reprocess_on_queue(settings, factory, progress, args, show)
                if progress is None:
                    return 0
        except KeyboardInterrupt:
            if inline:
                print(f"\nstopped; resume with: callintake reprocess --resume {progress.id}", file=sys.stderr)
            else:
                print(f"\nthe run goes on in the workers; stop it with: callintake reprocess --stop {progress.id}",
                      file=sys.stderr)
            return 130
        show(progress, final=True)
        paths = reprocess.write_report(settings, session_factory=factory, run_id=progress.id,
                                       directory=args.report_dir)
        if args.json:
            _print_json({**progress.to_dict(), "report": [str(p) for p in paths]})
        else:
            print(f"run {progress.id} {progress.status.value}: {progress.done} of {progress.total} call(s), "
                  f"{progress.changed} changed, {progress.failed} failed, {progress.skipped} skipped")
            print(f"diff report: {paths[0]} {paths[1]}")
        return 0 if progress.failed == 0 else 1
    finally:
        engine.dispose()


def _reprocess_on_queue(settings: Settings, factory, progress, args: argparse.Namespace, show):  # type: ignore[no-untyped-def]
    import time

    from rq import Worker

    from pipeline import reprocess
    from workers.queues import ARCHIVE, connect, enqueue_reprocess, get_queue, ping

    connection = connect(settings)
    ping(connection)
    size = args.batch_size or (settings.ops.reprocess_batch_size if progress.stage == "extract"
                               else settings.ops.retranscribe_batch_size)
    batches = reprocess.pending_batches(factory, run_id=progress.id, batch_size=size)
    durations = reprocess.batch_durations(factory, batches) if progress.stage == "transcribe" else None
    enqueue_reprocess(connection, run_id=progress.id, pass_no=progress.passes, stage=progress.stage,
                      batches=batches, rules_version=progress.rules_version, durations_s=durations)
    if args.no_wait:
        print(progress.id)
        return None
    if not Worker.all(queue=get_queue(connection, ARCHIVE)):
        print("no worker listens on the archive queue yet; start one with: callintake worker", file=sys.stderr)
    while progress.status.value == "running":
        time.sleep(0.5)
        progress = reprocess.get_run(factory, run_id=progress.id)
        show(progress)
    return progress


class _ProgressLine:
    """One progress line on stderr: rewritten in place on a terminal, a new line every few seconds else."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.last = 0.0

    def __call__(self, progress, final: bool = False) -> None:  # type: ignore[no-untyped-def]
        import time

        from pipeline.reprocess import format_progress

        now = time.monotonic()
        if self.tty:
            sys.stderr.write("\r" + format_progress(progress) + ("\n" if final else ""))
        elif final or now - self.last >= 2.0:
            sys.stderr.write(format_progress(progress) + "\n")
            self.last = now
        sys.stderr.flush()


def cmd_keys(settings: Settings, args: argparse.Namespace) -> int:
    from pipeline import keys
    from pipeline.storage.db import is_sqlite, make_engine, make_session_factory, session_scope, upgrade

    if is_sqlite(settings.resolved_database_url):
        upgrade(settings)  # as the API does on start; PostgreSQL is migrated by `callintake db upgrade`
    engine = make_engine(settings)
    try:
        with session_scope(make_session_factory(engine)) as session:
            if args.action == "create":
                row, key = keys.create_key(session, role=args.role, name=args.name)
                print(f"created key {row.id} ({row.role.value}, {row.name}); it is shown only this once:",
                      file=sys.stderr)
                print(key)
            elif args.action == "list":
                for row in keys.list_keys(session):
                    revoked = f"revoked {row.revoked_at.isoformat()}" if row.revoked_at else "active"
                    used = row.last_used_at.isoformat() if row.last_used_at else "never used"
                    print(f"{row.id}  {row.role.value:10s}  {revoked:40s}  {used:32s}  {row.name}")
            else:
                row = keys.revoke_key(session, key_id=args.id)
                print(f"revoked key {row.id} ({row.role.value}, {row.name})")
    finally:
        engine.dispose()
    return 0


def cmd_dispatch(settings: Settings, args: argparse.Namespace) -> int:
    from pipeline.dispatch.service import dispatch_ticket
    from pipeline.storage.db import is_sqlite, make_engine, make_session_factory, upgrade
    from pipeline.storage.dispatch import DispatchStatus

    if bool(args.lost) == bool(args.ticket_id):
        print("callintake: give a TICKET_ID or --lost", file=sys.stderr)
        return 2
    if is_sqlite(settings.resolved_database_url):
        upgrade(settings)
    engine = make_engine(settings)
    if args.lost:
        from workers.dispatch_jobs import DispatchContext, requeue_lost
        from workers.queues import connect, ping

        connection = connect(settings)
        try:
            ping(connection)
            context = DispatchContext(settings=settings, session_factory=make_session_factory(engine))
            requeued = requeue_lost(connection, context, grace_s=args.grace)
        finally:
            connection.close()
            engine.dispose()
        if args.json:
            _print_json({"requeued": requeued})
        else:
            print(f"dispatch: {len(requeued)} approved ticket(s) queued again" + "".join(f"\n  {t}" for t in requeued))
        return 0
    try:
        outcome = dispatch_ticket(settings, session_factory=make_session_factory(engine), ticket_id=args.ticket_id,
                                  version=args.version)
    finally:
        engine.dispose()
    if args.json:
        _print_json(outcome.to_dict())
    elif outcome.superseded_by is not None:
        print(f"ticket {outcome.ticket_id} v{outcome.version} was superseded by v{outcome.superseded_by}; "
              "nothing sent")
    elif outcome.status is DispatchStatus.SENT:
        how = "sent" if outcome.sent_now else "already sent"
        print(f"ticket {outcome.ticket_id} v{outcome.version} {how} to {outcome.connector}: "
              f"{outcome.external_ref or '-'} {outcome.external_url or ''}".rstrip())
    else:
        print(f"ticket {outcome.ticket_id} v{outcome.version} not sent to {outcome.connector} "
              f"(attempt {outcome.attempts}): {outcome.error}", file=sys.stderr)
    return 0 if outcome.status is DispatchStatus.SENT or outcome.superseded_by is not None else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="callintake", description=__doc__.split("\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level to stderr")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("process", help="run recordings through the whole pipeline in-process")
    p.add_argument("--json", action="store_true", help="one JSON object per file, one a line")
    p.add_argument("--engine", choices=["faster-whisper", "openai-whisper"], help="override the ASR engine")
    p.add_argument("files", nargs="+")
    p.set_defaults(func=cmd_process)

    p = sub.add_parser("extract", help="ticket fields from transcripts (.txt or .json)")
    p.add_argument("--json", action="store_true")
    p.add_argument("files", nargs="+")
    p.set_defaults(func=cmd_extract)

    p = sub.add_parser("serve", help="run the HTTP API")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("worker", help="run a queue worker")
    p.add_argument("--burst", action="store_true", help="exit when the queues are empty")
    p.add_argument("--queues", nargs="*", default=None, help="queue names, highest priority first")
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("db", help="database schema")
    p.add_argument("action", choices=["upgrade"])
    p.set_defaults(func=cmd_db)

    p = sub.add_parser("models", help="speech models")
    p.add_argument("action", choices=["path", "convert"],
                   help="path: print the bundled model's directory; convert: write an openai-whisper checkpoint")
    p.add_argument("src", nargs="?", help="convert: a CTranslate2 Whisper directory, or 'bundled'")
    p.add_argument("dst", nargs="?", help="convert: the .pt checkpoint to write")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("reconcile", help="enqueue again the calls and approved tickets whose jobs were lost "
                                         "(Redis flushed, worker killed)")
    p.add_argument("--grace", type=float, default=None,
                   help="leave calls changed in the last S seconds alone (default: settings, 60)")
    p.add_argument("--every", type=float, default=0.0, help="run again every S seconds until stopped")
    p.add_argument("--json", action="store_true", help="print each pass as JSON")
    p.set_defaults(func=cmd_reconcile)

    p = sub.add_parser("reprocess", help="reprocess stored calls with these rules; diff report in CSV and JSON")
    p.add_argument("--since", help="calls received at or after this date/time (ISO 8601, hotline time zone)")
    p.add_argument("--until", help="calls received before this date/time")
    p.add_argument("--stage", choices=["extract", "transcribe"], default="extract",
                   help="extract: from stored transcripts (no Whisper); transcribe: the audio again")
    p.add_argument("--where", action="append", metavar="KEY=VALUE",
                   help="filter on the current ticket (category, district, street, urgency, request_type, "
                        "department, ticket_status) or the call (language, status, line); repeatable")
    p.add_argument("--inline", action="store_true", help="process here instead of on the archive queue")
    p.add_argument("--batch-size", type=int, default=None, help="calls per batch (default: settings)")
    p.add_argument("--no-wait", action="store_true", help="enqueue and print the run id (queue mode)")
    p.add_argument("--report-dir", type=Path, default=None, help="where the diff report goes (default: data/reports)")
    p.add_argument("--json", action="store_true", help="print the run as JSON")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--resume", metavar="RUN", help="go on with the pending calls of a stopped run")
    group.add_argument("--stop", metavar="RUN", help="stop a run (finished calls stay finished)")
    group.add_argument("--status", metavar="RUN", help="print a run's progress")
    group.add_argument("--report", metavar="RUN", help="write a run's diff report (also while it runs)")
    p.set_defaults(func=cmd_reprocess)

    p = sub.add_parser("keys", help="API keys and their roles")
    keys_sub = p.add_subparsers(dest="action", required=True)
    k = keys_sub.add_parser("create", help="create a key and print it (once)")
    k.add_argument("--role", required=True, choices=["uploader", "operator", "supervisor"])
    k.add_argument("--name", default=None, help="who or what uses it (shown in the audit trail)")
    keys_sub.add_parser("list", help="every key: id, role, status, last use, name")
    k = keys_sub.add_parser("revoke", help="revoke a key by id")
    k.add_argument("id")
    p.set_defaults(func=cmd_keys)

    p = sub.add_parser("dispatch", help="send an approved ticket to the ticket system now (one attempt)")
    p.add_argument("--json", action="store_true", help="print the outcome as JSON")
    p.add_argument("--version", type=int, default=None, help="the ticket version to send (default: current)")
    p.add_argument("--lost", action="store_true",
                   help="instead: queue again every approved ticket whose dispatch job is gone from the queue")
    p.add_argument("--grace", type=float, default=60.0, help="with --lost: leave tickets changed this recently")
    p.add_argument("ticket_id", nargs="?")
    p.set_defaults(func=cmd_dispatch)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = Settings()
    from pipeline.logs import configure_logging

    configure_logging(settings.ops.log_format, level=logging.INFO if args.verbose else logging.WARNING)
    if getattr(args, "engine", None):
        settings = settings.model_copy(update={"asr": settings.asr.model_copy(update={"engine": args.engine})})
    from pipeline.errors import PipelineError

    try:
        return int(args.func(settings, args) or 0)
    except PipelineError as exc:
        print(f"callintake: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
