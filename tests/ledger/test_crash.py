"""A process killed in the middle of a batch leaves no trace; killed after commit, all of it.

A child process applies one large linked chain (posts in part and voids of earlier pending
transfers, new single and pending transfers: 400 in all) and is killed with SIGKILL at a
chosen point. The point is deterministic: the child wraps one of the service's repository
writes so that, once it has run inside the open transaction, the child reports what that
transaction sees (all 400 transfers, the budget's balances), signals the parent and sleeps
until the kill. Killed before the commit (after the transfer insert, after the pending
statuses, after the balance updates), none of the batch's transfers exist, every balance and
status is as before, the books have no discrepancy, and the database takes new writes,
including the very same batch. Killed right after the commit, all of it is there, exactly
as the pure rules planned it.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import signal
import time
import traceback
from dataclasses import replace
from datetime import datetime
from multiprocessing.synchronize import Event
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from parrain.config import DatabaseSettings
from parrain.db.session import Database
from parrain.kit.clock import FrozenClock
from parrain.kit.ids import new_id
from parrain.ledger import repository
from parrain.ledger import service as ledger
from parrain.ledger.models import LedgerTransfer
from parrain.ledger.postings import (
    Account,
    Created,
    PendingStatus,
    Phase,
    Transfer,
    TransferRequest,
    plan_transfers,
)
from tests.factories import fund_account, open_account

#: Where the child stops: right after this write of the service has run, inside the open
#: transaction. The hook wraps the repository function (the ledger's write path runs on the
#: driver's cursor, below SQLAlchemy's statement events).
KILL_POINTS = {
    "after_transfer_insert": "insert_transfers",
    "after_pending_statuses": "set_pending_status",
    "after_balance_updates": "apply_deltas",
}
PENDINGS = 100
BATCH = 400
WAIT_SECONDS = 120


def _apply_and_stop(
    url: str,
    requests: list[TransferRequest],
    watched: UUID,
    now: datetime,
    kill_point: str,
    reached: Event,
    reports: Any,
) -> None:
    """A child: apply ``requests`` as one linked chain and stop at ``kill_point``.

    Before stopping it reports what its own open transaction sees (how many of the batch's
    transfers exist, the ``watched`` account), so the parent knows the writes did happen.
    """
    try:
        database = Database(DatabaseSettings(url=url))
        if database.dialect == "sqlite":
            # A tiny page cache spills uncommitted pages into the WAL file before the kill.
            event.listen(
                database.engine,
                "connect",
                lambda connection, _: connection.execute("PRAGMA cache_size=8"),
            )
        ids = [r.id for r in requests]

        def stop(session: Session | None) -> None:
            if session is not None:
                reports.put(
                    {
                        "visible": len(repository.get_transfers(session, ids)),
                        "watched": repository.get_accounts(session, [watched])[watched],
                    }
                )
            reached.set()
            time.sleep(WAIT_SECONDS * 5)  # until SIGKILL

        if kill_point in KILL_POINTS:
            write = getattr(repository, KILL_POINTS[kill_point])

            def write_then_stop(session: Session, *args: Any, **kwargs: Any) -> None:
                write(session, *args, **kwargs)
                stop(session)

            setattr(repository, KILL_POINTS[kill_point], write_then_stop)

        clock = FrozenClock(now)
        database.run(lambda s: ledger.create_linked(session=s, transfers=requests, clock=clock))
        if kill_point == "after_commit":
            stop(None)
        reports.put(f"the child finished without stopping at {kill_point}")
    except BaseException:
        reports.put(traceback.format_exc())


def _kill_at(
    url: str, requests: list[TransferRequest], watched: UUID, now: datetime, kill_point: str
) -> dict[str, Any] | None:
    """Run the child until it stops at ``kill_point``, SIGKILL it, return what it saw."""
    context = multiprocessing.get_context("spawn")
    reached = context.Event()
    reports = context.Queue()
    child = context.Process(
        target=_apply_and_stop,
        args=(url, requests, watched, now, kill_point, reached, reports),
        daemon=True,
    )
    child.start()
    try:
        deadline = time.monotonic() + WAIT_SECONDS
        while not reached.wait(timeout=0.05):
            if not child.is_alive() or time.monotonic() > deadline:
                try:
                    problem = reports.get(timeout=5)
                except queue.Empty:
                    problem = f"no report; exit code {child.exitcode}"
                pytest.fail(f"the child never reached {kill_point}: {problem}")
        seen = reports.get(timeout=5) if kill_point in KILL_POINTS else None
        assert child.pid is not None
        os.kill(child.pid, signal.SIGKILL)
        child.join(timeout=30)
        assert child.exitcode == -signal.SIGKILL
        return seen
    finally:
        if child.is_alive():
            child.kill()
            child.join()


class Ledger:
    """The accounts of the scenario: a limited budget, a source, three payees."""

    def __init__(self, database: Database, clock: FrozenClock) -> None:
        self.budget = open_account(database, clock, debits_must_not_exceed_credits=True)
        fund_account(database, clock, self.budget, 1_000_000)
        self.payees = [open_account(database, clock) for _ in range(3)]
        pendings = [
            TransferRequest(
                id=new_id(),
                kind="test_hold",
                debit_account_id=self.budget.id,
                credit_account_id=self.payees[i % 3].id,
                amount=100,
                currency="GBP",
                phase=Phase.PENDING,
            )
            for i in range(PENDINGS)
        ]
        database.run(lambda s: ledger.create_linked(session=s, transfers=pendings, clock=clock))
        self.pending_ids = [p.id for p in pendings]

    def batch(self) -> list[TransferRequest]:
        """400 transfers: half the pendings posted in part, half voided, 250 single
        transfers from the budget to the payees and between payees, 50 new pendings."""
        half = PENDINGS // 2
        posts = [
            TransferRequest(
                id=new_id(), kind="test_post", amount=60, phase=Phase.POST_PENDING, pending_id=p
            )
            for p in self.pending_ids[:half]
        ]
        voids = [
            TransferRequest(id=new_id(), kind="test_void", phase=Phase.VOID_PENDING, pending_id=p)
            for p in self.pending_ids[half:]
        ]
        accounts = [self.budget, *self.payees]
        singles = [
            TransferRequest(
                id=new_id(),
                kind="test_move",
                debit_account_id=accounts[i % 4].id,
                credit_account_id=accounts[(i + 1) % 4].id,
                amount=7 + i,
                currency="GBP",
            )
            for i in range(250)
        ]
        new_pendings = [
            replace(single, id=new_id(), kind="test_hold", phase=Phase.PENDING, amount=11)
            for single in singles[:50]
        ]
        requests = [*posts, *voids, *singles, *new_pendings]
        assert len(requests) == BATCH
        return requests


def _state(database: Database, ids: list[UUID], pending_ids: list[UUID]) -> dict[str, Any]:
    def read(session: Session) -> dict[str, Any]:
        return {
            "accounts": {a.id: a for a, _ in ledger.list_accounts(session=session)},
            "batch_rows": len(repository.get_transfers(session, ids)),
            "pendings": repository.get_transfers(session, pending_ids),
            "rows": session.scalar(select(func.count()).select_from(LedgerTransfer)),
            "problems": ledger.find_discrepancies(session=session),
        }

    return database.read(read)


def _expected(
    before: dict[str, Any], requests: list[TransferRequest], now: datetime
) -> tuple[dict[UUID, Account], dict[UUID, Transfer]]:
    """What the batch must do, according to the pure rules."""
    chain = [replace(r, linked=i < len(requests) - 1) for i, r in enumerate(requests)]
    plan = plan_transfers(chain, accounts=before["accounts"], stored=before["pendings"], now=now)
    assert all(isinstance(r, Created) for r in plan.results)
    return plan.accounts, plan.new_transfers


@pytest.mark.slow
@pytest.mark.parametrize("kill_point", list(KILL_POINTS))
def test_a_batch_killed_before_commit_leaves_no_trace(
    database: Database, database_url: str, clock: FrozenClock, kill_point: str
) -> None:
    books = Ledger(database, clock)
    requests = books.batch()
    ids = [r.id for r in requests]
    before = _state(database, ids, books.pending_ids)
    assert before["problems"] == []
    assert before["batch_rows"] == 0
    assert before["rows"] == 1 + PENDINGS
    assert before["accounts"][books.budget.id].available_credit == 1_000_000 - 100 * PENDINGS
    expected_accounts, _ = _expected(before, requests, clock.now())
    assert expected_accounts != before["accounts"]  # the batch does change balances

    seen = _kill_at(database_url, requests, books.budget.id, clock.now(), kill_point)
    assert seen is not None
    assert seen["visible"] == BATCH  # the batch was written inside the killed transaction
    moved = kill_point == "after_balance_updates"
    budget_id = books.budget.id
    assert seen["watched"] == (expected_accounts if moved else before["accounts"])[budget_id]

    after = _state(database, ids, books.pending_ids)
    assert after["batch_rows"] == 0
    assert after["rows"] == before["rows"]
    assert after["accounts"] == before["accounts"]
    assert after["pendings"] == before["pendings"]
    assert {p.status for p in after["pendings"].values()} == {PendingStatus.PENDING}
    assert after["problems"] == []

    # Still writable: a new transfer on the same accounts, then the very same batch.
    extra = TransferRequest(
        id=new_id(),
        kind="test_after_crash",
        debit_account_id=books.budget.id,
        credit_account_id=books.payees[0].id,
        amount=1,
        currency="GBP",
    )
    database.run(lambda s: ledger.create_transfer(session=s, transfer=extra, clock=clock))
    again = _state(database, ids, books.pending_ids)
    expected_accounts, expected_transfers = _expected(again, requests, clock.now())
    made = database.run(lambda s: ledger.create_linked(session=s, transfers=requests, clock=clock))
    assert [t.id for t in made] == ids
    final = _state(database, ids, books.pending_ids)
    assert final["batch_rows"] == BATCH
    assert final["accounts"] == expected_accounts
    assert database.read(lambda s: repository.get_transfers(s, ids)) == expected_transfers
    assert final["problems"] == []


@pytest.mark.slow
def test_a_batch_killed_right_after_commit_is_all_there(
    database: Database, database_url: str, clock: FrozenClock
) -> None:
    books = Ledger(database, clock)
    requests = books.batch()
    ids = [r.id for r in requests]
    before = _state(database, ids, books.pending_ids)
    expected_accounts, expected_transfers = _expected(before, requests, clock.now())

    assert _kill_at(database_url, requests, books.budget.id, clock.now(), "after_commit") is None

    after = _state(database, ids, books.pending_ids)
    assert after["batch_rows"] == BATCH
    assert after["rows"] == before["rows"] + BATCH
    assert after["accounts"] == expected_accounts
    stored = database.read(lambda s: repository.get_transfers(s, ids))
    assert stored == expected_transfers
    statuses = [after["pendings"][p].status for p in books.pending_ids]
    half = PENDINGS // 2
    assert statuses == [PendingStatus.POSTED] * half + [PendingStatus.VOIDED] * half
    budget = after["accounts"][books.budget.id]
    assert budget.debits_posted == 60 * half + sum(7 + i for i in range(0, 250, 4))
    assert after["problems"] == []
