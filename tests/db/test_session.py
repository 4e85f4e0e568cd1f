"""The unit of work: commit or nothing, bounded retries, SQLite's immediate write lock."""

from __future__ import annotations

import sqlite3
import threading
import uuid
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from parrain.config import DatabaseSettings
from parrain.db.session import Database, is_retryable
from parrain.errors import ParrainError
from parrain.kit.clock import FrozenClock
from parrain.ledger import repository
from parrain.ledger import service as ledger
from parrain.ledger.schemas import AccountCreate


def _open_account(session: Session, clock: FrozenClock, reference: str) -> None:
    ledger.create_account(
        session=session,
        account_in=AccountCreate(currency="GBP", kind="test", reference=reference),
        clock=clock,
    )


def test_an_error_leaves_nothing_written(database: Database, clock: FrozenClock) -> None:
    def work(session: Session) -> None:
        _open_account(session, clock, "first")
        raise ParrainError("refused half-way")

    with pytest.raises(ParrainError):
        database.run(work)
    assert database.read(lambda s: ledger.find_account(session=s, reference="first")) is None


def test_a_retryable_conflict_reruns_the_whole_work(database: Database, clock: FrozenClock) -> None:
    calls = []

    def work(session: Session) -> str:
        calls.append(1)
        _open_account(session, clock, f"attempt-{len(calls)}")
        if len(calls) < 3:
            raise OperationalError("BEGIN", {}, sqlite3.OperationalError("database is locked"))
        return "done"

    assert database.run(work) == "done"
    assert len(calls) == 3
    found = [
        database.read(lambda s, n=n: ledger.find_account(session=s, reference=f"attempt-{n}"))
        for n in (1, 2, 3)
    ]
    assert [f is not None for f in found] == [False, False, True]


def test_retries_are_bounded(database_url: str) -> None:
    database = Database(DatabaseSettings(url=database_url, retry_attempts=3))
    calls = []

    def work(_session: Session) -> None:
        calls.append(1)
        raise OperationalError("BEGIN", {}, sqlite3.OperationalError("database is locked"))

    with pytest.raises(OperationalError):
        database.run(work)
    assert len(calls) == 3
    database.dispose()


def test_only_transient_conflicts_are_retryable() -> None:
    class PgError(Exception):
        def __init__(self, sqlstate: str) -> None:
            self.sqlstate = sqlstate

    def wrapped(orig: Exception) -> OperationalError:
        return OperationalError("SELECT 1", {}, orig)

    assert is_retryable(wrapped(PgError("40001")))  # serialization failure
    assert is_retryable(wrapped(PgError("40P01")))  # deadlock
    assert is_retryable(IntegrityError("INSERT", {}, PgError("23505")))  # concurrent insert
    assert not is_retryable(IntegrityError("INSERT", {}, PgError("23514")))  # CHECK failed
    assert not is_retryable(wrapped(sqlite3.OperationalError("no such table: x")))
    assert not is_retryable(ValueError("not a database error"))


def test_a_writer_holds_its_lock_until_it_ends(
    database_url: str, backend: str, clock: FrozenClock
) -> None:
    """SQLite: BEGIN IMMEDIATE takes the write lock before the first read. PostgreSQL: the
    ledger's account lock (SELECT ... FOR UPDATE) blocks a second locker. Either way, plain
    reads go on."""
    patient = Database(DatabaseSettings(url=database_url))
    impatient = Database(DatabaseSettings(url=database_url, busy_timeout_ms=0, retry_attempts=1))
    account = patient.run(
        lambda s: ledger.create_account(
            session=s, account_in=AccountCreate(currency="GBP", kind="test"), clock=clock
        )
    )
    holding, release = threading.Event(), threading.Event()

    def writer() -> None:
        with patient.transaction() as session:
            if backend == "sqlite":
                session.execute(text("SELECT 1"))  # a read only, yet the lock is already held
            else:
                repository.lock_accounts(session, [account.id])
            holding.set()
            release.wait(10)

    def second_writer(session: Session) -> None:
        if backend == "postgresql":
            session.execute(text("SET LOCAL lock_timeout = '200ms'"))
        repository.lock_accounts(session, [account.id])

    thread = threading.Thread(target=writer)
    thread.start()
    assert holding.wait(10)
    try:
        with pytest.raises(OperationalError, match=r"database is locked|lock timeout"):
            impatient.run(second_writer)
        read = impatient.read(lambda s: ledger.get_account(session=s, account_id=account.id))
        assert read.id == account.id
    finally:
        release.set()
        thread.join()
        impatient.dispose()
        patient.dispose()


def test_in_memory_sqlite_is_refused() -> None:
    with pytest.raises(ValueError, match="SQLite file"):
        Database(DatabaseSettings(url="sqlite://"))


def test_unknown_backends_are_refused() -> None:
    with pytest.raises(ValueError, match="unsupported database"):
        Database(DatabaseSettings(url=f"mysql://x/{uuid.uuid4().hex}"))


def _queue_is_free(database_url: str) -> bool:
    """Whether another process could take the SQLite writer queue right now."""
    import fcntl
    import os

    path = os.path.abspath(database_url.removeprefix("sqlite:///")) + "-writers"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return True
    finally:
        os.close(fd)


def test_sqlite_writers_hold_the_writer_queue_exactly_while_they_write(tmp_path: Path) -> None:
    """On its own SQLite file, whichever database the suite runs on."""
    database_url = f"sqlite:///{tmp_path / 'queue.sqlite3'}"
    database = Database(DatabaseSettings(url=database_url))
    seen: list[bool] = []
    try:
        database.run(lambda s: seen.append(_queue_is_free(database_url)))
        assert seen == [False]
        assert _queue_is_free(database_url)

        def fails(session: Session) -> None:
            seen.append(_queue_is_free(database_url))
            raise RuntimeError("boom")

        with pytest.raises(RuntimeError, match="boom"):
            database.run(fails)
        assert seen == [False, False]
        assert _queue_is_free(database_url)  # a rolled-back writer left the queue too
        database.read(lambda s: seen.append(_queue_is_free(database_url)))
        assert seen[-1] is True  # readers never queue
    finally:
        database.dispose()


def test_sqlite_readers_begin_deferred_and_writers_immediate(tmp_path: Path) -> None:
    """A read transaction holds no write lock and no place in the writers' queue: a writer
    on another thread commits while it is open. The write engine carries no connection
    events (begin and commit are the dialect's own, see ``db.session``): events would be
    dispatched around every statement of every write transaction."""
    database_url = f"sqlite:///{tmp_path / 'modes.sqlite3'}"
    database = Database(DatabaseSettings(url=database_url, busy_timeout_ms=500))
    outcomes: list[object] = []
    try:
        assert not database.engine._has_events

        def write() -> None:
            try:
                database.run(lambda s: s.execute(text("CREATE TABLE IF NOT EXISTS t (x)")))
                outcomes.append("written")
            except OperationalError as error:  # pragma: no cover - what the test guards
                outcomes.append(error)

        def read(session: Session) -> None:
            session.execute(text("SELECT 1"))  # the read transaction is open from here
            outcomes.append(_queue_is_free(database_url))
            writer = threading.Thread(target=write)
            writer.start()
            writer.join(10)

        database.read(read)
        assert outcomes == [True, "written"]

        def held(session: Session) -> None:
            outcomes.append(_queue_is_free(database_url))
            raw = sqlite3.connect(database_url.removeprefix("sqlite:///"), timeout=0.05)
            try:
                raw.execute("BEGIN IMMEDIATE")  # the writer's lock is taken at its start
            except sqlite3.OperationalError as error:
                outcomes.append(str(error))
            finally:
                raw.close()

        database.run(held)
        assert outcomes[2:] == [False, "database is locked"]
    finally:
        database.dispose()
