#!/usr/bin/env python3
"""Archive reprocessing speed: re-extract N stored transcripts under a new rules version, with the diff.

    python bench/reprocess.py [--calls 10000] [--database-url URL] [--batch-size 500] [--seed 11]
                              [--queue --workers 2]

Seeds a fresh database (a SQLite file in a temporary directory unless ``--database-url`` names an empty
PostgreSQL database) with N calls, each with a generated transcript (``bench/extract.py``'s generator)
and a ticket drafted by an *older* rules version: the current rules' draft with a few fields changed on
one call in five, so the expected diff is known exactly. Then times ``callintake reprocess`` on them —
in-process by default, or with ``--queue`` on the archive queue of a private Redis database with
``--workers`` real worker processes — and checks the diff report against what was changed.
Prints one line: ``reprocess: N transcripts in S s (R calls/s), C changes in the report (expected C)``.
Seeding is not timed.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from extract import make_call  # noqa: E402
from sqlalchemy import insert  # noqa: E402

from pipeline.extractors import extract_ticket, warm_up  # noqa: E402
from pipeline.settings import Settings  # noqa: E402
from pipeline.storage.base import new_id  # noqa: E402
from pipeline.storage.calls import CallRow, CallStatus, TranscriptRow  # noqa: E402
from pipeline.storage.db import make_engine, make_session_factory, session_scope, upgrade  # noqa: E402
from pipeline.storage.tickets import TicketRow  # noqa: E402
from pipeline.ticket import TicketStatus  # noqa: E402

OLD_VERSION = "taxonomy@2025.12.1+bench-old"
#: the field an older rules version got wrong, and what it said
PERTURB = {
    "category": "other", "urgency": "normal", "district": None, "summary": "旧规则摘要",
    "callback_number": None, "needs_review": ["category"],
}


def seed(settings: Settings, n: int, rng: random.Random) -> int:
    """Store n calls with transcripts and old-version tickets; return the number of changed fields."""
    rules = warm_up()
    zone = ZoneInfo(settings.timezone)
    base = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    engine = make_engine(settings)
    factory = make_session_factory(engine)
    expected = 0
    try:
        for start in range(0, n, 1000):
            calls, transcripts, tickets = [], [], []
            for i in range(start, min(n, start + 1000)):
                transcript = make_call(rng)
                call_id = new_id()
                received = base + timedelta(minutes=i)
                draft = extract_ticket(transcript, received_at=received.astimezone(zone), rules=rules)
                data = draft.to_dict()
                if rng.random() < 0.2:
                    for name in rng.sample(sorted(PERTURB), 2):
                        if data[name] != PERTURB[name]:
                            expected += 1
                        data[name] = PERTURB[name]
                now = datetime.now(UTC)
                calls.append({
                    "id": call_id, "audio_sha256": uuid.uuid4().hex * 2, "audio_path": f"audio/bench/{call_id}.wav",
                    "size_bytes": 1, "received_at": received, "duration_s": transcript.duration, "channels": 2,
                    "sample_rate": 8000, "format": "wav", "status": CallStatus.NEEDS_REVIEW, "retry_count": 0,
                    "language": transcript.language, "created_at": now, "updated_at": now,
                })
                transcript_id = new_id()
                transcripts.append({
                    "id": transcript_id, "call_id": call_id, "language": transcript.language, "text": transcript.text,
                    "segments": [s.to_dict() for s in transcript.segments], "options": {"engine": "bench"},
                    "duration_s": transcript.duration, "created_at": now,
                })
                row = {k: data[k] for k in (
                    "request_type", "category", "urgency", "district", "street", "community", "address",
                    "department", "callback_number", "caller_surname", "vulnerable", "amounts", "summary",
                    "language", "evidence", "confidence", "needs_review")}
                row.update(id=new_id(), call_id=call_id, transcript_id=transcript_id, rules_version=OLD_VERSION,
                           status=TicketStatus.NEEDS_REVIEW, due_at=draft.due_at, version=1, created_at=now,
                           updated_at=now)
                tickets.append(row)
            with session_scope(factory) as session:
                session.execute(insert(CallRow), calls)
                session.execute(insert(TranscriptRow), transcripts)
                session.execute(insert(TicketRow), tickets)
    finally:
        engine.dispose()
    return expected


def free_redis_db(base: str) -> tuple[str, object]:
    import redis

    admin = redis.Redis.from_url(f"{base}/0")
    token = uuid.uuid4().hex
    for db in range(15, 0, -1):
        if admin.set(f"callintake:test-lock:{db}", token, nx=True, ex=3600):
            url = f"{base}/{db}"
            redis.Redis.from_url(url).flushdb()
            return url, (admin, db, token)
    sys.exit("no free Redis database number")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--calls", type=int, default=10_000)
    ap.add_argument("--database-url", default="", help="an empty database to use (default: a SQLite file)")
    ap.add_argument("--batch-size", type=int, default=500)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--queue", action="store_true", help="on the archive queue with worker processes")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--redis", default="redis://127.0.0.1:6379")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="callintake-bench-") as tmp:
        settings = Settings(data_dir=Path(tmp) / "data", database_url=args.database_url, queue_mode="inline")
        upgrade(settings)
        started = time.perf_counter()
        expected = seed(settings, args.calls, random.Random(args.seed))
        print(f"seeded {args.calls} calls in {time.perf_counter() - started:.1f} s", file=sys.stderr)

        env = {k: v for k, v in os.environ.items() if not k.startswith("CALLINTAKE_")}
        env.update(CALLINTAKE_DATA_DIR=str(settings.data_dir), CALLINTAKE_DATABASE_URL=settings.resolved_database_url,
                   PYTHONUNBUFFERED="1")
        command = [sys.executable, "-m", "pipeline.cli", "reprocess", "--stage", "extract", "--json",
                   "--batch-size", str(args.batch_size), "--report-dir", str(Path(tmp) / "reports")]
        workers: list[subprocess.Popen[bytes]] = []
        lock = None
        if args.queue:
            redis_url, lock = free_redis_db(args.redis)
            env.update(CALLINTAKE_REDIS_URL=redis_url, CALLINTAKE_QUEUE_MODE="rq",
                       CALLINTAKE_OPS__RECONCILE_EVERY_S="0")
            workers = [subprocess.Popen([sys.executable, "-m", "pipeline.cli", "worker", "--queues", "archive"],
                                        env=env, cwd=tmp, stderr=subprocess.DEVNULL) for _ in range(args.workers)]
            import redis
            from rq import Worker

            conn = redis.Redis.from_url(redis_url)
            deadline = time.monotonic() + 300
            while Worker.count(connection=conn) < args.workers and time.monotonic() < deadline:
                time.sleep(0.5)
        else:
            command.append("--inline")
        try:
            started = time.perf_counter()
            done = subprocess.run(command, env=env, cwd=tmp, capture_output=True, text=True)
            elapsed = time.perf_counter() - started
        finally:
            for worker in workers:
                worker.terminate()
            for worker in workers:
                worker.wait(timeout=60)
            if lock is not None:
                admin, db, token = lock
                import redis

                redis.Redis.from_url(f"{args.redis}/{db}").flushdb()
                if admin.get(f"callintake:test-lock:{db}") == token.encode():
                    admin.delete(f"callintake:test-lock:{db}")
        if done.returncode not in (0, 1):
            sys.exit(f"reprocess failed ({done.returncode}):\n{done.stderr[-3000:]}")
        run = json.loads(done.stdout.strip().splitlines()[-1])
        csv_path, json_path = (Path(p) for p in run["report"])
        with csv_path.open(encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        report = json.loads(json_path.read_text(encoding="utf-8"))
        ok = (run["status"] == "done" and run["done"] == args.calls and len(rows) == expected
              and len(report["changes"]) == expected and run["failed"] == 0)
        mode = f"queue, {args.workers} worker(s)" if args.queue else "in-process"
        print(f"reprocess ({mode}): {args.calls} transcripts in {elapsed:.1f} s "
              f"({args.calls / elapsed:,.0f} calls/s, process start included), {len(rows)} changes in the "
              f"report (expected {expected}), {run['changed']} calls changed"
              + ("" if ok else "  ** REPORT MISMATCH **"))
        if not ok:
            sys.exit(1)


if __name__ == "__main__":
    main()
