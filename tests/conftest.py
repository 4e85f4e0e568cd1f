"""Test fixtures: a real database for every test, SQLite by default, PostgreSQL on demand.

Set ``PARRAIN_TEST_DATABASE_URL`` to a PostgreSQL URL to run the whole suite there (CI does,
after the SQLite run). Each xdist worker gets its own database, migrated to head once:
SQLite tests each get a fresh copy of a migrated file; PostgreSQL tests share the worker's
database and every table is emptied after each test. A database that cannot be reached is
an error, never a skip.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from parrain.config import DatabaseSettings
from parrain.db.metadata import metadata
from parrain.db.migrate import upgrade
from parrain.db.session import Database
from parrain.kit.clock import FrozenClock

POSTGRES_URL = os.environ.get("PARRAIN_TEST_DATABASE_URL", "").strip()
START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


def pytest_report_header() -> str:
    return f"parrain database: {'postgresql' if POSTGRES_URL else 'sqlite'}"


@pytest.fixture(scope="session")
def backend() -> str:
    return "postgresql" if POSTGRES_URL else "sqlite"


@pytest.fixture(scope="session")
def _template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated database for this worker: a SQLite file to copy, or a PostgreSQL URL."""
    if not POSTGRES_URL:
        path = tmp_path_factory.mktemp("db") / "template.sqlite3"
        database = Database(DatabaseSettings(url=f"sqlite:///{path}"))
        upgrade(database.engine)
        database.dispose()
        yield str(path)
        return
    base = make_url(POSTGRES_URL)
    name = f"{base.database}_{_worker()}_{os.getpid()}"  # concurrent sessions never collide
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:  # fails loudly when PostgreSQL is unreachable
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = base.set(database=name).render_as_string(hide_password=False)
    database = Database(DatabaseSettings(url=url))
    upgrade(database.engine)
    database.dispose()
    yield url
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def database_url(_template: str, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty, migrated database that belongs to this test alone."""
    if not POSTGRES_URL:
        path = tmp_path / "parrain.sqlite3"
        shutil.copyfile(_template, path)
        yield f"sqlite:///{path}"
        return
    yield _template
    engine = create_engine(_template)
    tables = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {tables} CASCADE"))
    engine.dispose()


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    db = Database(DatabaseSettings(url=database_url))
    yield db
    db.dispose()


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)
