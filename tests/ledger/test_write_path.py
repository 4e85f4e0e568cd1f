"""The write path's combined reads: the account lock and the idempotency check together.

A batch that posts or voids nothing locks its accounts and checks its ids in one statement,
and reads the stored transfers only when one of them exists or an account is missing. These
tests take the paths that statement does not settle alone: a replay inside a batch, a
reused id naming an unknown account, and an id committed by another transaction while this
one waited for the locks (on PostgreSQL the check does not see it, the insert fails, the
transaction is retried and replays it).
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from parrain.config import DatabaseSettings
from parrain.db.session import Database
from parrain.kit.clock import FrozenClock
from parrain.kit.ids import new_id
from parrain.ledger import service as ledger
from parrain.ledger.errors import TransferExistsWithDifferentField
from parrain.ledger.models import LedgerTransfer
from parrain.ledger.postings import Account, Created, Failed, Replayed, Transfer, TransferRequest
from tests.factories import open_account


def _request(debit: Account, credit: Account, amount: int) -> TransferRequest:
    return TransferRequest(
        id=new_id(),
        kind="test",
        debit_account_id=debit.id,
        credit_account_id=credit.id,
        amount=amount,
        currency=debit.currency,
    )


def _rows(database: Database) -> int:
    return database.read(lambda s: s.scalar(select(func.count()).select_from(LedgerTransfer)) or 0)


def _posted(database: Database, account: Account) -> tuple[int, int]:
    found = database.read(lambda s: ledger.get_account(session=s, account_id=account.id))
    return found.debits_posted, found.credits_posted


def test_a_batch_replays_what_exists_and_creates_the_rest(
    database: Database, clock: FrozenClock
) -> None:
    a, b = open_account(database, clock), open_account(database, clock)
    first, second = _request(a, b, 100), _request(b, a, 30)
    database.run(lambda s: ledger.create_transfer(session=s, transfer=first, clock=clock))
    results = database.run(
        lambda s: ledger.create_transfers(session=s, transfers=[first, second], clock=clock)
    )
    assert [type(r) for r in results] == [Replayed, Created]
    assert _posted(database, a) == (100, 30)
    assert _posted(database, b) == (30, 100)
    assert _rows(database) == 2


def test_a_reused_id_naming_an_unknown_account_is_the_field_error(
    database: Database, clock: FrozenClock
) -> None:
    a, b = open_account(database, clock), open_account(database, clock)
    original = _request(a, b, 100)
    database.run(lambda s: ledger.create_transfer(session=s, transfer=original, clock=clock))
    reused = replace(original, credit_account_id=new_id())  # no such account
    [result] = database.run(
        lambda s: ledger.create_transfers(session=s, transfers=[reused], clock=clock)
    )
    assert isinstance(result, Failed)
    assert isinstance(result.error, TransferExistsWithDifferentField)
    assert result.error.details["field"] == "credit_account_id"
    assert _rows(database) == 1


def test_an_id_committed_while_waiting_for_the_locks_is_replayed(
    database_url: str, backend: str, clock: FrozenClock
) -> None:
    first_writer = Database(DatabaseSettings(url=database_url))
    second_writer = Database(DatabaseSettings(url=database_url))
    try:
        a, b = open_account(first_writer, clock), open_account(first_writer, clock)
        request = _request(a, b, 250)
        written: list[Transfer] = []
        attempts: list[int] = []
        outcome: list[Transfer | BaseException] = []

        def second(session: Session) -> Transfer:
            attempts.append(1)
            return ledger.create_transfer(session=session, transfer=request, clock=clock)

        def run_second() -> None:
            try:
                outcome.append(second_writer.run(second))
            except BaseException as error:  # reported by the assertions below
                outcome.append(error)

        waiting = threading.Thread(target=run_second)
        with first_writer.transaction() as session:
            written.append(ledger.create_transfer(session=session, transfer=request, clock=clock))
            waiting.start()
            _until_the_second_waits(first_writer, backend)
        waiting.join(timeout=60)

        assert outcome == written
        assert _posted(first_writer, a) == (250, 0)
        assert _posted(first_writer, b) == (0, 250)
        assert _rows(first_writer) == 1
        # PostgreSQL: the first attempt's check predates the commit; its insert fails and
        # the retry replays. SQLite: BEGIN IMMEDIATE waited for the commit, one attempt.
        assert len(attempts) == (2 if backend == "postgresql" else 1)
    finally:
        second_writer.dispose()
        first_writer.dispose()


def _until_the_second_waits(database: Database, backend: str) -> None:
    """Return once the second writer waits for a lock the first one holds."""
    if backend == "sqlite":
        time.sleep(0.3)  # it waits in SQLite's busy handler; nothing to observe
        return
    deadline = time.monotonic() + 30
    query = text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    while time.monotonic() < deadline:
        if database.read(lambda s: s.scalar(query)):
            return
        time.sleep(0.01)
    raise AssertionError("the second writer never waited for the account locks")
