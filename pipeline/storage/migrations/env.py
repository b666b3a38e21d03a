"""Alembic environment: runs the package's migrations on a connection handed over by
``pipeline.storage.db.upgrade`` or, from the ``alembic`` command line, on the settings' database."""

from __future__ import annotations

from alembic import context

from pipeline.storage.base import Base

target_metadata = Base.metadata
config = context.config


def run_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata,
        literal_binds=True, render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return

    from pipeline.settings import Settings
    from pipeline.storage.db import make_engine

    url = config.get_main_option("sqlalchemy.url") or None
    engine = make_engine(Settings(), url=url)
    try:
        with engine.begin() as conn:
            context.configure(connection=conn, target_metadata=target_metadata, render_as_batch=True)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
