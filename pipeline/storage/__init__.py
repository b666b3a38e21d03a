"""Persistence: the database (SQLAlchemy 2 + Alembic) and the content-addressed audio store.

``db`` builds engines and sessions and runs migrations; the tables are grouped by concept: ``base``
(what they share), ``calls`` (calls and transcripts), ``tickets`` (tickets and their audit trail),
``keys`` (API keys), ``dispatch`` (hand-offs onward and the callback loop), ``reprocess`` (archive runs);
``repo`` holds the verb-first query functions, ``audio_store`` the files under ``<data_dir>/audio``.

Importing the package imports every table module, so that ``base.Base.metadata`` is complete wherever
a table is used (relationships name their targets by class name).
"""

from pipeline.storage import calls, dispatch, keys, reprocess, tickets  # noqa: F401
