"""A whole day of events, replayed and reordered.

The day: four members enrol at 09:00; 28 friends click their links (in a browser or on the
phone), install the app (with the deep-link token, or typing the code), sign up and order;
a walk-in signs up with no sponsor; a second account appears on a friend's phone; orders
are too small, cancelled or only placed; two refunds and a closed account land during the
holding period; a stranger orders; one signup is delivered twice; one friend signs up after
their member's deadline. The marketplace sends it as one list of bodies.

1. Applying the list, then applying it again, answers every event with its first outcome
   and leaves every read (progress, funnel, budget, balances, row counts) identical.
2. Applying the same bodies shuffled into an empty database ends in the same state as in
   order: friend statuses, counts, rewards and their parts, the funnel, the budget and the
   balances. Ids and times that legitimately differ between two runs (enrolment and reward
   ids, when an event was received) are left out of that comparison. One test keeps orders
   after their buyer's signup and refunds after their order; the last shuffles everything:
   an early order or refund is kept and applied when its signup or order comes.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from parrain.db.metadata import metadata
from parrain.db.session import Database
from parrain.kit.clock import FrozenClock
from parrain.kit.ids import derived_id
from parrain.ledger.models import LedgerTransfer
from parrain.members import service as members
from parrain.referrals.models import (
    Click,
    Enrolment,
    Friend,
    Install,
    Order,
    ReferralEvent,
    Reward,
    RewardPart,
    Sighting,
)
from parrain.referrals.schemas import EnrolmentRead, EventOutcome
from tests.conftest import START
from tests.referrals.programme import KEYS, Programme

MEMBERS = ("ann", "bob", "cara", "dan")
RULES: dict[str, Any] = {
    "friends_needed": 3,
    "qualifying_action": "first_order",
    "min_order_minor": 1000,
    "friend_welcome_minor": 200,
}
PRIZE = 2000 + 3000 + 3 * 200
#: When the day's events are delivered: the next morning, after the last one.
DELIVERED = START + timedelta(hours=27)


@dataclass
class Day:
    programme: Programme
    enrolments: dict[str, EnrolmentRead]
    bodies: list[dict[str, Any]]


def build_day(database: Database, clock: FrozenClock, *, welcome: int = 200) -> Day:
    """Launch the campaign, enrol the members, make the clicks, and write the day's events.

    Event ids and times are the same in every database; tokens and codes are this one's.
    """
    clock.set(START)
    programme = Programme.launch(database, clock, **{**RULES, "friend_welcome_minor": welcome})
    enrolments = {name: programme.enrol(name) for name in MEMBERS}
    bodies: list[dict[str, Any]] = []
    minute = [0]

    def at(minutes: int) -> datetime:
        return START + timedelta(minutes=minutes)

    def friend(
        member: str,
        name: str,
        *,
        amount: int | None = 1500,
        status: str = "completed",
        how: str = "token",
        device: str | None = None,
    ) -> None:
        """One friend's path, from a click ``minute[0]`` minutes after 09:00."""
        minute[0] += 7
        start = minute[0]
        device = device or f"device-{name}"
        enrolment = enrolments[member]
        if how in ("token", "browser"):
            clock.set(at(start))
            where = f"browser-{name}" if how == "browser" else device
            click = programme.click(enrolment.code, where)
            install = programme.install(
                device, token=click.token, at=at(start + 2), event_id=f"install-{name}"
            )
            bodies.append(install)
            signup = programme.signup(name, device, at=at(start + 5), event_id=f"signup-{name}")
        elif how == "install_code":
            bodies.append(
                programme.install(
                    device,
                    code=enrolment.code_display.lower(),
                    at=at(start + 2),
                    event_id=f"install-{name}",
                )
            )
            signup = programme.signup(name, device, at=at(start + 5), event_id=f"signup-{name}")
        else:  # a code typed at signup, no click and no install event
            signup = programme.signup(
                name, device, at=at(start + 5), event_id=f"signup-{name}", code=enrolment.code
            )
        bodies.append(signup)
        if amount is not None:
            order = programme.order(name, f"order-{name}", amount, status=status, at=at(start + 40))
            bodies.append({**order, "id": f"order-{name}"})

    # Ann: eight friends, every one qualifies; her prize welcomes the first three.
    for index in range(1, 9):
        friend("ann", f"a{index}", how="browser" if index % 2 else "token")
    # Bob: eight friends; the first one's order is refunded during the holding period, so
    # only that friend's welcome is voided.
    for index in range(1, 9):
        friend("bob", f"b{index}")
    # Cara: three qualify, one orders too little, one never completes, one is a second
    # account on c1's phone (not new); c2's refund then voids her whole prize.
    for index in range(1, 4):
        friend("cara", f"c{index}")
    friend("cara", "c4", amount=900)
    friend("cara", "c5", status="placed")
    friend("cara", "c6", device="device-c1")
    # Dan: codes typed at install and at signup, a winner who closes their account (d4
    # takes over: only d3's welcome is voided), one who cancels, and one who signs up
    # after dan's deadline.
    friend("dan", "d1", how="install_code")
    friend("dan", "d2", how="signup_code")
    friend("dan", "d3")
    friend("dan", "d4")
    friend("dan", "d5", status="cancelled")
    minute[0] = 24 * 60 + 30  # the next morning: after dan's 24 hours
    friend("dan", "d6")

    # The rest of the day: a walk-in, a stranger's order, refunds, a closed account, and a
    # signup delivered twice.
    bodies.append(programme.signup("walkin", "device-walkin", at=at(300), event_id="signup-w"))
    stranger = programme.order("stranger", "order-stranger", 5000, at=at(310))
    bodies.append({**stranger, "id": "order-stranger"})
    for event_id, body, minutes in (
        ("refund-b1", programme.refund("order-b1"), 600),
        ("refund-c2", programme.refund("order-c2"), 620),
        ("refund-a5-part", programme.refund("order-a5", amount_minor=200), 640),
        ("closed-d3", programme.account_closed("d3"), 660),
    ):
        bodies.append({**body, "id": event_id, "at": at(minutes).isoformat()})
    bodies.append(dict(next(b for b in bodies if b["id"] == "signup-a3")))
    clock.set(DELIVERED)
    return Day(programme=programme, enrolments=enrolments, bodies=bodies)


def apply(day: Day, bodies: list[dict[str, Any]]) -> list[EventOutcome]:
    return [day.programme.event(body) for body in bodies]


def _counts(session: Session) -> dict[str, int]:
    models = (
        Enrolment,
        Click,
        Install,
        Friend,
        Order,
        Sighting,
        ReferralEvent,
        Reward,
        RewardPart,
        LedgerTransfer,
    )
    return {
        model.__tablename__: int(session.scalar(select(func.count()).select_from(model)) or 0)
        for model in models
    }


def snapshot(day: Day) -> dict[str, Any]:
    """Everything a member, an operator or finance can read, and how many rows there are."""
    programme = day.programme
    return {
        "progress": {name: programme.progress(e) for name, e in day.enrolments.items()},
        "funnel": programme.funnel(),
        "budget": programme.budget(),
        "balances": programme.balances(),
        "rows": programme.database.read(_counts),
        "discrepancies": programme.discrepancies(),
    }


def _friend_names(day: Day) -> dict[UUID, str]:
    """Friend ids are derived from the market and the user's keyed hash: the same in any
    database with the same keys."""
    names = {f"{p}{i}" for p in "ab" for i in range(1, 9)} | {
        *(f"c{i}" for i in range(1, 7)),
        *(f"d{i}" for i in range(1, 7)),
        "walkin",
    }
    market = day.programme.region["market"]
    return {
        derived_id("friend", market, members.marketplace_user_hash(KEYS, f"user-{n}")): n
        for n in names
    }


def canonical(day: Day, *, welcomes: bool = True) -> dict[str, Any]:
    """The final state without what differs between two runs of the same facts: ids drawn
    at random (enrolments, rewards), the times events were received.

    Also left out, because they record *how* the facts arrived rather than what they are:
    prizes and parts that were voided (a prize held, then voided when a refund arrived, ends
    where a prize never held does: the money back in the budget) and the rows and transfers
    that history wrote; and what depends on which friends the prize was placed for — the
    first ``friends_needed`` friends *parrain learnt of*, not the first to qualify: the
    prize's ``earned_at`` and ``release_at`` and, without ``welcomes``, the welcome parts
    and the money of a welcome voided because its friend was lost."""
    names = _friend_names(day)
    members_by_enrolment = {e.id: name for name, e in day.enrolments.items()}

    def rows(session: Session) -> dict[str, Any]:
        friends = sorted(
            (
                names[f.id],
                members_by_enrolment.get(f.enrolment_id) if f.enrolment_id else None,
                f.status,
                f.status_reason,
                f.attribution_reason,
                f.new_customer,
                f.qualified_at,
            )
            for f in session.scalars(select(Friend))
        )
        rewards = {r.id: r for r in session.scalars(select(Reward))}
        reward_rows = sorted(
            (
                members_by_enrolment[r.enrolment_id],
                r.status,
                r.reason,
            )
            for r in rewards.values()
            if r.status != "voided"
        )
        parts = sorted(
            (
                members_by_enrolment[rewards[p.reward_id].enrolment_id],
                p.kind,
                names.get(p.friend_id, "") if p.friend_id else "",
                p.amount_minor,
                p.status,
            )
            for p in session.scalars(select(RewardPart))
            if p.status != "voided" and (welcomes or p.kind != "welcome")
        )
        return {"friends": friends, "rewards": reward_rows, "parts": parts}

    state = day.programme.database.read(rows)
    state["counted"] = {
        name: day.programme.progress(e).friends_counted for name, e in day.enrolments.items()
    }
    state["funnel"] = day.programme.funnel().model_dump(exclude={"campaign_id"})
    state["discrepancies"] = day.programme.discrepancies()
    if not welcomes:
        assert day.programme.budget()["available"] >= 0
        return state
    state["budget"] = day.programme.budget()
    state["balances"] = day.programme.balances()
    rows = day.programme.database.read(_counts)
    state["rows"] = {
        table: n
        for table, n in rows.items()
        if table not in ("rewards", "reward_parts", "ledger_transfers")
    }
    return state


def wipe(database: Database) -> None:
    """Empty every table, as the test fixtures do between PostgreSQL tests."""
    with database.transaction() as session:
        if database.dialect == "postgresql":
            tables = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
            session.execute(text(f"TRUNCATE {tables} CASCADE"))
        else:
            for table in reversed(metadata.sorted_tables):
                session.execute(table.delete())


def test_the_day_reaches_the_expected_state(database: Database, clock: FrozenClock) -> None:
    day = build_day(database, clock)
    assert 90 <= len(day.bodies) <= 110
    apply(day, day.bodies)
    state = canonical(day)

    status = {row[0]: (row[1], row[2], row[3]) for row in state["friends"]}
    assert status["a5"] == ("ann", "qualified", None)  # 1,300 left after a partial refund
    assert status["b1"] == ("bob", "disqualified", "refund")
    assert status["c2"] == ("cara", "disqualified", "refund")
    assert status["c4"] == ("cara", "unqualified", "first_order_below_minimum")
    assert status["c5"] == ("cara", "waiting", "no_completed_order")
    assert status["c6"] == ("cara", "not_new", "device_seen_before")
    assert status["d3"] == ("dan", "disqualified", "account_closed")
    assert status["d5"] == ("dan", "waiting", "no_completed_order")
    assert status["d6"] == ("dan", "late", "after_deadline")
    assert status["walkin"] == (None, "pending", "no_sponsor")
    assert {row[0]: row[4] for row in state["friends"]}["d2"] == "typed_code"
    assert state["counted"] == {"ann": 8, "bob": 7, "cara": 2, "dan": 3}
    assert state["rewards"] == [  # cara's prize was voided: c2's refund left her two
        ("ann", "held", None),
        ("bob", "held", None),
        ("dan", "held", None),
    ]
    assert day.programme.funnel().rewards_held == 3
    # The welcomes still held: b1's and d3's were voided with their friends.
    welcomes = sorted(p[2] for p in state["parts"] if p[1] == "welcome")
    assert welcomes == ["a1", "a2", "a3", "b2", "b3", "d1", "d2"]
    assert state["budget"] == {
        "funded": 1_000_000,
        "held": 3 * PRIZE - 2 * 200,
        "spent": 0,
        "available": 1_000_000 - 3 * PRIZE + 2 * 200,
    }
    assert state["funnel"]["signups"] == 28
    assert state["rows"]["referral_events"] == len(day.bodies) - 1  # one signup sent twice
    assert state["discrepancies"] == []


def test_replaying_a_whole_day_changes_nothing(database: Database, clock: FrozenClock) -> None:
    day = build_day(database, clock)
    first = apply(day, day.bodies)
    before = snapshot(day)

    clock.advance(timedelta(hours=1))
    again = apply(day, day.bodies)
    assert again == first
    assert snapshot(day) == before
    assert before["rows"]["referral_events"] == len(day.bodies) - 1


def _needs(body: dict[str, Any]) -> str | None:
    """The event that must be known before this one can be: an order needs its buyer's
    signup, a refund its order, a closed account its signup."""
    if body["type"] == "order":
        return f"signup-{body['marketplace_user_id'].removeprefix('user-')}"
    if body["type"] == "refund":
        return body["order_id"]
    if body["type"] == "account_closed":
        return f"signup-{body['marketplace_user_id'].removeprefix('user-')}"
    return None


def shuffled(bodies: list[dict[str, Any]], seed: int, *, causal: bool) -> list[dict[str, Any]]:
    """The bodies in a random order; with ``causal``, an event that needs another (see
    :func:`_needs`) is held back until that one went, everything else in any order: installs
    after signups, orders before installs, friends interleaved, duplicates anywhere."""
    order = list(bodies)
    random.Random(seed).shuffle(order)
    if not causal:
        return order
    ids = {body["id"] for body in bodies}
    sent: set[str] = set()
    waiting: list[dict[str, Any]] = []
    out: list[dict[str, Any]] = []
    for body in order:
        waiting.append(body)
        progressed = True
        while progressed:
            progressed = False
            for item in list(waiting):
                need = _needs(item)
                if need is None or need not in ids or need in sent:
                    waiting.remove(item)
                    out.append(item)
                    sent.add(item["id"])
                    progressed = True
    assert not waiting
    return out


@pytest.mark.parametrize(
    ("seed", "welcome"),
    [(1, 0), (2, 0), (3, 200)],
    ids=["no-welcome-1", "no-welcome-2", "welcome"],
)
def test_the_day_in_another_order_ends_in_the_same_state(
    database: Database, clock: FrozenClock, seed: int, welcome: int
) -> None:
    """Without a friend's welcome, everything is the same, money included; with one, all
    but which friends hold a welcome (see :func:`canonical`)."""
    shuffled_day = build_day(database, clock, welcome=welcome)
    reordered = shuffled(shuffled_day.bodies, seed, causal=True)
    assert reordered != shuffled_day.bodies
    assert sorted(b["id"] for b in reordered) == sorted(b["id"] for b in shuffled_day.bodies)
    apply(shuffled_day, reordered)
    state = canonical(shuffled_day, welcomes=welcome == 0)

    wipe(database)
    day = build_day(database, clock, welcome=welcome)
    apply(day, day.bodies)
    expected = canonical(day, welcomes=welcome == 0)
    assert state == expected
    assert [(r[0], r[1]) for r in expected["rewards"]] == [
        ("ann", "held"),
        ("bob", "held"),
        ("dan", "held"),
    ]
    if welcome == 0:
        assert expected["budget"]["held"] == 3 * 5000


@pytest.mark.parametrize("seed", [2, 5, 11])
def test_the_day_in_any_order_at_all_ends_in_the_same_state(
    database: Database, clock: FrozenClock, seed: int
) -> None:
    """Without a friend's welcome (which friends hold one depends on arrival order, see
    :func:`canonical`), everything, money included, is the same."""
    shuffled_day = build_day(database, clock, welcome=0)
    apply(shuffled_day, shuffled(shuffled_day.bodies, seed, causal=False))
    state = canonical(shuffled_day)

    wipe(database)
    day = build_day(database, clock, welcome=0)
    apply(day, day.bodies)
    assert state == canonical(day)
