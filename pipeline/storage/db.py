"""Engines, sessions, migrations and the translation of database failures into the error tree.

SQLite (the default, a file under the data directory) runs in WAL mode with a busy timeout so that
the API and workers on one host can share it; PostgreSQL (``postgresql+psycopg://``) is the choice
for several hosts. Migrations are Alembic scripts shipped inside this package and run by ``upgrade``.

Example::

    settings = Settings()
    upgrade(settings)
    factory = make_session_factory(make_engine(settings))
    with session_scope(factory) as session:
        call = repo.get_call(session, call_id="3f2a9c0d5e6b7a81")
"""

from __future__ import annotations

import fcntl
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from pipeline.errors import Conflict, StorageError, StorageUnavailable
from pipeline.settings import Settings

logger = logging.getLogger(__name__)

#: what every use case is given to open database sessions
SessionFactory = sessionmaker[Session]

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
#: any constant will do; it names the PostgreSQL advisory lock held while migrating
_PG_MIGRATION_LOCK = 0x63616C6C  # "call"
SQLITE_BUSY_TIMEOUT_MS = 30_000


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def make_engine(settings: Settings, *, url: str | None = None, **kwargs: Any) -> Engine:
    """An engine for the settings' database (or ``url``), configured for concurrent use.

    SQLite: creates the data directory, turns on WAL, foreign keys and a 30 s busy timeout on every
    connection. PostgreSQL: pre-ping pooled connections and give up connecting after 5 s, so that an
    unreachable server turns into ``StorageUnavailable`` quickly instead of hanging a request.
    """
    url = url or settings.resolved_database_url
    if is_sqlite(url):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}, **kwargs
        )
        event.listen(engine, "connect", _sqlite_on_connect)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    connect_args = {"connect_timeout": 5} if make_url(url).get_backend_name() == "postgresql" else {}
    return create_engine(url, connect_args=connect_args, **kwargs)


def _sqlite_on_connect(dbapi_connection: Any, connection_record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """A session factory whose objects stay readable after commit (``expire_on_commit=False``)."""
    return sessionmaker(bind=engine, expire_on_commit=False)


def translate_db_error(exc: Exception) -> Exception:
    """The pipeline error for a SQLAlchemy/driver exception (``exc`` itself when it is none of those).

    Connection failures, locks and pool timeouts become ``StorageUnavailable`` (retry later); a
    violated constraint becomes ``Conflict``; anything else from the database is a ``StorageError``.
    """
    if isinstance(exc, sa_exc.IntegrityError):
        return Conflict(f"the change contradicts stored data: {_first_line(exc.orig)}", stage="store")
    if isinstance(exc, (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError)) or (
        isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated
    ):
        reason = _first_line(getattr(exc, "orig", None) or exc)
        return StorageUnavailable(f"database unavailable: {reason}", stage="store")
    if isinstance(exc, sa_exc.SQLAlchemyError):
        reason = _first_line(getattr(exc, "orig", None) or exc)
        return StorageError(f"database error: {reason}", stage="store")
    return exc


def _first_line(obj: object) -> str:
    lines = str(obj).strip().splitlines()
    return lines[0] if lines else type(obj).__name__


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on error, database errors translated.

    Example::

        with session_scope(factory) as session:
            repo.set_call_status(session, call_id=cid, status=CallStatus.PROCESSING)
    """
    session = factory()
    try:
        yield session
        session.commit()
    except sa_exc.SQLAlchemyError as exc:
        _quiet_rollback(session)
        raise translate_db_error(exc) from exc
    except BaseException:
        _quiet_rollback(session)
        raise
    finally:
        session.close()


def _quiet_rollback(session: Session) -> None:
    try:
        session.rollback()
    except sa_exc.SQLAlchemyError:  # the connection may be gone; the original error matters more
        logger.debug("rollback failed", exc_info=True)


def check_database(engine: Engine) -> None:
    """Raise ``StorageUnavailable`` unless the database answers ``SELECT 1``."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except sa_exc.SQLAlchemyError as exc:
        raise translate_db_error(exc) from exc


def alembic_config(url: str) -> Any:
    """An Alembic ``Config`` pointing at the migrations shipped in this package."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def script_heads() -> set[str]:
    """The revisions a fully migrated database is at (one per branch of the shipped migrations)."""
    from alembic.script import ScriptDirectory

    return set(ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads())


def current_heads(engine: Engine) -> set[str]:
    """The revisions the database behind ``engine`` is at (empty when it was never migrated)."""
    from alembic.migration import MigrationContext

    with engine.connect() as conn:
        return set(MigrationContext.configure(conn).get_current_heads())


def upgrade(settings: Settings, *, url: str | None = None, revision: str = "heads") -> None:
    """Create or migrate the schema of the settings' database (or ``url``) to ``revision``.

    Safe when several processes start together: SQLite migrations hold a file lock next to the
    database, PostgreSQL ones a transaction-scoped advisory lock. Running it on an up-to-date
    database does nothing. Raises ``StorageUnavailable`` when the database cannot be reached.
    """
    from alembic import command

    url = url or settings.resolved_database_url
    engine = make_engine(settings, url=url)
    cfg = alembic_config(url)
    try:
        if is_sqlite(url):
            database = make_url(url).database
            lock_path = None
            if database and database != ":memory:":
                lock_path = Path(database).with_name(f".{Path(database).name}.migrate-lock")
            with _file_lock(lock_path), engine.begin() as conn:
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, revision)
        else:
            with engine.begin() as conn:
                if conn.dialect.name == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, revision)
    except sa_exc.SQLAlchemyError as exc:
        raise translate_db_error(exc) from exc
    finally:
        engine.dispose()
    logger.info("database schema at %s", revision)


@contextmanager
def _file_lock(path: Path | None) -> Iterator[None]:
    if path is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
