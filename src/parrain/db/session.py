"""The unit of work: one request, command or job is one transaction.

Services take a :class:`~sqlalchemy.orm.Session` and never commit. The edges (web, CLI,
worker) call :meth:`Database.run`, which opens a transaction, runs the work, commits, and
re-runs the whole work a bounded number of times when the database reports a transient
conflict (PostgreSQL serialization failure, deadlock or a concurrent insert of the same key;
SQLite busy). Because the work is re-run from the start, it must only touch the database
through the session it is given.

SQLite writes start with ``BEGIN IMMEDIATE`` so that the write lock is taken before the first
read: a read-check-write sequence can never be interleaved with another writer.

The session of a write transaction is a :class:`UnitOfWork`: a plain ``Session`` bound to the
transaction's connection, whose transaction ``Database`` begins and commits itself (the
session joins it and flushes into it), and the connection is one of a few kept open between
transactions. Together they cost a fraction of a session that checks out a connection and
manages its own transaction, which counted for a fifth of a one-transfer commit.

:class:`DriverCursor` runs the few hottest statements (the ledger's write path) in the
driver's own SQL inside the session's transaction, with errors raised as SQLAlchemy raises
them; ``docs/performance.md`` says why.
"""

from __future__ import annotations

import logging
import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, text

try:
    import fcntl
except ImportError:  # pragma: no cover (Windows)
    fcntl = None  # type: ignore[assignment]
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from parrain.config import DatabaseSettings
from parrain.logging import get_logger

T = TypeVar("T")

_log = get_logger(__name__)

#: PostgreSQL SQLSTATEs that mean "try the same transaction again".
_PG_RETRYABLE = frozenset({"40001", "40P01", "23505"})
_READ_ONLY = "parrain_read_only"
_READ_ONLY_BEGIN = "parrain_read_only_begin"


def is_retryable(error: BaseException) -> bool:
    """True when ``error`` is a transient conflict that re-running the transaction resolves."""
    if not isinstance(error, DBAPIError):
        return False
    orig = error.orig
    sqlstate = getattr(orig, "sqlstate", None)
    if sqlstate is not None:
        return sqlstate in _PG_RETRYABLE
    if isinstance(orig, sqlite3.OperationalError):
        message = str(orig).lower()
        return "database is locked" in message or "database is busy" in message
    return False


_WRITER_FD = "parrain_writer_lock_fd"
_WRITER_HELD = "parrain_writer_lock_held"


class _WriterQueue:
    """SQLite writers of every process take turns through a lock file beside the database
    (``flock``), tried again after 0.1 ms, then less and less often up to every millisecond,
    taken before ``BEGIN IMMEDIATE`` and released at commit or rollback (and by the operating
    system if the process dies).

    Without it, a writer that finds the database locked relies on SQLite's busy handler,
    which sleeps 1, 2, 5 … 100 ms between tries: under contention a writer can lose the race
    for seconds (a p99 of 2.7 s with two API workers). A writer that cannot take the queue
    within ``busy_timeout`` goes on to ``BEGIN IMMEDIATE`` as before and meets SQLite's own
    "database is locked". Where ``fcntl`` does not exist (Windows) the queue is off.
    """

    #: Longest sleep between two tries, in seconds.
    STEP = 0.001
    #: The first sleep, doubled at each try up to STEP: most transactions are shorter than
    #: a millisecond, and a writer that slept a whole one after each wasted most of it.
    FIRST_STEP = 0.0001

    def __init__(self, database_path: str, timeout_ms: int) -> None:
        self.path = f"{database_path}-writers"
        self.timeout = timeout_ms / 1000

    def open(self, info: dict[Any, Any]) -> None:
        """Open the lock file for a new connection (once: a transaction only locks it)."""
        if fcntl is not None and _WRITER_FD not in info:
            info[_WRITER_FD] = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)

    def enter(self, info: dict[Any, Any]) -> None:
        fd = info.get(_WRITER_FD)
        if fd is None or fcntl is None or info.get(_WRITER_HELD):
            return
        deadline: float | None = None
        step = self.FIRST_STEP
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                now = time.monotonic()
                if deadline is None:
                    deadline = now + self.timeout
                if now >= deadline:
                    return  # no place in the queue: SQLite's busy handler decides
                time.sleep(min(step, deadline - now))
                step = min(2 * step, self.STEP)
            else:
                info[_WRITER_HELD] = True
                return

    @staticmethod
    def leave(info: dict[Any, Any]) -> None:
        if info.pop(_WRITER_HELD, False) and fcntl is not None:
            fcntl.flock(info[_WRITER_FD], fcntl.LOCK_UN)

    @classmethod
    def close(cls, info: dict[Any, Any]) -> None:
        cls.leave(info)
        fd = info.pop(_WRITER_FD, None)
        if fd is not None:
            os.close(fd)


def _install_sqlite_behaviour(engine: Engine, settings: DatabaseSettings) -> None:
    database_path = engine.url.database or ""
    queue = _WriterQueue(os.path.abspath(database_path), settings.busy_timeout_ms)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, record: Any) -> None:
        queue.open(record.info)
        # The dialect's do_begin below decides how a transaction starts.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(settings.busy_timeout_ms)}")
        cursor.execute(f"PRAGMA synchronous={settings.sqlite_synchronous}")
        # Zero the bytes a change frees inside a page (no extra I/O): an erased person's
        # sealed fields and wrapped key do not linger in the file (ADR 14).
        cursor.execute("PRAGMA secure_delete=FAST")
        cursor.close()

    # How a transaction starts and ends: the dialect's own begin, commit and rollback on
    # this engine, rather than "begin"/"commit" events. An engine with connection events
    # dispatches them around every statement and transaction of every connection, which
    # cost a one-transfer transaction about a twentieth of its time (docs/performance.md).
    # A read-only transaction (see read_only_engine) marks its connection first.
    dialect = engine.dialect
    commit, rollback = dialect.do_commit, dialect.do_rollback

    def do_begin(pooled: Any) -> None:
        info = pooled.info
        if info.pop(_READ_ONLY_BEGIN, False):
            pooled.dbapi_connection.execute("BEGIN DEFERRED")
            return
        queue.enter(info)
        try:
            pooled.dbapi_connection.execute("BEGIN IMMEDIATE")
        except BaseException:
            queue.leave(info)
            raise

    def leave(pooled: Any) -> None:
        try:
            info = pooled.info
        except NotImplementedError:  # the ad hoc connection of the engine's first connect
            return
        queue.leave(info)

    def do_commit(pooled: Any) -> None:
        try:
            commit(pooled)
        finally:
            leave(pooled)

    def do_rollback(pooled: Any) -> None:
        try:
            rollback(pooled)
        finally:
            leave(pooled)

    # Instance attributes shadow the dialect class's methods for this engine only.
    setattr(dialect, "do_begin", do_begin)  # noqa: B010
    setattr(dialect, "do_commit", do_commit)  # noqa: B010
    setattr(dialect, "do_rollback", do_rollback)  # noqa: B010

    # A connection returned or invalidated mid-transaction must not keep its place; a closed
    # one closes its lock file.
    def _release(_dbapi: Any, record: Any, *_args: Any) -> None:
        if record is not None:
            queue.leave(record.info)

    def _close(_dbapi: Any, record: Any, *_args: Any) -> None:
        if record is not None:
            queue.close(record.info)

    for pool_event in ("checkin", "invalidate", "soft_invalidate"):
        event.listen(engine.pool, pool_event, _release)
    event.listen(engine.pool, "close", _close)


def read_only_engine(engine: Engine) -> Engine:
    """The engine of read-only transactions: the same pool, with the execution option
    ``parrain_read_only``. On SQLite its transactions begin ``DEFERRED`` (a reader takes no
    write lock and no place in the writers' queue): a "begin" event of this engine alone
    marks the connection for the dialect's ``do_begin``, and the write engine keeps no
    connection events at all."""
    reader = engine.execution_options(**{_READ_ONLY: True})
    if engine.dialect.name == "sqlite":

        def _on_begin(connection: Connection) -> None:
            connection.connection.info[_READ_ONLY_BEGIN] = True

        event.listen(reader, "begin", _on_begin)
    return reader


def is_read_only(session: Session) -> bool:
    """Whether ``session`` belongs to a read-only transaction (:meth:`Database.read`): one
    that has written nothing and will write nothing."""
    if isinstance(session, UnitOfWork):
        return False
    return bool(session.connection().get_execution_options().get(_READ_ONLY))


_sql_log = logging.getLogger("sqlalchemy.engine.Engine")


class DriverCursor:
    """Plain SQL on the DB-API cursor of a connection, inside its current transaction.

    For the few statements where SQLAlchemy's work per statement (an execution context,
    events, each value and row processed) costs more than the database does: the ledger's
    write path. The SQL and the values are the driver's own (``?`` or ``%s`` placeholders,
    values as the column types store them). A driver error is raised as SQLAlchemy raises it
    (a ``DBAPIError`` such as ``IntegrityError`` or ``OperationalError``, the connection
    invalidated on a disconnect), so :meth:`Database.run` retries and callers catch exactly
    what they would for any other statement. Statements are logged where SQLAlchemy logs.
    """

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self.dialect = connection.dialect.name
        dbapi_connection: Any = connection.connection.dbapi_connection
        self._dbapi_connection = dbapi_connection
        self._cursor: Any = dbapi_connection.cursor()

    @classmethod
    def of(cls, session: Session) -> DriverCursor:
        """The cursor of the session's connection (beginning its transaction if need be),
        once pending ORM changes are flushed, as ``Session.execute`` would (autoflush)."""
        if session.autoflush:
            session.flush()
        if isinstance(session, UnitOfWork):
            # Its connection is already in the transaction the session joins: no need to
            # set up the session's own transaction bookkeeping for a driver statement.
            return cls(session.unit_connection)
        return cls(session.connection())

    def __enter__(self) -> DriverCursor:
        return self

    def __exit__(self, *_exc: object) -> None:
        self._cursor.close()

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        """Run one statement that returns no rows (a write)."""
        if _sql_log.isEnabledFor(logging.INFO):
            _sql_log.info("%s [driver] %r", sql, tuple(params))
        try:
            self._cursor.execute(sql, params)
        except Exception as error:
            self._raise(error, sql, params, many=False)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """Run one statement that returns rows; return them."""
        if _sql_log.isEnabledFor(logging.INFO):
            _sql_log.info("%s [driver] %r", sql, tuple(params))
        try:
            self._cursor.execute(sql, params)
            return self._cursor.fetchall()  # type: ignore[no-any-return]
        except Exception as error:
            self._raise(error, sql, params, many=False)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run one statement per row (a single row as a plain execute: psycopg's executemany
        sets up a pipeline, which only pays from two rows on)."""
        if len(rows) == 1:
            self.execute(sql, rows[0])
            return
        if _sql_log.isEnabledFor(logging.INFO):
            _sql_log.info("%s [driver] %d rows", sql, len(rows))
        try:
            self._cursor.executemany(sql, rows)
        except Exception as error:
            self._raise(error, sql, rows, many=True)

    def _raise(self, error: Exception, sql: str, params: Any, *, many: bool) -> NoReturn:
        dialect = self._connection.dialect
        dbapi_error = dialect.loaded_dbapi.Error
        if not isinstance(error, dbapi_error):
            raise error
        disconnect = dialect.is_disconnect(error, self._dbapi_connection, self._cursor)
        if disconnect and not self._connection.invalidated:
            self._connection.invalidate(error)
        raise DBAPIError.instance(
            sql,
            params,
            error,
            dbapi_error,
            hide_parameters=self._connection.engine.hide_parameters,
            connection_invalidated=disconnect,
            dialect=dialect,
            ismulti=many,
        ) from error


def make_engine(settings: DatabaseSettings) -> Engine:
    url: URL = make_url(settings.url)
    if url.get_backend_name() == "sqlite":
        if url.database in (None, "", ":memory:"):
            raise ValueError("parrain needs a SQLite file, not an in-memory database")
        engine = create_engine(url, echo=settings.echo)
        _install_sqlite_behaviour(engine, settings)
        return engine
    if url.get_backend_name() == "postgresql":
        if url.get_driver_name() in ("", "psycopg2"):
            url = url.set(drivername="postgresql+psycopg")
        return create_engine(
            url,
            echo=settings.echo,
            pool_size=settings.pool_size,
            max_overflow=settings.pool_size,
            pool_pre_ping=settings.pool_pre_ping,
            pool_recycle=settings.pool_recycle_seconds,
        )
    raise ValueError(f"unsupported database {url.get_backend_name()!r}: use sqlite or postgresql")


class UnitOfWork(Session):
    """The session of one write transaction: bound to a connection whose transaction
    :meth:`Database.transaction` has begun and will commit or roll back. The session joins
    that transaction; ``flush`` writes into it (autoflush works as usual), and a
    ``rollback`` of the session rolls it back. Objects stay usable after the commit (they are
    not expired), as with the session factory this replaces."""

    def __init__(self, connection: Connection) -> None:
        super().__init__(
            bind=connection, join_transaction_mode="rollback_only", expire_on_commit=False
        )
        self.unit_connection = connection


@dataclass(slots=True)
class _Kept:
    """A connection kept between transactions, its session, and when it left the pool."""

    connection: Connection
    session: Session  # a UnitOfWork for write transactions
    since: float


#: Autocommit connections a PostgreSQL ``Database`` keeps for :meth:`Database.read_statements`.
_STATEMENT_KEPT = 2

#: Idle connections a SQLite ``Database`` keeps for its next transactions (its engine's pool
#: holds 5, and one writer at a time holds SQLite's write lock anyway).
_SQLITE_KEPT = 4


class Database:
    """An engine, a session factory and the transaction runner used by every edge.

    Write transactions reuse a few connections kept open between them (at most the pool
    size on PostgreSQL, 4 on SQLite; none when ``pool_pre_ping`` is on), most recently used
    first: checking a connection out of SQLAlchemy's pool and back in (with its reset) cost
    as much as a SQLite statement. A kept connection is used by one transaction at a time, is
    given back to the pool once ``pool_recycle_seconds`` have passed since it left it, and
    after any error; :meth:`dispose` closes them all. They count against the pool's limit
    (``pool_size`` + overflow), which is unchanged.
    """

    def __init__(self, settings: DatabaseSettings) -> None:
        self.settings = settings
        self.engine = make_engine(settings)
        self._read_sessions = sessionmaker(
            bind=read_only_engine(self.engine), expire_on_commit=False
        )
        # PostgreSQL: read-only work whose every statement is its own snapshot needs no
        # transaction (no BEGIN and no ROLLBACK round trips). SQLite has no round trips.
        self._statement_engine = (
            read_only_engine(self.engine).execution_options(isolation_level="AUTOCOMMIT")
            if self.dialect == "postgresql"
            else None
        )
        # And write work whose every statement is atomic on its own (run_statements).
        self._write_statement_engine = (
            self.engine.execution_options(isolation_level="AUTOCOMMIT")
            if self.dialect == "postgresql"
            else None
        )
        if settings.pool_pre_ping:
            self._keep = 0
        else:
            self._keep = _SQLITE_KEPT if self.dialect == "sqlite" else settings.pool_size
        # A few autocommit connections kept for read_statements, outside the writers' ones
        # (both count against the pool's limit, which is twice its size).
        self._keep_statements = min(_STATEMENT_KEPT, self._keep)
        self._kept_statements: list[_Kept] = []
        self._kept_write_statements: list[_Kept] = []
        recycle = settings.pool_recycle_seconds
        self._recycle = float(recycle) if recycle >= 0 and self.dialect != "sqlite" else None
        self._kept: list[_Kept] = []
        self._kept_lock = threading.Lock()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One transaction: commit if the block finishes, roll back if it raises.

        The connection is a kept one or one checked out of the pool; the transaction begins
        at once (on SQLite, ``BEGIN IMMEDIATE`` takes the write lock here). Pending ORM
        changes are flushed before the commit; the session is closed after it, so objects
        it loaded are detached, as before. A kept connection keeps its session too: a closed
        ``Session`` holds nothing and is reused by the connection's next transaction."""
        kept = self._check_out()
        connection, session = kept.connection, kept.session
        try:
            with connection.begin():
                try:
                    yield session
                    session.flush()
                except BaseException:
                    session.close()
                    raise
                # Detach what the work loaded; a session that never began its own
                # transaction (driver statements only) holds nothing to release.
                if session.in_transaction() or session.identity_map:
                    session.close()
        except BaseException:
            connection.close()  # back to the pool, which resets or discards it
            raise
        self._check_in(kept)

    def _check_out(self) -> _Kept:
        kept = self._reuse(self._kept)
        if kept is not None:
            if kept.session.info:
                kept.session.info.clear()
            return kept
        connection = self.engine.connect()
        return _Kept(connection, UnitOfWork(connection), time.monotonic())

    def _reuse(self, shelf: list[_Kept]) -> _Kept | None:
        """The most recently kept connection of ``shelf`` not due for recycling, if any."""
        with self._kept_lock:
            while shelf:
                kept = shelf.pop()
                if self._recycle is None or time.monotonic() - kept.since < self._recycle:
                    return kept
                kept.connection.close()  # the pool recycles it at its next check-out
        return None

    def _check_in(self, kept: _Kept, shelf: list[_Kept] | None = None, keep: int = -1) -> None:
        """Keep ``kept`` on ``shelf`` (default: the write transactions') if it is healthy,
        idle and the shelf holds fewer than ``keep``; else give it back to the pool."""
        if shelf is None:
            shelf, keep = self._kept, self._keep
        connection = kept.connection
        if not connection.invalidated and not connection.in_transaction():
            with self._kept_lock:
                if len(shelf) < keep:
                    shelf.append(kept)
                    return
        connection.close()

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A read-only transaction (on SQLite it does not take the write lock)."""
        with self._read_sessions() as session:
            yield session

    def run(self, work: Callable[[Session], T]) -> T:
        """Run ``work`` in one transaction and commit, retrying transient conflicts."""
        attempts = self.settings.retry_attempts
        for attempt in range(1, attempts + 1):
            try:
                with self.transaction() as session:
                    return work(session)
            except DBAPIError as error:
                if attempt == attempts or not is_retryable(error):
                    raise
                _log.debug("transaction_retry", attempt=attempt, reason=type(error.orig).__name__)
                time.sleep(random.uniform(0, min(0.002 * 2**attempt, 0.2)))  # noqa: S311
        raise AssertionError("unreachable")  # pragma: no cover

    def read(self, work: Callable[[Session], T]) -> T:
        """Run read-only ``work`` and return its result."""
        with self.reading() as session:
            return work(session)

    def read_statements(self, work: Callable[[Session], T]) -> T:
        """Run read-only ``work`` whose statements need not share one snapshot: each sees
        what was committed when it started. On PostgreSQL it runs outside any transaction
        (autocommit: a statement is one round trip, without ``BEGIN`` and ``ROLLBACK``), on
        one of a few connections kept for it with their sessions (a pool check-out and its
        reset cost more than the statement); on SQLite it is :meth:`read`. For work that is
        right whatever commits between its statements, such as a consent check (ADR 25)."""
        if self._statement_engine is None:
            return self.read(work)
        return self._autocommit(self._statement_engine, self._kept_statements, work)

    def run_statements(self, work: Callable[[Session], T]) -> T:
        """Run write ``work`` whose statements are each atomic on their own and need no
        transaction around them (one ``INSERT … ON CONFLICT DO NOTHING`` and a read, say).
        On PostgreSQL each statement commits by itself (autocommit: one round trip, without
        ``BEGIN`` and ``COMMIT``), on a connection kept for it as :meth:`read_statements`
        keeps its own; nothing is retried (a statement that failed changed nothing). On
        SQLite it is :meth:`run`: its writers take turns through the queue, and there are no
        round trips to save."""
        if self._write_statement_engine is None:
            return self.run(work)
        return self._autocommit(self._write_statement_engine, self._kept_write_statements, work)

    def _autocommit(self, engine: Engine, shelf: list[_Kept], work: Callable[[Session], T]) -> T:
        kept = self._reuse(shelf)
        if kept is None:
            connection = engine.connect()
            session = Session(bind=connection, expire_on_commit=False)
            kept = _Kept(connection, session, time.monotonic())
        connection, session = kept.connection, kept.session
        try:
            result = work(session)
            session.close()  # detaches what the work loaded; no round trip in autocommit
        except BaseException:
            session.close()
            connection.close()  # back to the pool, which resets or discards it
            raise
        self._check_in(kept, shelf, self._keep_statements)
        return result

    def ping(self) -> None:
        """A trivial read; raises a ``DBAPIError`` when the database cannot be used."""
        self.read(lambda session: session.execute(text("SELECT 1")))

    def truncate_log(self) -> bool:
        """On SQLite, copy the write-ahead log into the database file and empty it, so that
        the old versions of changed pages (an erased person's wrapped key, say) no longer
        sit in the ``-wal`` file. ``False`` if readers kept part of it (try again later);
        PostgreSQL keeps no such copy readable through the database: always ``True``."""
        if self.dialect != "sqlite":
            return True
        # Outside any transaction (a checkpoint cannot run inside one): the driver's own
        # connection, which the connect hook left in autocommit.
        pooled = self.engine.raw_connection()
        try:
            cursor = pooled.cursor()
            busy, _log_pages, _moved = cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            cursor.close()
        finally:
            pooled.close()
        return not busy

    def dispose(self) -> None:
        """Close the kept connections and the pool's. Call it when no transaction runs."""
        with self._kept_lock:
            kept = self._kept + self._kept_statements + self._kept_write_statements
            self._kept, self._kept_statements, self._kept_write_statements = [], [], []
        for each in kept:
            each.connection.close()
        self.engine.dispose()
