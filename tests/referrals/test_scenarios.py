"""The Cash Rewards programme end to end, with the clock injected: the UK and France
scenarios, a missed deadline, a pause, a refund in the holding period, replays."""

from __future__ import annotations

from datetime import timedelta

import pytest

from parrain.db.session import Database
from parrain.kit.clock import FrozenClock
from tests.referrals.programme import FR, UK, Programme, friend_names


@pytest.mark.parametrize(
    ("region", "display"),
    [(UK, "£50.00"), (FR, "50,00\u00a0€")],
    ids=["uk-gbp", "fr-eur"],
)
def test_five_friends_within_24_hours_win_a_prize_held_7_days_and_posted_on_day_8(
    database: Database, clock: FrozenClock, region: dict[str, str], display: str
) -> None:
    programme = Programme.launch(database, clock, region=region, budget_minor=100_000)
    enrolment = programme.enrol("ann")
    assert enrolment.deadline_at == enrolment.enrolled_at + timedelta(hours=24)
    assert enrolment.link == f"https://parrain.example/r/{enrolment.code}"

    for index, friend in enumerate(friend_names("friend", 5)):
        clock.advance(timedelta(hours=4))  # the fifth signs up 20 hours after enrolment
        programme.invite(enrolment, friend)
        counted = programme.progress(enrolment).friends_counted
        assert counted == index + 1

    state = programme.progress(enrolment)
    assert state.reward is not None
    assert state.reward.status == "held"
    assert state.reward.release_at == state.reward.earned_at + timedelta(days=7)
    assert display in state.reward.message
    assert programme.budget() == {"funded": 100_000, "held": 5000, "spent": 0, "available": 95_000}
    assert programme.balances()["cash"] == (0, 0, 2000, 0)
    assert programme.balances()["coupons"] == (0, 0, 3000, 0)

    clock.advance(timedelta(days=7) - timedelta(seconds=1))  # day 7: still held
    assert programme.release_due() == 0
    assert programme.progress(enrolment).reward.status == "held"  # type: ignore[union-attr]

    clock.advance(timedelta(days=1))  # day 8
    assert programme.release_due() == 1
    reward = programme.progress(enrolment).reward
    assert reward is not None
    assert reward.status == "posted"
    assert programme.budget() == {"funded": 100_000, "held": 0, "spent": 5000, "available": 95_000}
    assert programme.balances()["cash"] == (0, 0, 0, 2000)
    assert programme.balances()["coupons"] == (0, 0, 0, 3000)
    assert programme.release_due() == 0  # posting is once
    assert programme.discrepancies() == []

    funnel = programme.funnel()
    assert (funnel.clicks, funnel.installs, funnel.signups, funnel.qualified, funnel.rewarded) == (
        5,
        5,
        5,
        5,
        1,
    )


def test_a_deadline_missed_by_one_friend_wins_nothing(
    database: Database, clock: FrozenClock
) -> None:
    programme = Programme.launch(database, clock)
    enrolment = programme.enrol("ann")
    clock.advance(timedelta(hours=2))
    programme.invite_many(enrolment, friend_names("early", 4))
    clock.set(enrolment.deadline_at + timedelta(seconds=1))
    programme.invite(enrolment, "late1")

    state = programme.progress(enrolment)
    assert state.friends_counted == 4
    assert [f.status for f in state.friends].count("late") == 1
    assert state.deadline_passed
    assert state.reward is None
    assert programme.budget()["held"] == 0


def test_pausing_honours_earned_rewards_and_gives_no_new_credit(
    database: Database, clock: FrozenClock
) -> None:
    programme = Programme.launch(database, clock)
    winner = programme.enrol("ann")
    halfway = programme.enrol("bob")
    programme.invite_many(winner, friend_names("a", 5))
    programme.invite_many(halfway, friend_names("b", 3))
    assert programme.progress(winner).reward.status == "held"  # type: ignore[union-attr]

    programme.pause()
    programme.invite_many(halfway, friend_names("c", 2))  # would have completed bob's five
    bob = programme.progress(halfway)
    assert bob.friends_counted == 3
    assert sorted(f.status for f in bob.friends).count("not_credited") == 2
    assert bob.reward is None
    with pytest.raises(Exception, match="paused"):
        programme.enrol("carol")

    clock.advance(timedelta(days=8))
    assert programme.release_due() == 1  # earned before the pause: honoured
    assert programme.progress(winner).reward.status == "posted"  # type: ignore[union-attr]
    programme.resume()
    assert programme.progress(halfway).friends_counted == 3  # credit refused stays refused


def test_a_refund_during_the_holding_period_voids_the_prize(
    database: Database, clock: FrozenClock
) -> None:
    programme = Programme.launch(
        database, clock, qualifying_action="first_order", min_order_minor=1500, friends_needed=2
    )
    enrolment = programme.enrol("ann")
    for friend in ("f1", "f2"):
        programme.invite(enrolment, friend)
    assert programme.progress(enrolment).friends_counted == 0  # no order yet
    programme.event(programme.order("f1", "order-f1", 1000))  # first order below the minimum
    programme.event(programme.order("f2", "order-f2", 2500))
    assert programme.progress(enrolment).friends_counted == 1
    programme.invite(enrolment, "f3")
    programme.event(programme.order("f3", "order-f3", 1500))
    assert programme.progress(enrolment).reward.status == "held"  # type: ignore[union-attr]

    clock.advance(timedelta(days=3))
    outcome = programme.event(programme.refund("order-f3"))
    assert outcome.status == "accepted"
    state = programme.progress(enrolment)
    assert state.reward is not None
    assert state.reward.status == "voided"
    assert programme.budget() == {
        "funded": 1_000_000,
        "held": 0,
        "spent": 0,
        "available": 1_000_000,
    }
    clock.advance(timedelta(days=8))
    assert programme.release_due() == 0
    assert programme.discrepancies() == []
