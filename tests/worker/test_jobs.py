"""The worker's jobs: the expiry job voids timed-out pending transfers exactly once, however
often it runs; the holding job posts due prizes once."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import timedelta

from sqlalchemy.orm import Session

from parrain.audit import service as audit
from parrain.db.session import Database
from parrain.kit.clock import FrozenClock
from parrain.kit.money import Money
from parrain.ledger import service as ledger
from parrain.ledger.postings import Account, PendingStatus
from parrain.ledger.schemas import AccountCreate
from parrain.worker.jobs import expire_pending_transfers, release_held_rewards
from tests.referrals.programme import Programme, friend_names


def _accounts(database: Database, clock: FrozenClock) -> tuple[Account, Account]:
    def open_two(session: Session) -> tuple[Account, Account]:
        source = ledger.create_account(
            session=session,
            account_in=AccountCreate(
                currency="EUR", kind="budget", debits_must_not_exceed_credits=True
            ),
            clock=clock,
        )
        target = ledger.create_account(
            session=session, account_in=AccountCreate(currency="EUR", kind="payable"), clock=clock
        )
        funding = ledger.create_account(
            session=session, account_in=AccountCreate(currency="EUR", kind="funding"), clock=clock
        )
        ledger.transfer(
            session=session,
            transfer_id=uuid.uuid4(),
            debit_account_id=funding.id,
            credit_account_id=source.id,
            amount=Money(100_000, "EUR"),
            kind="funding",
            clock=clock,
        )
        return source, target

    return database.run(open_two)


def _hold(
    database: Database, clock: FrozenClock, source: Account, target: Account, timeout: int
) -> uuid.UUID:
    transfer_id = uuid.uuid4()
    database.run(
        lambda s: ledger.transfer(
            session=s,
            transfer_id=transfer_id,
            debit_account_id=source.id,
            credit_account_id=target.id,
            amount=Money(1_000, "EUR"),
            kind="hold",
            pending=True,
            timeout_seconds=timeout,
            clock=clock,
        )
    )
    return transfer_id


def test_only_timed_out_transfers_expire_and_only_once(
    database: Database, clock: FrozenClock
) -> None:
    source, target = _accounts(database, clock)
    short = _hold(database, clock, source, target, timeout=60)
    long = _hold(database, clock, source, target, timeout=3600)
    untimed = _hold(database, clock, source, target, timeout=0)
    clock.advance(timedelta(seconds=59))
    assert expire_pending_transfers(database=database, clock=clock) == 0
    clock.advance(timedelta(seconds=1))
    assert expire_pending_transfers(database=database, clock=clock) == 1
    assert expire_pending_transfers(database=database, clock=clock) == 0

    def status(transfer_id: uuid.UUID) -> PendingStatus | None:
        found = database.read(lambda s: ledger.get_transfer(session=s, transfer_id=transfer_id))
        assert found is not None
        return found.status

    assert [status(t) for t in (short, long, untimed)] == [
        PendingStatus.EXPIRED,
        PendingStatus.PENDING,
        PendingStatus.PENDING,
    ]
    budget = database.read(lambda s: ledger.get_account(session=s, account_id=source.id))
    assert budget.debits_pending == 2_000
    assert budget.available_credit == 98_000
    entries = database.read(lambda s: audit.list_entries(session=s))
    assert [e.action for e in entries] == ["ledger.pending_expired"]
    assert json.loads(entries[0].details) == {"count": 1, "pending_ids": [str(short)]}
    assert database.read(lambda s: ledger.find_discrepancies(session=s)) == []


def test_jobs_running_at_once_expire_each_transfer_once(
    database: Database, clock: FrozenClock
) -> None:
    source, target = _accounts(database, clock)
    holds = [_hold(database, clock, source, target, timeout=30) for _ in range(40)]
    clock.advance(timedelta(minutes=1))
    counts: list[int] = []
    errors: list[BaseException] = []

    def run_job() -> None:
        try:
            counts.append(expire_pending_transfers(database=database, clock=clock, batch_size=7))
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=run_job) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sum(counts) == len(holds) == 40
    budget = database.read(lambda s: ledger.get_account(session=s, account_id=source.id))
    assert (budget.debits_pending, budget.available_credit) == (0, 100_000)
    assert database.read(lambda s: ledger.find_discrepancies(session=s)) == []
    assert database.read(lambda s: audit.verify_chain(session=s)).intact


def test_the_holding_job_posts_due_prizes_once_in_batches(
    database: Database, clock: FrozenClock
) -> None:
    programme = Programme.launch(database, clock, friends_needed=1, holding_days=3)
    winners = [programme.enrol(f"member{i}") for i in range(5)]
    for index, enrolment in enumerate(winners):
        programme.invite_many(enrolment, friend_names(f"m{index}-", 1))
    assert programme.budget()["held"] == 5 * 5000

    assert release_held_rewards(database=database, clock=clock, batch_size=2) == 0
    clock.advance(timedelta(days=3))
    assert release_held_rewards(database=database, clock=clock, batch_size=2) == 5
    assert release_held_rewards(database=database, clock=clock, batch_size=2) == 0
    assert programme.budget() == {
        "funded": 1_000_000,
        "held": 0,
        "spent": 25_000,
        "available": 975_000,
    }
    posted = database.read(lambda s: audit.list_entries(session=s))
    assert sum(entry.action == "reward.posted" for entry in posted) == 5
