"""The events API under a race: 10,000 events, a fifth of them duplicates, from 8 processes.

The parent builds the programme: one live campaign (two friends win a prize with a welcome
for each of them), 40 enrolled members, and one click per friend on their sponsor's link
(one transaction). It then prepares 8,000 distinct events — an install carrying the click's
deep-link token and a signup for each of 4,000 friends, 100 per member — plus 2,000 copies
of random ones (same id, same body), shuffles the 10,000 and deals them to 8 spawned
processes, each with its own ``Database``, each event its own ``Database.run``. A signup
often runs before its install, in another process, at the same time.

The budget covers 25 prizes of the 40 earned, so refusals race with holds. Afterwards:
exact row counts, every friend attributed and counted, exactly one reward per enrolment
(25 held, 15 refused), reward parts that are exactly the ledger's pending holds, a budget
held at 25 prizes and never below zero, no ledger discrepancy, and every duplicate answered
with its original's outcome.
"""

from __future__ import annotations

import multiprocessing
import queue
import random
import time
import traceback
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from multiprocessing.synchronize import Barrier
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from parrain.config import DatabaseSettings
from parrain.db.session import Database
from parrain.errors import ParrainError
from parrain.kit.clock import FrozenClock
from parrain.ledger import service as ledger
from parrain.ledger.models import LedgerTransfer
from parrain.referrals import events, service
from parrain.referrals.models import (
    Click,
    Enrolment,
    Friend,
    Install,
    ReferralEvent,
    Reward,
    RewardPart,
)
from tests.referrals.programme import EVENT, KEYS, Programme

PROCESSES = 8
MEMBERS = 40
FRIENDS_PER_MEMBER = 100
FRIENDS = MEMBERS * FRIENDS_PER_MEMBER  # 4,000: an install and a signup each
DISTINCT = 2 * FRIENDS  # 8,000
DUPLICATES = 2_000
FRIENDS_NEEDED = 2
CASH, COUPON, WELCOME = 700, 500, 150
PRIZE = CASH + COUPON + FRIENDS_NEEDED * WELCOME  # 1,500
PRIZES_COVERED = 25  # of the 40 earned
BUDGET = PRIZES_COVERED * PRIZE + PRIZE // 2  # half a prize more: never enough for another
DEADLINE_SECONDS = 600


def _send(
    url: str, now: datetime, bodies: list[dict[str, Any]], start: Barrier, reports: Any, worker: int
) -> None:
    """A child: ingest each body in its own transaction; report every outcome, or the crash."""
    database = None
    try:
        database = Database(DatabaseSettings(url=url))
        clock = FrozenClock(now)
        outcomes: list[tuple[str, dict[str, Any]]] = []
        errors: Counter[str] = Counter()
        start.wait(timeout=120)  # everyone starts together: maximum contention
        began = time.monotonic()
        for body in bodies:
            event = EVENT.validate_python(body)
            try:
                outcome = database.run(
                    lambda s, e=event: events.ingest(session=s, event=e, keys=KEYS, clock=clock)
                )
            except ParrainError as error:
                errors[error.code] += 1
            else:
                outcomes.append((body["id"], outcome.model_dump(mode="json")))
        reports.put(
            {
                "worker": worker,
                "outcomes": outcomes,
                "errors": dict(errors),
                "seconds": time.monotonic() - began,
                "crash": None,
            }
        )
    except BaseException:
        reports.put({"worker": worker, "crash": traceback.format_exc()})
    finally:
        if database is not None:
            database.dispose()


def _race(url: str, now: datetime, shares: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    context = multiprocessing.get_context("spawn")
    reports = context.Queue()
    start = context.Barrier(PROCESSES)
    children = [
        context.Process(
            target=_send,
            args=(url, now, shares[worker], start, reports, worker),
            name=f"events-{worker}",
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


def _prepare(programme: Programme) -> tuple[list[Any], list[dict[str, Any]]]:
    """Enrol the members, click once per friend (one transaction), and write each friend's
    install (with the click's token) and signup, a few minutes apart."""
    clock = programme.clock
    enrolments = [programme.enrol(f"member{m:02d}") for m in range(MEMBERS)]
    friends = [(m, f"m{m:02d}f{f:03d}") for m in range(MEMBERS) for f in range(FRIENDS_PER_MEMBER)]

    def click_all(session: Session) -> list[str]:
        tokens = []
        for member, friend in friends:
            click = service.record_click(
                session=session,
                code_text=enrolments[member].code,
                device=f"device-{friend}",
                user_agent="Mozilla/5.0 (Android)",
                keys=KEYS,
                clock=clock,
            )
            assert click.recorded
            assert click.token is not None
            tokens.append(click.token)
        return tokens

    tokens = programme.database.run(click_all)
    bodies: list[dict[str, Any]] = []
    for index, ((_member, friend), token) in enumerate(zip(friends, tokens, strict=True)):
        installed = clock.now() + timedelta(minutes=1 + index % 600)
        device = f"device-{friend}"
        bodies.append(
            programme.install(device, token=token, at=installed, event_id=f"install-{friend}")
        )
        bodies.append(
            programme.signup(
                friend, device, at=installed + timedelta(minutes=5), event_id=f"signup-{friend}"
            )
        )
    return enrolments, bodies


def _books(session: Session, programme: Programme) -> dict[str, Any]:
    def count(model: type) -> int:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)

    accounts = programme.campaign.accounts
    budget = ledger.get_account(session=session, account_id=accounts.budget)
    hold_rows = session.execute(
        select(LedgerTransfer.id, LedgerTransfer.kind, LedgerTransfer.amount).where(
            LedgerTransfer.kind.like("reward_hold_%")
        )
    ).all()
    return {
        "events": count(ReferralEvent),
        "enrolments": count(Enrolment),
        "clicks": count(Click),
        "installs": count(Install),
        "installs_with_click": int(
            session.scalar(
                select(func.count()).select_from(Install).where(Install.click_id.is_not(None))
            )
            or 0
        ),
        "friend_statuses": dict(
            Counter(session.scalars(select(Friend.status)).all()),
        ),
        "friends_per_enrolment": Counter(session.scalars(select(Friend.enrolment_id)).all()),
        "rewards": [
            (r.enrolment_id, r.generation, r.status, r.reason)
            for r in session.scalars(select(Reward))
        ],
        "parts": [
            (p.id, p.kind, p.amount_minor, p.status) for p in session.scalars(select(RewardPart))
        ],
        "holds": {row.id: (row.kind, row.amount) for row in hold_rows},
        "transfers": count(LedgerTransfer),
        "budget": (budget.debits_pending, budget.debits_posted, budget.credits_posted),
        "problems": ledger.find_discrepancies(session=session),
    }


@pytest.mark.slow
def test_ten_thousand_events_with_duplicates_from_8_processes_place_every_reward_once(
    database: Database, database_url: str, clock: FrozenClock
) -> None:
    programme = Programme.launch(
        database,
        clock,
        budget_minor=BUDGET,
        friends_needed=FRIENDS_NEEDED,
        reward_cash_minor=CASH,
        reward_coupon_minor=COUPON,
        friend_welcome_minor=WELCOME,
    )
    enrolments, bodies = _prepare(programme)
    assert len(bodies) == len({b["id"] for b in bodies}) == DISTINCT

    shuffle = random.Random(20260301)
    duplicates = [dict(body) for body in shuffle.choices(bodies, k=DUPLICATES)]
    stream = bodies + duplicates
    shuffle.shuffle(stream)
    shares = [stream[worker::PROCESSES] for worker in range(PROCESSES)]
    assert sum(map(len, shares)) == 10_000

    started = time.monotonic()
    reports = _race(database_url, clock.now(), shares)
    elapsed = time.monotonic() - started

    crashes = [r["crash"] for r in reports if r["crash"]]
    assert not crashes, "\n".join(crashes)
    assert sorted(r["worker"] for r in reports) == list(range(PROCESSES))
    assert all(r["errors"] == {} for r in reports), [r["errors"] for r in reports]

    # Every delivery of an id was answered with one outcome: the first one.
    answers: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for report in reports:
        for event_id, outcome in report["outcomes"]:
            answers[event_id].append(outcome)
    assert sum(map(len, answers.values())) == 10_000
    assert len(answers) == DISTINCT
    repeated = {event_id: got for event_id, got in answers.items() if len(got) > 1}
    assert sum(len(got) - 1 for got in repeated.values()) == DUPLICATES
    assert all(all(o == got[0] for o in got) for got in repeated.values())
    firsts = [got[0] for got in answers.values()]
    assert Counter((o["type"], o["status"], o["reason"]) for o in firsts) == {
        ("install", "accepted", None): FRIENDS,
        ("signup", "accepted", None): FRIENDS,
    }

    after = database.read(lambda s: _books(s, programme))
    assert after["events"] == DISTINCT
    assert (after["enrolments"], after["clicks"]) == (MEMBERS, FRIENDS)
    assert after["installs"] == after["installs_with_click"] == FRIENDS
    assert after["friend_statuses"] == {"qualified": FRIENDS}
    assert after["friends_per_enrolment"] == {e.id: FRIENDS_PER_MEMBER for e in enrolments}

    # One reward per enrolment: the budget held 25 prizes and refused the other 15.
    rewards = after["rewards"]
    assert len(rewards) == len({r[0] for r in rewards}) == MEMBERS
    assert {r[1] for r in rewards} == {1}
    assert Counter((r[2], r[3]) for r in rewards) == {
        ("held", None): PRIZES_COVERED,
        ("refused", "budget_exhausted"): MEMBERS - PRIZES_COVERED,
    }
    # Each part of a held prize is exactly one pending hold in the ledger, and nothing else is.
    parts = after["parts"]
    assert Counter(p[1] for p in parts) == {
        "cash": PRIZES_COVERED,
        "coupon": PRIZES_COVERED,
        "welcome": FRIENDS_NEEDED * PRIZES_COVERED,
    }
    assert {p[3] for p in parts} == {"held"}
    assert {p[0]: (f"reward_hold_{p[1]}", p[2]) for p in parts} == after["holds"]
    # The funding, then the holds; the budget is held at exactly 25 prizes.
    assert after["transfers"] == 1 + len(parts)
    assert after["budget"] == (PRIZES_COVERED * PRIZE, 0, BUDGET)
    budget = programme.budget()
    assert budget["held"] == PRIZES_COVERED * PRIZE == 37_500
    assert budget["available"] == BUDGET - PRIZES_COVERED * PRIZE == PRIZE // 2 >= 0
    assert after["problems"] == []

    funnel = programme.funnel()
    assert (funnel.clicks, funnel.installs, funnel.signups, funnel.qualified) == (
        FRIENDS,
        FRIENDS,
        FRIENDS,
        FRIENDS,
    )
    assert (funnel.rewarded, funnel.rewards_held, funnel.rewards_refused) == (
        PRIZES_COVERED,
        PRIZES_COVERED,
        MEMBERS - PRIZES_COVERED,
    )
    # A refused member sees why.
    refused = next(e for e in enrolments if programme.progress(e).reward.status == "refused")  # type: ignore[union-attr]
    reward = programme.progress(refused).reward
    assert reward is not None
    assert "budget is spent" in reward.message
    slowest = max(r["seconds"] for r in reports)
    print(
        f"referral race on {database.dialect}: 10,000 events from {PROCESSES} processes "
        f"in {elapsed:.1f}s (slowest worker {slowest:.1f}s)"
    )
