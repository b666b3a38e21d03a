"""The worker process: load the speech model once, then take jobs until stopped.

Jobs run inside this process (RQ's ``SimpleWorker``), so the model loaded at start serves every job
and no job pays for loading it, and no forked child inherits the engine's thread pools. SIGTERM or
Ctrl-C asks for a warm shutdown: the job in progress finishes, then the worker exits; a second signal
stops at once. Retries are scheduled by the worker's scheduler.
"""

from __future__ import annotations

import logging
import os
import socket

from pipeline.settings import Settings
from pipeline.storage.db import is_sqlite, upgrade
from workers import jobs
from workers import queues as policy

logger = logging.getLogger(__name__)


def run_worker(settings: Settings, *, burst: bool = False, queues: list[str] | None = None) -> int:
    """Run a worker on ``queues`` (names, highest priority first; default all) and return an exit code.

    Migrates a SQLite database first, checks that Redis answers, loads the speech model, then works.
    With ``burst`` it returns once the queues are empty. Example::

        run_worker(Settings(), burst=True, queues=["intake"])
    """
    from rq import SimpleWorker

    names = list(queues or policy.ALL_QUEUES)
    if is_sqlite(settings.resolved_database_url):
        upgrade(settings)
    connection = policy.connect(settings)
    policy.ping(connection)
    logger.info("loading the speech model before taking jobs")
    jobs.install_context(jobs.build_context(settings))
    worker = SimpleWorker(
        [policy.get_queue(connection, name) for name in names], connection=connection,
        name=f"callintake-{socket.gethostname()}-{os.getpid()}",
    )
    logger.info("worker %s listening on %s (burst=%s)", worker.name, ", ".join(names), burst)
    try:
        worker.work(burst=burst, with_scheduler=True, logging_level=logging.getLevelName(
            logging.getLogger().getEffectiveLevel()))
    finally:
        jobs.install_context(None)
    return 0
