"""What the benchmark scripts share. They run as scripts (``python benchmarks/x.py``), so
this module is imported from their own folder."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url


@contextmanager
def fresh_database(db: str, url: str | None, *, postgres: str, stem: str) -> Iterator[str]:
    """The URL to benchmark: a temporary SQLite file (``<stem>.sqlite3``), or the PostgreSQL
    database ``postgres`` names, created for the run and dropped afterwards. A given ``url``
    (``--database-url``) is used as it is and kept."""
    if url is not None:
        yield url
        return
    if db == "sqlite":
        with tempfile.TemporaryDirectory(prefix=f"parrain-bench-{stem}-") as directory:
            yield f"sqlite:///{Path(directory) / f'{stem}.sqlite3'}"
        return
    target = make_url(postgres)
    name = target.database
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield target.render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def settle_statistics(url: str) -> None:
    """After seeding: on PostgreSQL, ``VACUUM ANALYZE`` the database, as autovacuum would
    soon after a bulk load, so the measured run meets the steady state (fresh statistics,
    no autovacuum pass competing for the CPU) rather than that pass. SQLite: ``ANALYZE``."""
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            if engine.dialect.name == "postgresql":
                connection.execute(text("VACUUM ANALYZE"))
            else:
                connection.execute(text("ANALYZE"))
    finally:
        engine.dispose()
