"""The invariant that matters most: processes racing for one budget never overspend it.

8 OS processes, each with its own engine (spawned, so nothing is shared across a fork), try
500 times each to hold a reward on one live campaign whose budget covers exactly 1,000
rewards: each attempt is its own transaction with its own reward id. Exactly 1,000 succeed,
every other attempt is refused with ``insufficient_budget``, the budget ends at exactly zero
available counting the holds, each held reward has exactly its two pending transfers, and
the books have no discrepancy. Children report every unexpected exception to the parent.
"""

from __future__ import annotations

import multiprocessing
import queue
import time
import traceback
from collections import Counter
from datetime import datetime
from multiprocessing.synchronize import Barrier
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from parrain.campaigns import repository as campaign_repository
from parrain.campaigns import service as campaigns
from parrain.config import DatabaseSettings
from parrain.db.session import Database
from parrain.errors import ParrainError
from parrain.kit.clock import FrozenClock
from parrain.kit.ids import derived_id, new_id
from parrain.ledger import repository as ledger_repository
from parrain.ledger import service as ledger
from parrain.ledger.models import LedgerTransfer
from parrain.ledger.postings import PendingStatus, Phase
from tests.factories import live_campaign

PROCESSES = 8
ATTEMPTS = 500
REWARDS_COVERED = 1_000  # fewer than PROCESSES * ATTEMPTS = 4,000
REWARD_CASH = 300
REWARD_COUPON = 200
REWARD = REWARD_CASH + REWARD_COUPON
#: How long the parent waits for all children; the race takes seconds to a minute.
DEADLINE_SECONDS = 300


def _hold_rewards(
    url: str, campaign_id: UUID, now: datetime, start: Barrier, reports: Any, worker: int
) -> None:
    """A child: hold rewards until ATTEMPTS are spent; report what happened, or the crash."""
    database = None
    try:
        database = Database(DatabaseSettings(url=url))
        clock = FrozenClock(now)
        held: list[str] = []
        codes: Counter[str] = Counter()
        start.wait(timeout=120)  # everyone starts together: maximum contention
        for _ in range(ATTEMPTS):
            reward_id = new_id()
            try:
                database.run(
                    lambda s, r=reward_id: campaigns.hold_reward(
                        session=s, campaign_id=campaign_id, reward_id=r, clock=clock
                    )
                )
            except ParrainError as error:
                codes[error.code] += 1
            else:
                held.append(str(reward_id))
        reports.put({"worker": worker, "held": held, "codes": dict(codes), "crash": None})
    except BaseException:
        reports.put({"worker": worker, "held": [], "codes": {}, "crash": traceback.format_exc()})
    finally:
        if database is not None:
            database.dispose()


def _race(url: str, campaign_id: UUID, now: datetime) -> list[dict[str, Any]]:
    context = multiprocessing.get_context("spawn")
    reports = context.Queue()
    start = context.Barrier(PROCESSES)
    children = [
        context.Process(
            target=_hold_rewards,
            args=(url, campaign_id, now, start, reports, worker),
            name=f"race-{worker}",
            daemon=True,
        )
        for worker in range(PROCESSES)
    ]
    try:
        for child in children:
            child.start()
        collected = []
        for _ in children:  # read before join: a child cannot exit with a full pipe
            try:
                collected.append(reports.get(timeout=DEADLINE_SECONDS))
            except queue.Empty:
                exits = {c.name: c.exitcode for c in children}
                pytest.fail(f"a child neither reported nor finished in time: {exits}")
        for child in children:
            child.join(timeout=30)
            assert child.exitcode == 0, f"{child.name} exited with {child.exitcode}"
        return collected
    finally:
        for child in children:
            if child.is_alive():
                child.kill()
                child.join()


@pytest.mark.slow
def test_racing_processes_hold_exactly_what_the_budget_covers(
    database: Database, database_url: str, clock: FrozenClock
) -> None:
    campaign = live_campaign(
        database,
        clock,
        budget_minor=REWARDS_COVERED * REWARD,
        reward_cash_minor=REWARD_CASH,
        reward_coupon_minor=REWARD_COUPON,
    )
    assert campaign.budget.available_minor == 500_000

    started = time.monotonic()
    reports = _race(database_url, campaign.id, clock.now())
    elapsed = time.monotonic() - started

    crashes = [r["crash"] for r in reports if r["crash"]]
    assert not crashes, "\n".join(crashes)
    held = [UUID(h) for r in reports for h in r["held"]]
    codes: Counter[str] = Counter()
    for report in reports:
        codes.update(report["codes"])
    assert sorted(r["worker"] for r in reports) == list(range(PROCESSES))
    assert len(held) == len(set(held)) == REWARDS_COVERED
    assert set(codes) == {"insufficient_budget"}
    assert codes["insufficient_budget"] == PROCESSES * ATTEMPTS - REWARDS_COVERED == 3_000

    def books(session: Session) -> dict[str, Any]:
        model = campaign_repository.get(session, campaign.id)
        assert model is not None
        hold_ids = [derived_id("reward", r, part) for r in held for part in ("cash", "coupon")]
        return {
            "budget": campaigns.budget_of(session=session, campaign=model),
            "cash": ledger.get_account(session=session, account_id=model.cash_payable_account_id),
            "coupon": ledger.get_account(
                session=session, account_id=model.coupon_liability_account_id
            ),
            "holds": ledger_repository.get_transfers(session, hold_ids),
            "transfers": session.scalar(select(func.count()).select_from(LedgerTransfer)),
            "problems": ledger.find_discrepancies(session=session),
        }

    after = database.read(books)
    budget = after["budget"]
    assert (budget.funded_minor, budget.held_minor, budget.spent_minor) == (500_000, 500_000, 0)
    assert budget.available_minor == 0
    assert (after["cash"].credits_pending, after["cash"].credits_posted) == (300_000, 0)
    assert (after["coupon"].credits_pending, after["coupon"].credits_posted) == (200_000, 0)
    holds = after["holds"]
    assert len(holds) == 2 * REWARDS_COVERED
    assert {(t.phase, t.status, t.amount) for t in holds.values()} == {
        (Phase.PENDING, PendingStatus.PENDING, REWARD_CASH),
        (Phase.PENDING, PendingStatus.PENDING, REWARD_COUPON),
    }
    assert after["transfers"] == 1 + 2 * REWARDS_COVERED  # the funding and the holds
    assert after["problems"] == []
    print(f"race on {database.dialect}: {PROCESSES * ATTEMPTS} attempts in {elapsed:.1f}s")
