#!/usr/bin/env python3
"""End-to-end throughput: audio seconds per wall second through the API, the queue and workers, against the
in-process pipeline on the same files.

    python bench/throughput.py [--workers 1 2] [--threads 0] [--repeat 1] [FILE...]

Each measurement starts from an empty database (a SQLite file in a temporary directory) so that nothing is
reused. In-process: the model is loaded first (not timed), then every file is stored and processed in turn
(``ingest_file`` + ``process_call``). Through the queue: ``callintake serve`` and N ``callintake worker``
processes on a private Redis database; once every worker has loaded its model, the files are uploaded over
HTTP and the clock stops when the last call's ticket is stored (its ``updated_at``). Queue overhead is
``1 - queue rate / in-process rate`` with one worker; the workers ratio is how much faster N workers finish
the set than one. ``--threads`` sets ``CALLINTAKE_ASR__CPU_THREADS`` for every process (0: the engine
decides). Default files: every recording in ``audio_samples/``.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from datetime import UTC
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import redis  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from pipeline.settings import Settings  # noqa: E402
from pipeline.storage.calls import CallRow, CallStatus  # noqa: E402
from pipeline.storage.db import make_engine, make_session_factory, session_scope, upgrade  # noqa: E402


def model_cache() -> Path:
    cached = ROOT / ".cache" / "models"
    return cached if cached.exists() else ROOT / "data" / "models"


def settings_for(tmp: Path, threads: int) -> Settings:
    base = Settings(data_dir=tmp / "data", queue_mode="inline")
    return base.model_copy(update={"asr": base.asr.model_copy(update={
        "model_cache_dir": model_cache(), "cpu_threads": threads})})


def in_process(files: Sequence[Path], threads: int) -> tuple[float, float, dict[str, float]]:
    """(audio seconds, wall seconds, seconds by stage) for the pipeline called directly."""
    from pipeline.asr import load_transcriber
    from pipeline.intake import ingest_file
    from pipeline.process import process_call

    with tempfile.TemporaryDirectory(prefix="callintake-bench-") as tmp:
        settings = settings_for(Path(tmp), threads)
        upgrade(settings)
        engine = make_engine(settings)
        factory = make_session_factory(engine)
        transcriber = load_transcriber(settings)
        from pipeline.extractors import warm_up

        warm_up()
        audio = 0.0
        stages: dict[str, float] = {}
        started = time.perf_counter()
        for path in files:
            call = ingest_file(settings, session_factory=factory, path=path)
            result = process_call(settings, call_id=call.call_id, transcriber=transcriber, session_factory=factory,
                                  timings=stages)
            audio += result.duration_s or 0.0
        wall = time.perf_counter() - started
        engine.dispose()
    return audio, wall, stages


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _private_redis(base: str) -> tuple[str, redis.Redis, int, str]:
    admin = redis.Redis.from_url(f"{base}/0")
    token = uuid.uuid4().hex
    for db in range(15, 0, -1):
        if admin.set(f"callintake:test-lock:{db}", token, nx=True, ex=3600):
            url = f"{base}/{db}"
            redis.Redis.from_url(url).flushdb()
            return url, admin, db, token
    sys.exit("no free Redis database number")


def through_queue(files: Sequence[Path], workers: int, threads: int,
                  redis_base: str) -> tuple[float, float, dict[str, float]]:
    """(audio seconds, wall seconds, worker seconds by stage) from the first upload to the last ticket
    stored, via API + queue."""
    from rq import Worker

    from pipeline import keys

    redis_url, admin, db, token = _private_redis(redis_base)
    processes: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory(prefix="callintake-bench-") as tmp:
        settings = settings_for(Path(tmp), threads)
        upgrade(settings)
        engine = make_engine(settings)
        factory = make_session_factory(engine)
        with session_scope(factory) as session:
            key = keys.create_key(session, role="uploader", name="bench")[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("CALLINTAKE_")}
        env.update(CALLINTAKE_DATA_DIR=str(settings.data_dir), CALLINTAKE_DATABASE_URL=settings.resolved_database_url,
                   CALLINTAKE_REDIS_URL=redis_url, CALLINTAKE_QUEUE_MODE="rq",
                   CALLINTAKE_ASR__MODEL_CACHE_DIR=str(model_cache()), CALLINTAKE_ASR__CPU_THREADS=str(threads),
                   CALLINTAKE_OPS__RECONCILE_EVERY_S="0", PYTHONUNBUFFERED="1")
        port = _free_port()
        try:
            processes.append(subprocess.Popen(
                [sys.executable, "-m", "pipeline.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
                env=env, cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            for _ in range(workers):
                processes.append(subprocess.Popen(
                    [sys.executable, "-m", "pipeline.cli", "worker", "--queues", "intake"], env=env, cwd=tmp,
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            conn = redis.Redis.from_url(redis_url)
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 600
            while True:
                try:
                    ready = httpx.get(f"{base}/health", timeout=2).status_code == 200
                except httpx.TransportError:
                    ready = False
                if ready and Worker.count(connection=conn) >= workers:
                    break
                if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
                    sys.exit("the API or a worker did not come up")
                time.sleep(0.2)
            time.sleep(1.0)  # workers are blocked on the queue now
            started = time.time()
            with httpx.Client(base_url=base, timeout=60, headers={"Authorization": f"Bearer {key}"}) as http:
                for path in files:
                    with path.open("rb") as audio:
                        response = http.post("/calls", files={"file": (path.name, audio)})
                    response.raise_for_status()
            while True:
                with session_scope(factory) as session:
                    pending = session.scalar(select(func.count()).select_from(CallRow).where(
                        CallRow.status.not_in((CallStatus.NEEDS_REVIEW, CallStatus.FAILED))))
                    if pending == 0:
                        finished = session.scalar(select(func.max(CallRow.updated_at)))
                        audio_s = session.scalar(select(func.sum(CallRow.duration_s))) or 0.0
                        failed = session.scalar(select(func.count()).select_from(CallRow).where(
                            CallRow.status == CallStatus.FAILED))
                        break
                time.sleep(0.1)
            if failed:
                sys.exit(f"{failed} call(s) failed")
            wall = finished.replace(tzinfo=finished.tzinfo or UTC).timestamp() - started
            from workers.metrics import read_counters

            stages = {field.split("stage=")[1]: value for field, value in read_counters(conn).items()
                      if field.startswith("stage_seconds_sum|")}
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                try:
                    process.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    process.kill()
            engine.dispose()
            redis.Redis.from_url(redis_url).flushdb()
            if admin.get(f"callintake:test-lock:{db}") == token.encode():
                admin.delete(f"callintake:test-lock:{db}")
    return float(audio_s), wall, stages


def _stages(stages: dict[str, float]) -> str:
    return ", ".join(f"{name} {seconds:.1f} s" for name, seconds in sorted(stages.items()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("files", nargs="*", type=Path)
    ap.add_argument("--workers", type=int, nargs="+", default=[1],
                    help="worker counts to measure (the first one is compared with in-process)")
    ap.add_argument("--threads", type=int, default=0, help="decoder threads per process (0: the engine decides)")
    ap.add_argument("--repeat", type=int, default=1, help="measure each this many times, keep the best")
    ap.add_argument("--no-inprocess", action="store_true", help="only the queue measurements")
    ap.add_argument("--redis", default="redis://127.0.0.1:6379")
    args = ap.parse_args()
    files = args.files or sorted(p for p in (ROOT / "audio_samples").iterdir() if p.suffix in (".wav", ".mp3"))

    inproc_rate = None
    if not args.no_inprocess:
        best = min((in_process(files, args.threads) for _ in range(args.repeat)), key=lambda r: r[1])
        inproc_rate = best[0] / best[1]
        print(f"in-process: {best[0]:.0f} s of audio in {best[1]:.1f} s = {inproc_rate:.2f} audio s/s "
              f"({len(files)} files, threads={args.threads}; {_stages(best[2])})", flush=True)
    walls: dict[int, float] = {}
    for count in args.workers:
        audio, wall, stages = min(
            (through_queue(files, count, args.threads, args.redis) for _ in range(args.repeat)), key=lambda r: r[1])
        walls[count] = wall
        rate = audio / wall
        line = f"API + queue + {count} worker(s): {audio:.0f} s of audio in {wall:.1f} s = {rate:.2f} audio s/s"
        if inproc_rate and count == args.workers[0]:
            line += f"; queue overhead {100 * (1 - rate / inproc_rate):+.1f} % against in-process"
        line += f" (workers: {_stages(stages)})"
        print(line, flush=True)
    if len(walls) > 1:
        first = args.workers[0]
        for count in args.workers[1:]:
            print(f"{count} workers finish the set {walls[first] / walls[count]:.2f}x as fast as {first}")


if __name__ == "__main__":
    main()
