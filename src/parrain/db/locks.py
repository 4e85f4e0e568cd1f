"""Transaction-scoped named locks, for work that must not interleave but has no row to lock
yet (two events about one device: neither row exists until one of them writes it).

On PostgreSQL a name becomes a 64-bit advisory lock key (``pg_advisory_xact_lock``), held
until the transaction ends; names are locked in sorted order so two transactions asking for
overlapping sets cannot deadlock on them. On SQLite every write transaction already holds
the database's only write lock (``BEGIN IMMEDIATE``), so there is nothing more to take.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from sqlalchemy.orm import Session

from parrain.db.session import DriverCursor

_LOCK = "SELECT pg_advisory_xact_lock(%s)"
_TRY_LOCK = "SELECT pg_try_advisory_xact_lock(%s)"


def lock_key(name: str) -> int:
    """The signed 64-bit advisory lock key of ``name`` (the first 8 bytes of its SHA-256)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def lock_names(session: Session, names: Iterable[str]) -> None:
    """Hold a lock on each of ``names`` until the transaction ends (see the module doc).

    The locks are taken in sorted key order by one ``executemany`` on the driver's cursor,
    which psycopg sends together (a batch of events locks about 1,500 names: one statement
    each was a quarter of its time on PostgreSQL)."""
    if session.get_bind().dialect.name != "postgresql":
        return
    keys = sorted({lock_key(name) for name in names})
    if keys:
        with DriverCursor.of(session) as cursor:
            cursor.executemany(_LOCK, [(key,) for key in keys])


def try_lock_name(session: Session, name: str) -> bool:
    """Take the lock on ``name`` until the transaction ends if no other transaction holds
    it, without waiting; False if one does. On SQLite, always True (see the module doc)."""
    if session.get_bind().dialect.name != "postgresql":
        return True
    with DriverCursor.of(session) as cursor:
        [(taken,)] = cursor.query(_TRY_LOCK, (lock_key(name),))
    return bool(taken)
