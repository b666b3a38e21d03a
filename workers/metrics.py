"""Counters for ``/metrics``, added to by every worker process on every host and kept in Redis.

Why Redis: workers run as many processes on as many hosts as share Redis, and prometheus_client's
multiprocess mode only joins processes of one host (through a shared directory), while a scrape of each
worker would need every worker reachable and listed. Redis is already shared by all of them, an
``HINCRBY`` costs well under a millisecond next to a job that takes seconds, and the API reads the whole
hash in one round trip at scrape time. Gauges are computed at scrape time from the source itself: queue
depths from RQ's lists and registries, the number of live workers, calls by status from the database.

Counters start again from zero if Redis is flushed; Prometheus reads a drop as a counter reset, so
``rate()`` and ``increase()`` stay right. Recording never fails a job: a Redis error is logged and dropped.

Exported (all prefixed ``callintake_``):

    jobs_total{queue,outcome}           counter   outcome: done | retried | failed
    stage_seconds{stage}                histogram processing time by stage (decode, transcribe, extract,
                                                  store, reprocess_batch)
    audio_seconds_total                 counter   seconds of audio transcribed
    calls_failed_total{stage}           counter   calls recorded failed, by the stage that failed
    reprocess_calls_total{outcome}      counter   outcome: done | changed | failed | skipped
    reconcile_requeued_total            counter   lost calls enqueued again
    reconcile_gave_up_total             counter   calls marked failed after too many lost attempts
    queue_jobs{queue,state}             gauge     state: queued | started | scheduled | failed
    workers                             gauge     live RQ workers
    calls{status}                       gauge     calls by status (database)
    queue_up, database_up               gauge     1 when the backing service answered this scrape
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import Any

from prometheus_client.core import (
    CollectorRegistry,
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from redis import Redis
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

METRICS_KEY = "callintake:metrics"
#: upper bounds (seconds) of the processing-time buckets: extraction takes milliseconds, a long call minutes
STAGE_BUCKETS: tuple[float, ...] = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
                                    600.0, 1800.0)
PREFIX = "callintake"
CONTENT_TYPE = CONTENT_TYPE_LATEST

_COUNTERS = {
    "jobs": ("Jobs that ended, by queue and outcome", ("queue", "outcome")),
    "audio_seconds": ("Seconds of audio transcribed", ()),
    "calls_failed": ("Calls recorded failed, by the stage that failed", ("stage",)),
    "reprocess_calls": ("Calls handled by reprocess runs, by outcome", ("outcome",)),
    "reconcile_requeued": ("Lost calls enqueued again by reconcile", ()),
    "reconcile_gave_up": ("Calls marked failed by reconcile after too many lost attempts", ()),
}
#: fields that add seconds; every other field counts
_FLOAT_FIELDS = frozenset({"stage_seconds_sum", "audio_seconds"})


def _field(name: str, labels: Mapping[str, str] | None = None) -> str:
    parts = [name] + [f"{k}={v}" for k, v in sorted((labels or {}).items())]
    return "|".join(parts)


def _parse(field: str) -> tuple[str, dict[str, str]]:
    name, *pairs = field.split("|")
    return name, dict(pair.split("=", 1) for pair in pairs)


def _send(connection: Redis | None, increments: list[tuple[str, float]]) -> None:
    if connection is None or not increments:
        return
    try:
        with connection.pipeline(transaction=False) as pipe:
            for field, amount in increments:
                # a field is a float (seconds) or an integer (counts) for good: HINCRBY on a float fails
                if field.split("|", 1)[0] in _FLOAT_FIELDS:
                    pipe.hincrbyfloat(METRICS_KEY, field, float(amount))
                else:
                    pipe.hincrby(METRICS_KEY, field, int(amount))
            pipe.execute()
    except RedisError as exc:
        logger.warning("metrics not recorded (Redis: %s)", exc)


def record_job(connection: Redis | None, *, queue: str, outcome: str) -> None:
    """Count one job of ``queue`` that ended ``done``, ``retried`` or ``failed``."""
    _send(connection, [(_field("jobs", {"queue": queue, "outcome": outcome}), 1)])


def record_stages(connection: Redis | None, timings: Mapping[str, float]) -> None:
    """Add each stage's seconds to the processing-time histogram."""
    increments: list[tuple[str, float]] = []
    for stage, seconds in timings.items():
        labels = {"stage": stage}
        increments.append((_field("stage_seconds_sum", labels), round(float(seconds), 6)))
        increments.append((_field("stage_seconds_count", labels), 1))
        for bound in STAGE_BUCKETS:
            if seconds <= bound:
                increments.append((_field("stage_seconds_bucket", {**labels, "le": repr(bound)}), 1))
    _send(connection, increments)


def record_audio(connection: Redis | None, seconds: float) -> None:
    """Count ``seconds`` of audio transcribed."""
    if seconds and seconds > 0:
        _send(connection, [(_field("audio_seconds"), round(float(seconds), 3))])


def record_call_failed(connection: Redis | None, *, stage: str | None) -> None:
    """Count a call recorded failed at ``stage``."""
    _send(connection, [(_field("calls_failed", {"stage": stage or "unknown"}), 1)])


def record_reprocess(connection: Redis | None, counts: Mapping[str, int]) -> None:
    """Count calls of a reprocess batch by outcome (``done``, ``changed``, ``failed``, ``skipped``)."""
    _send(connection, [(_field("reprocess_calls", {"outcome": k}), int(v)) for k, v in counts.items() if v])


def record_reconcile(connection: Redis | None, *, requeued: int, gave_up: int) -> None:
    """Count what one reconcile pass did."""
    _send(connection, [(_field("reconcile_requeued"), requeued), (_field("reconcile_gave_up"), gave_up)])


def read_counters(connection: Redis) -> dict[str, float]:
    """The raw counter hash (``{"jobs|outcome=done|queue=intake": 12.0, ...}``)."""
    raw = connection.hgetall(METRICS_KEY)
    return {k.decode() if isinstance(k, bytes) else k: float(v) for k, v in raw.items()}


class CallintakeCollector:
    """A prometheus_client collector that reads Redis and the database when scraped.

    ``session_factory`` may be ``None`` (no call gauges); an unreachable Redis or database only drops the
    metrics that come from it and sets its ``*_up`` gauge to 0, so a scrape always answers.
    """

    def __init__(self, connection: Redis | None, session_factory: Any = None) -> None:
        self.connection = connection
        self.session_factory = session_factory

    def collect(self) -> Iterator[Metric]:
        yield from self._from_redis()
        yield from self._from_database()

    def _from_redis(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(f"{PREFIX}_queue_up", "1 when Redis answered this scrape")
        if self.connection is None:
            up.add_metric([], 0)
            yield up
            return
        try:
            counters = read_counters(self.connection)
            from workers.queues import queue_depths

            depths = queue_depths(self.connection)
            from rq import Worker

            workers = Worker.count(connection=self.connection)
        except Exception as exc:  # RedisError or StorageUnavailable: report the queue down, keep the rest
            logger.warning("metrics: Redis unavailable: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up

        families: dict[str, CounterMetricFamily] = {
            name: CounterMetricFamily(f"{PREFIX}_{name}", help_text, labels=list(labels))
            for name, (help_text, labels) in _COUNTERS.items()
        }
        histogram: dict[str, dict[str, Any]] = {}
        for field, value in sorted(counters.items()):
            name, labels = _parse(field)
            if name in families:
                wanted = _COUNTERS[name][1]
                families[name].add_metric([labels.get(k, "") for k in wanted], value)
            elif name.startswith("stage_seconds_"):
                entry = histogram.setdefault(labels.get("stage", ""), {"buckets": {}, "sum": 0.0, "count": 0.0})
                if name == "stage_seconds_bucket":
                    entry["buckets"][float(labels["le"])] = value
                elif name == "stage_seconds_sum":
                    entry["sum"] = value
                elif name == "stage_seconds_count":
                    entry["count"] = value
        for name in ("reconcile_requeued", "reconcile_gave_up", "audio_seconds"):
            if not families[name].samples:
                families[name].add_metric([], 0)
        yield from families.values()

        stages = HistogramMetricFamily(f"{PREFIX}_stage_seconds", "Processing time by stage", labels=["stage"])
        for stage, entry in sorted(histogram.items()):
            buckets = [(repr(bound), entry["buckets"].get(bound, 0.0)) for bound in STAGE_BUCKETS]
            buckets.append(("+Inf", entry["count"]))
            stages.add_metric([stage], buckets, entry["sum"])
        yield stages

        depth = GaugeMetricFamily(f"{PREFIX}_queue_jobs", "Jobs in each queue, by state", labels=["queue", "state"])
        for queue, states in depths.items():
            for state, count in states.items():
                depth.add_metric([queue, state], count)
        yield depth
        live = GaugeMetricFamily(f"{PREFIX}_workers", "Live queue workers")
        live.add_metric([], workers)
        yield live

    def _from_database(self) -> Iterator[Metric]:
        if self.session_factory is None:
            return
        from sqlalchemy import func, select

        from pipeline.errors import PipelineError
        from pipeline.storage.calls import CallRow, CallStatus
        from pipeline.storage.db import session_scope

        up = GaugeMetricFamily(f"{PREFIX}_database_up", "1 when the database answered this scrape")
        try:
            with session_scope(self.session_factory) as session:
                rows = session.execute(select(CallRow.status, func.count()).group_by(CallRow.status)).all()
        except PipelineError as exc:
            logger.warning("metrics: database unavailable: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        by_status = {CallStatus(status).value: count for status, count in rows}
        calls = GaugeMetricFamily(f"{PREFIX}_calls", "Calls by status", labels=["status"])
        for status in CallStatus:
            calls.add_metric([status.value], by_status.get(status.value, 0))
        yield calls


def render(connection: Redis | None, session_factory: Any = None) -> bytes:
    """The Prometheus text exposition of everything above, read now."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(CallintakeCollector(connection, session_factory))  # type: ignore[arg-type]
    return generate_latest(registry)


__all__ = ["CONTENT_TYPE", "CallintakeCollector", "METRICS_KEY", "STAGE_BUCKETS", "read_counters",
           "record_audio", "record_call_failed", "record_job", "record_reconcile", "record_reprocess",
           "record_stages", "render"]
