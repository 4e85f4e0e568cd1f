"""``Database.run_statements``: write work whose statements are each atomic on their own.

On PostgreSQL each statement commits by itself (autocommit on a kept connection: no
``BEGIN``/``COMMIT`` round trips); on SQLite it is ``Database.run``, one write transaction
through the writers' queue. What one statement wrote stays when a later one fails on
PostgreSQL, and nothing stays on SQLite; an error gives the connection back to the pool;
``dispose`` closes what is kept.
"""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from parrain.db.session import Database

_CLAIM = text(
    "INSERT INTO referral_events (id, type, body_hash, received_at, outcome) "
    "VALUES (:id, 'install', 'h', CURRENT_TIMESTAMP, '{}') ON CONFLICT (id) DO NOTHING "
    "RETURNING id"
)
_COUNT = text("SELECT count(*) FROM referral_events")


def _count(database: Database) -> int:
    return int(database.read(lambda s: s.execute(_COUNT).scalar_one()))


def test_what_each_statement_writes_is_kept(database: Database) -> None:
    def claim(session: Session) -> list[str]:
        return [
            row[0]
            for event_id in ("e1", "e2", "e1")
            for row in session.execute(_CLAIM, {"id": event_id}).all()
        ]

    assert database.run_statements(claim) == ["e1", "e2"]
    assert _count(database) == 2
    assert database.run_statements(claim) == []  # claimed already: nothing inserted
    assert _count(database) == 2


def test_a_failing_statement_leaves_the_earlier_ones_on_postgresql_only(
    database: Database, backend: str
) -> None:
    def claim_then_fail(session: Session) -> None:
        session.execute(_CLAIM, {"id": "kept-or-not"})
        session.execute(text("SELECT no_such_column FROM referral_events"))

    with pytest.raises(DBAPIError):
        database.run_statements(claim_then_fail)
    assert _count(database) == (1 if backend == "postgresql" else 0)
    # The connection went back to the pool; the next work runs on a healthy one.
    assert database.run_statements(lambda s: s.execute(_COUNT).scalar_one()) == _count(database)


def test_on_postgresql_no_transaction_is_opened(database: Database, backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("SQLite's run_statements is Database.run (a write transaction)")
    query = text("SELECT transaction_timestamp() = statement_timestamp(), pg_backend_pid()")

    def twice(session: Session) -> list[tuple[bool, int]]:
        return [tuple(session.execute(query).one()) for _ in range(2)]  # type: ignore[misc]

    [(first_alone, pid), (second_alone, same_pid)] = database.run_statements(twice)
    assert first_alone  # each statement its own transaction
    assert second_alone
    assert pid == same_pid
    # The next call reuses the kept connection.
    [(_, next_pid), _] = database.run_statements(twice)
    assert next_pid == pid
