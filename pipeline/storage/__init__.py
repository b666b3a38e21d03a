"""Persistence: the database (SQLAlchemy 2 + Alembic) and the content-addressed audio store.

``db`` builds engines and sessions and runs migrations, ``models`` holds the ORM tables,
``repo`` the verb-first query functions, ``audio_store`` the files under ``<data_dir>/audio``.
"""
