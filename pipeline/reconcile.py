"""Find calls and dispatches whose work was lost and start it again: the database is the truth, not the queue.

A call is *in flight* while its status is ``queued``, ``processing`` or ``transcribed``. Each in-flight
call should have either a job waiting for it (in the queue, or scheduled for a retry) or a worker holding
it right now. It has neither when Redis was restarted or flushed, when the worker running it was killed
(``SIGKILL``, out of memory, the host lost), or when its job ran out of retries while the database was
away. ``reconcile`` asks the job queue about every in-flight call and, for each lost one:

* a call lost fewer than ``max_attempts`` times is enqueued again (a ``processing`` call goes back to
  ``queued`` and its ``retry_count`` goes up by one, since an attempt was lost);
* a call lost ``max_attempts`` times is marked ``failed`` at stage ``queue`` with the reason, so that a
  recording that kills every worker that touches it stops doing so and shows up for a person.

The same pass finds dispatch jobs lost the same ways: every approved ticket whose current version was
neither sent nor refused should have a dispatch job queued, scheduled or running; one that has none is
queued again (``DispatchQueue``; ``report.dispatch_requeued``).

Calls and tickets that changed within the last ``grace_s`` seconds are left alone (an upload or an
approval may be between its database commit and its enqueue). Each decision re-reads the call inside its
own transaction, so a call that a worker finished meanwhile is not touched. Re-enqueueing is safe even when
the call turns out to be done: the job finds the ticket of its rules version stored and returns; a dispatch
job finds its version sent and sends nothing.

The queue side is two small protocols (``JobQueue``, ``DispatchQueue``) so that this module stays free
of RQ; ``workers.registry.RqJobQueue`` and ``workers.dispatch_jobs.RqDispatchQueue`` implement them.
Example::

    report = reconcile(settings, session_factory=factory, jobs=RqJobQueue(connect(settings), settings),
                       dispatches=RqDispatchQueue(connection, dispatch_context))
    print(report.requeued)            # ['3f2a9c0d5e6b7a81', ...]  calls
    print(report.dispatch_requeued)   # ['00aa11bb22cc33dd', ...]  tickets
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from pipeline.settings import Settings
from pipeline.storage.base import utcnow
from pipeline.storage.calls import CallRow, CallStatus
from pipeline.storage.db import session_scope

logger = logging.getLogger(__name__)

IN_FLIGHT: tuple[CallStatus, ...] = (CallStatus.QUEUED, CallStatus.PROCESSING, CallStatus.TRANSCRIBED)
PAGE = 1000
GAVE_UP_STAGE = "queue"


class JobState(StrEnum):
    WAITING = "waiting"
    """A job for the call is queued, scheduled for a retry, or waiting on a dependency."""
    RUNNING = "running"
    """A live worker holds the call."""
    LOST = "lost"
    """Nothing will ever work on the call unless it is enqueued again."""


@dataclass(frozen=True)
class InFlightCall:
    call_id: str
    status: CallStatus
    duration_s: float | None
    retry_count: int
    updated_at: datetime


class JobQueue(Protocol):
    """What ``reconcile`` needs from a job queue."""

    def job_states(self, calls: Sequence[InFlightCall]) -> Mapping[str, JobState]:
        """The state of the work for each call (by call id); a call missing from the answer is lost."""
        ...

    def requeue(self, call: InFlightCall) -> str:
        """Enqueue the call again, replacing any dead job it had; returns the job id."""
        ...


class DispatchQueue(Protocol):
    """What ``reconcile`` needs to find lost dispatch jobs."""

    def requeue_lost(self, *, changed_before: datetime) -> list[str]:
        """Queue again every approved ticket last changed before ``changed_before`` whose current version was
        neither sent nor refused and that has no dispatch job queued, scheduled or running; returns their
        ids."""
        ...


@dataclass
class ReconcileReport:
    """What one pass found and did."""

    checked: int = 0
    waiting: int = 0
    running: int = 0
    requeued: list[str] = field(default_factory=list)
    gave_up: list[str] = field(default_factory=list)
    skipped: int = 0
    """Lost when looked at, but changed before the decision (finished or picked up meanwhile)."""
    dispatch_requeued: list[str] = field(default_factory=list)
    """Approved tickets whose dispatch job was lost and is queued again."""

    def to_dict(self) -> dict[str, object]:
        return {"checked": self.checked, "waiting": self.waiting, "running": self.running,
                "requeued": list(self.requeued), "gave_up": list(self.gave_up), "skipped": self.skipped,
                "dispatch_requeued": list(self.dispatch_requeued)}


def iter_in_flight(
    session_factory: sessionmaker[Session], *, older_than: datetime, page: int = PAGE
) -> Iterator[list[InFlightCall]]:
    """Pages of in-flight calls last changed before ``older_than``, in id order (keyset paging, so calls
    that change status meanwhile neither repeat nor shift the pages)."""
    after = ""
    while True:
        with session_scope(session_factory) as session:
            rows = session.execute(
                select(CallRow.id, CallRow.status, CallRow.duration_s, CallRow.retry_count, CallRow.updated_at)
                .where(CallRow.status.in_(IN_FLIGHT), CallRow.updated_at <= older_than, CallRow.id > after)
                .order_by(CallRow.id).limit(page)
            ).all()
        if not rows:
            return
        yield [InFlightCall(call_id=r[0], status=CallStatus(r[1]), duration_s=r[2], retry_count=r[3] or 0,
                            updated_at=r[4]) for r in rows]
        after = rows[-1][0]


def reconcile(
    settings: Settings, *, session_factory: sessionmaker[Session], jobs: JobQueue, grace_s: float | None = None,
    max_attempts: int | None = None, now: datetime | None = None, dispatches: DispatchQueue | None = None,
) -> ReconcileReport:
    """Enqueue again every in-flight call that no job and no worker will finish, and (with ``dispatches``)
    every approved ticket whose dispatch job is gone; see the module docstring.

    ``grace_s`` and ``max_attempts`` default to ``settings.ops``. Raises ``StorageUnavailable`` when the
    database or the queue cannot be reached (nothing is half-done: each call and ticket is decided on its
    own, and the next pass finds what this one did not reach).
    """
    grace = settings.ops.reconcile_grace_s if grace_s is None else grace_s
    attempts = settings.ops.max_attempts if max_attempts is None else max_attempts
    cutoff = (now or utcnow()) - timedelta(seconds=max(grace, 0.0))
    report = ReconcileReport()
    for page in iter_in_flight(session_factory, older_than=cutoff):
        states = jobs.job_states(page)
        for call in page:
            report.checked += 1
            state = states.get(call.call_id, JobState.LOST)
            if state is JobState.WAITING:
                report.waiting += 1
            elif state is JobState.RUNNING:
                report.running += 1
            else:
                _repair(session_factory, jobs, call, attempts, report)
    if report.requeued or report.gave_up:
        logger.warning("reconcile: %d call(s) enqueued again, %d marked failed (of %d in flight)",
                       len(report.requeued), len(report.gave_up), report.checked)
    else:
        logger.info("reconcile: %d call(s) in flight, none lost", report.checked)
    if dispatches is not None:
        report.dispatch_requeued = list(dispatches.requeue_lost(changed_before=cutoff))
        if report.dispatch_requeued:
            logger.warning("reconcile: %d approved ticket(s) had lost their dispatch job; queued again",
                           len(report.dispatch_requeued))
    return report


def _repair(session_factory: sessionmaker[Session], jobs: JobQueue, call: InFlightCall, attempts: int,
            report: ReconcileReport) -> None:
    with session_scope(session_factory) as session:
        row = session.get(CallRow, call.call_id)
        if row is None or row.status not in IN_FLIGHT or row.updated_at != call.updated_at:
            report.skipped += 1  # finished, failed or picked up since we looked
            return
        lost_attempt = row.status is CallStatus.PROCESSING
        if lost_attempt and (row.retry_count or 0) + 1 >= attempts:
            row.status = CallStatus.FAILED
            row.error_stage = GAVE_UP_STAGE
            row.error_reason = (
                f"gave up after {(row.retry_count or 0) + 1} attempts: the worker processing this call "
                f"stopped each time (killed, out of memory, or its host lost)"
            )
            row.updated_at = utcnow()
            report.gave_up.append(call.call_id)
            logger.error("call %s: %s", call.call_id, row.error_reason)
            return
        if lost_attempt:
            row.retry_count = (row.retry_count or 0) + 1
            row.status = CallStatus.QUEUED
        row.updated_at = utcnow()
        duration = row.duration_s
    # committed first: if enqueueing fails now, the call is queued with no job and the next pass finds it
    requeued = InFlightCall(call_id=call.call_id, status=call.status, duration_s=duration,
                            retry_count=call.retry_count, updated_at=call.updated_at)
    jid = jobs.requeue(requeued)
    report.requeued.append(call.call_id)
    logger.warning("call %s: no job and no worker had it (%s); enqueued again as %s", call.call_id,
                   call.status.value, jid)


__all__ = ["IN_FLIGHT", "DispatchQueue", "InFlightCall", "JobQueue", "JobState", "ReconcileReport", "iter_in_flight",
           "reconcile"]
