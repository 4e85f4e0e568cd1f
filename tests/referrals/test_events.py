"""The events the marketplace sends, one behaviour per test: idempotency by id, events out of
order, attribution inside the window, the new-customer test, the qualifying action, the
friend's welcome, an exhausted budget, and what a refund, a chargeback or a closed account
does before and after the holding period."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import func, select

from parrain.db.session import Database
from parrain.kit.clock import FrozenClock
from parrain.kit.ids import derived_id
from parrain.members import service as members
from parrain.referrals.errors import EventIdReused
from parrain.referrals.models import Friend, ReferralEvent, RewardPart
from parrain.referrals.schemas import EnrolmentRead
from tests.referrals.programme import KEYS, Programme, friend_names


def friend_id(programme: Programme, name: str) -> UUID:
    user_hash = members.marketplace_user_hash(KEYS, f"user-{name}")
    return derived_id("friend", programme.region["market"], user_hash)


def friend_row(programme: Programme, name: str) -> Friend:
    row = programme.database.read(lambda s: s.get(Friend, friend_id(programme, name)))
    assert row is not None
    return row


def parts(programme: Programme) -> list[tuple[str, str, int, str]]:
    """(kind, friend name or "", amount, status) of every reward part, sorted."""
    names = {}

    def work(session: Any) -> list[RewardPart]:
        for friend in session.scalars(select(Friend)):
            names[friend.id] = friend.signup_event_id
        return list(session.scalars(select(RewardPart)))

    rows = programme.database.read(work)
    return sorted(
        (row.kind, names.get(row.friend_id, ""), row.amount_minor, row.status) for row in rows
    )


def event_count(programme: Programme) -> int:
    return programme.database.read(
        lambda s: int(s.scalar(select(func.count()).select_from(ReferralEvent)) or 0)
    )


def browser_invite(
    programme: Programme, enrolment: EnrolmentRead, name: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A click in the browser (its own device id), then the install and signup bodies of the
    app on the phone, five minutes apart: only the token links them to the click."""
    click = programme.click(enrolment.code, f"browser-{name}")
    assert click.token is not None
    now = programme.clock.now()
    install = programme.install(
        f"device-{name}", token=click.token, at=now, event_id=f"install-{name}"
    )
    signup = programme.signup(
        name, f"device-{name}", at=now + timedelta(minutes=5), event_id=f"signup-{name}"
    )
    return install, signup


# Idempotency by event id


def test_the_same_event_twice_answers_the_first_outcome_and_changes_nothing(
    database: Database, clock: FrozenClock
) -> None:
    programme = Programme.launch(database, clock)
    enrolment = programme.enrol("ann")
    install, signup = browser_invite(programme, enrolment, "f1")
    first = [programme.event(install), programme.event(signup)]
    assert first[1].status == "accepted"
    assert first[1].enrolment_id == enrolment.id
    before = (programme.funnel(), programme.progress(enrolment), event_count(programme))

    clock.advance(timedelta(hours=1))
    again = [programme.event(install), programme.event(signup)]
    assert again == first
    assert (programme.funnel(), programme.progress(enrolment), event_count(programme)) == before
    assert before[0].installs == before[0].signups == 1
    assert before[2] == 2


def test_an_event_id_sent_again_with_another_body_is_refused(
    database: Database, clock: FrozenClock
) -> None:
    programme = Programme.launch(database, clock)
    enrolment = programme.enrol("ann")
    install, signup = browser_invite(programme, enrolment, "f1")
    programme.event(install)
    programme.event(signup)
    other = programme.signup("f2", "device-f2", event_id=signup["id"])
    with pytest.raises(EventIdReused) as caught:
        programme.event(other)
    assert caught.value.code == "event_id_reused"
    assert caught.value.status_code == 409
    assert caught.value.details["event_id"] == signup["id"]
    moved = {**install, "at": (clock.now() + timedelta(seconds=1)).isoformat()}
    with pytest.raises(EventIdReused):
        programme.event(moved)
    assert programme.funnel().signups == 1
    assert event_count(programme) == 2
    assert [f.id for f in programme.progress(enrolment).friends] == [friend_id(programme, "f1")]


def test_a_second_signup_of_one_user_under_a_new_id_is_ignored(
    database: Database, clock: FrozenClock
) -> None:
    programme = Programme.launch(database, clock)
    enrolment = programme.enrol("ann")
    programme.invite(enrolment, "f1")
    outcome = programme.event(programme.signup("f1", "device-f1"))
    assert (outcome.status, outcome.reason) == ("ignored", "already_signed_up")
    assert outcome.friend_id == friend_id(programme, "f1")
    assert programme.progress(enrolment).friends_counted == 1


# Out of order


def test_a_signup_before_its_install_is_attributed_once_the_install_arrives(
    database: Database, clock: FrozenClock
) -> None:
    programme = Programme.launch(database, clock)
    enrolment = programme.enrol("ann")
    install, signup = browser_invite(programme, enrolment, "f1")

    early = programme.event(signup)
    assert (early.status, early.enrolment_id) == ("accepted", None)
    assert friend_row(programme, "f1").status == "pending"
    assert programme.progress(enrolment).friends == []

    late = programme.event(install)
    assert late.friend_id == friend_id(programme, "f1")
    assert late.enrolment_id == enrolment.id
    row = friend_row(programme, "f1")
    assert (row.status, row.attribution_reason) == ("qualified", "deep_link_token")
    assert programme.progress(enrolment).friends_counted == 1
    funnel = programme.funnel()
    assert (funnel.clicks, funnel.installs, funnel.signups, funnel.qualified) == (1, 1, 1, 1)


def test_five_friends_whose_events_arrive_backwards_and_twice_win_the_prize_once(
    database: Database, clock: FrozenClock
) -> None:
    programme = Programme.launch(database, clock)
    enrolment = programme.enrol("ann")
    bodies = []
    for name in friend_names("f", 5):
        clock.advance(timedelta(minutes=30))
        bodies.extend(browser_invite(programme, enrolment, name))
    for body in [*reversed(bodies), *bodies]:
        programme.event(body)

    state = programme.progress(enrolment)
    assert state.friends_counted == 5
    assert state.reward is not None
    assert state.reward.status == "held"
    assert programme.budget()["held"] == 5000
    assert event_count(programme) == 10
    assert parts(programme) == [("cash", "", 2000, "held"), ("coupon", "", 3000, "held")]


def test_an_order_that_arrives_before_the_install_still_qualifies_the_friend(
    database: Database, clock: FrozenClock
) -> None:
    programme = Programme.launch(
        database, clock, friends_needed=1, qualifying_action="first_order", min_order_minor=1000
    )
    enrolment = programme.enrol("ann")
    install, signup = browser_invite(programme, enrolment, "f1")
    order = programme.order("f1", "order-1", 1200, at=clock.now() + timedelta(hours=1))
    programme.event(signup)
    assert programme.event(order).status == "accepted"
    assert friend_row(programme, "f1").status == "pending"
    programme.event(install)
    row = friend_row(programme, "f1")
    assert row.status == "qualified"
    assert row.qualified_at == clock.now() + timedelta(hours=1)
    assert programme.progress(enrolment).reward.status == "held"  # type: ignore[union-attr]


def test_an_earlier_signup_arriving_later_makes_the_later_one_not_new(
    database: Database, clock: FrozenClock
) -> None:
    programme = Programme.launch(database, clock, friends_needed=2)
    enrolment = programme.enrol("ann")
    click = programme.click(enrolment.code, "device-shared")
    assert click.token is not None
    programme.event(programme.install("device-shared", token=click.token))
    first = programme.signup("f1", "device-shared", at=clock.now() + timedelta(minutes=1))
    second = programme.signup("f2", "device-shared", at=clock.now() + timedelta(minutes=9))
    programme.event(second)
    assert friend_row(programme, "f2").status == "qualified"
    programme.event(first)
    assert friend_row(programme, "f1").status == "qualified"
    f2 = friend_row(programme, "f2")
    assert (f2.status, f2.status_reason) == ("not_new", "device_seen_before")
    state = programme.progress(enrolment)
    assert state.friends_counted == 1
    assert state.reward is None


# Attribution


@pytest.mark.parametrize(
    ("model", "winner", "loser"),
    [("first_click", "ann", "bob"), ("last_click", "bob", "ann")],
)
def test_the_campaign_model_picks_the_first_or_the_last_click_in_the_window(
    database: Database, clock: FrozenClock, model: str, winner: str, loser: str
) -> None:
    programme = Programme.launch(
        database, clock, friends_needed=1, attribution_model=model, attribution_window_hours=48
    )
    enrolments = {name: programme.enrol(name) for name in ("ann", "bob")}
    programme.click(enrolments["ann"].code, "device-f1")
    clock.advance(timedelta(hours=3))
    programme.click(enrolments["bob"].code, "device-f1")
    clock.advance(timedelta(hours=3))
    programme.event(programme.install("device-f1"))  # no token: the device's clicks decide
    outcome = programme.event(programme.signup("f1", "device-f1"))

    assert outcome.enrolment_id == enrolments[winner].id
    assert friend_row(programme, "f1").attribution_reason == model
    assert programme.progress(enrolments[winner]).friends_counted == 1
    assert programme.progress(enrolments[loser]).friends == []


def test_the_deep_link_token_wins_over_a_later_click(
    database: Database, clock: FrozenClock
) -> None:
    programme = Programme.launch(database, clock, friends_needed=1, attribution_model="last_click")
    ann, bob = programme.enrol("ann"), programme.enrol("bob")
    to_ann = programme.click(ann.code, "device-f1")
    clock.advance(timedelta(hours=1))
    programme.click(bob.code, "device-f1")
    programme.event(programme.install("device-f1", token=to_ann.token))
    programme.event(programme.signup("f1", "device-f1"))
    assert friend_row(programme, "f1").attribution_reason == "deep_link_token"
    assert programme.progress(ann).friends_counted == 1
    assert programme.progress(bob).friends == []


@pytest.mark.parametrize("with_token", [True, False], ids=["token", "device"])
def test_a_click_outside_the_attribution_window_does_not_count(
    database: Database, clock: FrozenClock, with_token: bool
) -> None:
    programme = Programme.launch(
        database, clock, friends_needed=1, attribution_window_hours=24, enrolment_window_hours=96
    )
    enrolment = programme.enrol("ann")
    click = programme.click(enrolment.code, "device-f1")
    clock.advance(timedelta(hours=24, seconds=1))
    token = click.token if with_token else None
    programme.event(programme.install("device-f1", token=token))
    outcome = programme.event(programme.signup("f1", "device-f1"))

    assert outcome.enrolment_id is None
    row = friend_row(programme, "f1")
    assert (row.status, row.status_reason, row.enrolment_id) == ("pending", "no_sponsor", None)
    assert programme.progress(enrolment).friends == []
    funnel = programme.funnel()
    assert (funnel.clicks, funnel.signups, funnel.qualified) == (1, 0, 0)


def test_a_click_at_the_edge_of_the_window_still_counts(
    database: Database, clock: FrozenClock
) -> None:
    programme = Programme.launch(
        database, clock, friends_needed=1, attribution_window_hours=24, enrolment_window_hours=96
    )
    enrolment = programme.enrol("ann")
    programme.click(enrolment.code, "device-f1")
    clock.advance(timedelta(hours=24))
    programme.event(programme.install("device-f1"))
    programme.event(programme.signup("f1", "device-f1", at=clock.now() + timedelta(minutes=1)))
    assert programme.progress(enrolment).friends_counted == 1


def test_a_code_typed_at_signup_credits_its_member_without_any_click(
    database: Database, clock: FrozenClock
) -> None:
    programme = Programme.launch(database, clock, friends_needed=1)
    ann = programme.enrol("ann")
    outcome = programme.event(
        programme.signup("f1", "device-f1", code=f" {ann.code_display.lower()} ")
    )
    assert outcome.enrolment_id == ann.id
    assert friend_row(programme, "f1").attribution_reason == "typed_code"
    assert programme.progress(ann).reward.status == "held"  # type: ignore[union-attr]
    funnel = programme.funnel()
    assert (funnel.clicks, funnel.installs, funnel.signups, funnel.rewarded) == (0, 0, 1, 1)


def test_a_mistyped_code_at_install_or_signup_credits_nobody(
    database: Database, clock: FrozenClock
) -> None:
    programme = Programme.launch(database, clock, friends_needed=1)
    ann = programme.enrol("ann")
    wrong = ann.code[:-1] + ("0" if ann.code[-1] != "0" else "1")
    install = programme.event(programme.install("device-f1", code=wrong))
    assert (install.status, install.reason) == ("accepted", "invalid_code")
    programme.event(programme.signup("f1", "device-f1", code=wrong))
    assert friend_row(programme, "f1").status == "pending"
    assert programme.progress(ann).friends == []


# The new-customer test


def test_a_user_id_already_seen_in_the_market_is_not_a_new_customer(
    database: Database, clock: FrozenClock
) -> None:
    programme = Programme.launch(database, clock)
    programme.enrol("ann")  # ann's marketplace user id and email are seen at enrolment
    bob = programme.enrol("bob")
    clock.advance(timedelta(hours=1))
    programme.invite(bob, "ann")
    row = friend_row(programme, "ann")
    assert (row.status, row.status_reason, row.new_customer) == (
        "not_new",
        "user_seen_before",
        False,
    )
    assert row.enrolment_id == bob.id
    assert programme.progress(bob).friends_counted == 0


def test_an_email_already_seen_in_the_market_is_not_a_new_customer(
    database: Database, clock: FrozenClock
) -> None:
    programme = Programme.launch(database, clock)
    programme.enrol("ann")
    bob = programme.enrol("bob")
    clock.advance(timedelta(hours=1))
    click = programme.click(bob.code, "device-f1")
    programme.event(programme.install("device-f1", token=click.token))
    programme.event(programme.signup("f1", "device-f1", email="ann@example.org"))
    row = friend_row(programme, "f1")
    assert (row.status, row.status_reason) == ("not_new", "email_seen_before")
    assert programme.progress(bob).friends_counted == 0


def test_a_second_account_on_a_friends_device_is_not_a_new_customer(
    database: Database, clock: FrozenClock
) -> None:
    programme = Programme.launch(database, clock, friends_needed=2)
    ann = programme.enrol("ann")
    programme.invite(ann, "f1")
    clock.advance(timedelta(minutes=10))
    programme.event(programme.signup("f1-alt", "device-f1"))  # the same phone, a new account
    row = friend_row(programme, "f1-alt")
    assert (row.status, row.status_reason, row.enrolment_id) == (
        "not_new",
        "device_seen_before",
        ann.id,
    )
    state = programme.progress(ann)
    assert state.friends_counted == 1
    assert state.reward is None


def test_a_members_own_second_account_on_their_device_is_not_a_new_customer(
    database: Database, clock: FrozenClock
) -> None:
    programme = Programme.launch(database, clock, friends_needed=1)
    programme.event(programme.signup("ann", "device-ann"))  # ann joined the marketplace
    clock.advance(timedelta(days=2))
    ann = programme.enrol("ann")
    click = programme.click(ann.code, "device-ann")
    programme.event(programme.install("device-ann", token=click.token))
    programme.event(programme.signup("ann-alt", "device-ann", email="ann.alt@example.org"))
    row = friend_row(programme, "ann-alt")
    assert (row.status, row.status_reason) == ("not_new", "device_seen_before")
    assert programme.progress(ann).reward is None
    assert programme.budget()["held"] == 0


def test_a_member_cannot_sponsor_themselves(database: Database, clock: FrozenClock) -> None:
    programme = Programme.launch(database, clock, friends_needed=1)
    ann = programme.enrol("ann")
    programme.invite(ann, "ann")  # ann's own marketplace account, through her own link
    row = friend_row(programme, "ann")
    assert (row.status, row.status_reason, row.enrolment_id) == ("pending", "no_sponsor", None)
    state = programme.progress(ann)
    assert (state.friends, state.reward) == ([], None)


@pytest.mark.parametrize(
    ("days_later", "status"), [(29, "not_new"), (31, "qualified")], ids=["recent", "old"]
)
def test_a_sighting_older_than_new_customer_days_does_not_count(
    database: Database, clock: FrozenClock, days_later: int, status: str
) -> None:
    programme = Programme.launch(database, clock, friends_needed=1, new_customer_days=30)
    programme.event(programme.signup("old", "device-f1"))  # someone used this phone before
    clock.advance(timedelta(days=days_later))
    ann = programme.enrol("ann")
    programme.invite(ann, "f1")
    assert friend_row(programme, "f1").status == status
    reward = programme.progress(ann).reward
    assert (reward.status if reward else None) == ("held" if status == "qualified" else None)


# The qualifying action


def test_a_first_order_at_or_above_the_minimum_qualifies_a_friend(
    database: Database, clock: FrozenClock
) -> None:
    programme = Programme.launch(
        database, clock, friends_needed=3, qualifying_action="first_order", min_order_minor=1500
    )
    ann = programme.enrol("ann")
    for name in friend_names("f", 5):
        programme.invite(ann, name)
    assert {f.status for f in programme.progress(ann).friends} == {"waiting"}

    programme.event(programme.order("f1", "o1", 1500, status="placed"))  # not completed yet
    assert friend_row(programme, "f1").status == "waiting"
    programme.event(programme.order("f1", "o1", 1500, status="completed"))
    programme.event(programme.order("f2", "o2", 1499))
    programme.event(programme.order("f2", "o2b", 9000))  # the first order was the small one
    programme.event(programme.order("f3", "o3", 5000, status="cancelled"))
    programme.event({**programme.order("f4", "o4", 2000), "currency": "EUR"})
    programme.event(programme.order("f5", "o5", 2000))

    statuses = {name: friend_row(programme, name) for name in friend_names("f", 5)}
    assert {n: (f.status, f.status_reason) for n, f in statuses.items()} == {
        "f1": ("qualified", None),
        "f2": ("unqualified", "first_order_below_minimum"),
        "f3": ("waiting", "no_completed_order"),
        "f4": ("unqualified", "first_order_other_currency"),
        "f5": ("qualified", None),
    }
    state = programme.progress(ann)
    assert (state.friends_counted, state.reward) == (2, None)
    programme.event(programme.order("f3", "o3", 5000, status="completed"))
    state = programme.progress(ann)
    assert state.friends_counted == 3
    assert state.reward is not None
    assert state.reward.status == "held"


def test_an_order_that_comes_before_its_buyer_signed_up_is_kept_for_later(
    database: Database, clock: FrozenClock
) -> None:
    programme = Programme.launch(database, clock, qualifying_action="first_order")
    ann = programme.enrol("ann")
    clock.advance(timedelta(minutes=5))
    outcome = programme.event(programme.order("f1", "o1", 5000))
    assert (outcome.status, outcome.reason) == ("accepted", "buyer_not_signed_up_yet")
    assert outcome.friend_id is None
    programme.invite(ann, "f1")  # the signup arrives after the order it led to
    assert friend_row(programme, "f1").status == "qualified"
    assert programme.progress(ann).friends_counted == 1


# The friend's welcome reward


def test_the_prize_with_a_welcome_holds_cash_coupons_and_one_welcome_per_counted_friend(
    database: Database, clock: FrozenClock
) -> None:
    programme = Programme.launch(database, clock, friends_needed=2, friend_welcome_minor=500)
    ann = programme.enrol("ann")
    programme.invite_many(ann, ["f1", "f2", "f3"])  # the third does not get a welcome
    assert parts(programme) == [
        ("cash", "", 2000, "held"),
        ("coupon", "", 3000, "held"),
        ("welcome", friend_row(programme, "f1").signup_event_id, 500, "held"),
        ("welcome", friend_row(programme, "f2").signup_event_id, 500, "held"),
    ]
    assert programme.budget()["held"] == 6000
    assert programme.balances()["cash"] == (0, 0, 2000, 0)
    assert programme.balances()["coupons"] == (0, 0, 4000, 0)
    clock.advance(timedelta(days=8))
    assert programme.release_due() == 1
    assert programme.budget() == {
        "funded": 1_000_000,
        "held": 0,
        "spent": 6000,
        "available": 994_000,
    }
    assert programme.balances()["coupons"] == (0, 0, 0, 4000)
    assert programme.discrepancies() == []


def test_a_prize_with_welcomes_is_held_all_or_nothing(
    database: Database, clock: FrozenClock
) -> None:
    # One prize costs 6,000; the budget then has 5,500 left: the member's cash and coupons
    # would fit, the welcomes would not, so nothing is held.
    programme = Programme.launch(
        database, clock, friends_needed=2, friend_welcome_minor=500, budget_minor=11_500
    )
    ann, bob = programme.enrol("ann"), programme.enrol("bob")
    programme.invite_many(ann, ["a1", "a2"])
    programme.invite_many(bob, ["b1", "b2"])
    reward = programme.progress(bob).reward
    assert reward is not None
    assert (reward.status, reward.reason) == ("refused", "budget_exhausted")
    assert programme.budget() == {"funded": 11_500, "held": 6000, "spent": 0, "available": 5500}
    assert len(parts(programme)) == 4  # ann's four, none of bob's
    assert programme.discrepancies() == []


# An exhausted budget


def test_an_exhausted_budget_refuses_the_reward_with_a_reason_and_never_overspends(
    database: Database, clock: FrozenClock
) -> None:
    programme = Programme.launch(database, clock, budget_minor=7500)
    ann, bob = programme.enrol("ann"), programme.enrol("bob")
    programme.invite_many(ann, friend_names("a", 5))
    programme.invite_many(bob, friend_names("b", 6))  # a sixth friend retries: still refused

    reward = programme.progress(bob).reward
    assert reward is not None
    assert (reward.status, reward.reason) == ("refused", "budget_exhausted")
    assert "budget is spent" in reward.message
    assert programme.progress(bob).friends_counted == 6
    assert programme.budget() == {"funded": 7500, "held": 5000, "spent": 0, "available": 2500}
    funnel = programme.funnel()
    assert (funnel.rewarded, funnel.rewards_held, funnel.rewards_refused) == (1, 1, 1)
    with pytest.raises(Exception, match="budget") as caught:
        programme.enrol("carol")
    assert caught.value.details["reason"] == "out_of_budget"  # type: ignore[attr-defined]

    # Ann's prize is voided in its holding period: the money is back, bob's next friend
    # finds a budget that can pay him.
    programme.event(programme.account_closed("a1"))
    assert programme.progress(ann).reward.status == "voided"  # type: ignore[union-attr]
    assert programme.budget()["available"] == 7500
    programme.invite(bob, "b7")
    assert programme.progress(bob).reward.status == "held"  # type: ignore[union-attr]
    assert programme.budget() == {"funded": 7500, "held": 5000, "spent": 0, "available": 2500}
    assert programme.discrepancies() == []


# Refunds, chargebacks and closed accounts


def _winner(programme: Programme, friends: int = 5) -> EnrolmentRead:
    ann = programme.enrol("ann")
    for name in friend_names("f", friends):
        programme.invite(ann, name)
        programme.event(programme.order(name, f"order-{name}", 4000))
    assert programme.progress(ann).reward.status == "held"  # type: ignore[union-attr]
    return ann


@pytest.mark.parametrize("loss", ["chargeback", "account_closed"])
def test_losing_a_counted_friend_in_the_holding_period_voids_the_prize(
    database: Database, clock: FrozenClock, loss: str
) -> None:
    programme = Programme.launch(database, clock)
    ann = _winner(programme)
    clock.advance(timedelta(days=3))
    body = (
        programme.chargeback("order-f3") if loss == "chargeback" else programme.account_closed("f3")
    )
    assert programme.event(body).status == "accepted"

    row = friend_row(programme, "f3")
    assert (row.status, row.status_reason) == ("disqualified", loss)
    state = programme.progress(ann)
    assert state.friends_counted == 4
    assert state.reward is not None
    assert (state.reward.status, state.reward.reason) == ("voided", "friends_fell_short")
    assert state.reward.settled_at == clock.now()
    assert programme.budget() == {
        "funded": 1_000_000,
        "held": 0,
        "spent": 0,
        "available": 1_000_000,
    }
    assert {p[3] for p in parts(programme)} == {"voided"}
    clock.advance(timedelta(days=8))
    assert programme.release_due() == 0
    assert programme.discrepancies() == []


def test_losing_one_of_more_friends_than_needed_voids_only_that_friends_welcome(
    database: Database, clock: FrozenClock
) -> None:
    programme = Programme.launch(database, clock, friends_needed=2, friend_welcome_minor=500)
    ann = programme.enrol("ann")
    for name in ("f1", "f2", "f3"):
        programme.invite(ann, name)
        programme.event(programme.order(name, f"order-{name}", 4000))
    clock.advance(timedelta(days=2))
    programme.event(programme.chargeback("order-f1"))

    state = programme.progress(ann)
    assert state.friends_counted == 2
    assert state.reward is not None
    assert state.reward.status == "held"
    f1, f2 = (friend_row(programme, n).signup_event_id for n in ("f1", "f2"))
    assert parts(programme) == [
        ("cash", "", 2000, "held"),
        ("coupon", "", 3000, "held"),
        ("welcome", f1, 500, "voided"),
        ("welcome", f2, 500, "held"),
    ]
    assert programme.budget()["held"] == 5500
    clock.advance(timedelta(days=6))
    assert programme.release_due() == 1
    assert programme.budget() == {
        "funded": 1_000_000,
        "held": 0,
        "spent": 5500,
        "available": 994_500,
    }
    assert programme.balances()["coupons"] == (0, 0, 0, 3500)
    assert programme.discrepancies() == []


def test_a_chargeback_after_the_prize_was_posted_claws_it_back_into_the_budget(
    database: Database, clock: FrozenClock
) -> None:
    programme = Programme.launch(database, clock)
    ann = _winner(programme)
    clock.advance(timedelta(days=8))
    assert programme.release_due() == 1
    assert programme.budget()["spent"] == 5000

    assert programme.event(programme.chargeback("order-f2")).status == "accepted"
    state = programme.progress(ann)
    assert state.reward is not None
    assert (state.reward.status, state.reward.reason) == ("clawed_back", "friends_fell_short")
    assert "taken back" in state.reward.message
    assert {p[3] for p in parts(programme)} == {"clawed_back"}
    budget = programme.budget()
    assert budget["available"] == 1_000_000  # the 5,000 are back
    assert budget["held"] == 0
    assert programme.balances()["cash"] == (0, 2000, 0, 2000)
    assert programme.balances()["coupons"] == (0, 3000, 0, 3000)
    # A second chargeback changes nothing more: the claw-back happens once.
    programme.event(programme.chargeback("order-f4"))
    assert programme.budget() == budget
    assert programme.discrepancies() == []


def test_a_refund_after_the_holding_period_is_ignored(
    database: Database, clock: FrozenClock
) -> None:
    programme = Programme.launch(
        database, clock, qualifying_action="first_order", min_order_minor=1000
    )
    ann = _winner(programme)
    clock.advance(timedelta(days=8))
    assert programme.release_due() == 1
    outcome = programme.event(programme.refund("order-f1"))
    assert (outcome.status, outcome.reason) == ("ignored", "after_holding_period")
    assert programme.progress(ann).reward.status == "posted"  # type: ignore[union-attr]
    assert friend_row(programme, "f1").status == "qualified"
    assert programme.budget()["spent"] == 5000
    assert programme.discrepancies() == []


def test_a_partial_refund_that_leaves_the_minimum_keeps_the_prize(
    database: Database, clock: FrozenClock
) -> None:
    programme = Programme.launch(
        database, clock, qualifying_action="first_order", min_order_minor=1000
    )
    ann = _winner(programme)
    clock.advance(timedelta(days=1))
    outcome = programme.event(programme.refund("order-f1", amount_minor=3000))
    assert outcome.status == "accepted"
    assert friend_row(programme, "f1").status == "qualified"
    assert programme.progress(ann).reward.status == "held"  # type: ignore[union-attr]
    programme.event(programme.refund("order-f1", amount_minor=1))  # 999 left: below 1,000
    assert friend_row(programme, "f1").status == "disqualified"
    assert programme.progress(ann).reward.status == "voided"  # type: ignore[union-attr]
    assert programme.budget()["held"] == 0


def test_a_refund_that_comes_before_its_order_is_kept_and_applied_when_the_order_comes(
    database: Database, clock: FrozenClock
) -> None:
    programme = Programme.launch(
        database, clock, qualifying_action="first_order", min_order_minor=1000
    )
    ann = programme.enrol("ann")
    programme.invite(ann, "f1")
    outcome = programme.event(programme.refund("order-f1"))
    assert (outcome.status, outcome.reason) == ("accepted", "order_not_seen_yet")
    programme.event(programme.order("f1", "order-f1", 2500))
    assert friend_row(programme, "f1").status == "disqualified"
    assert friend_row(programme, "f1").disqualified_reason == "refund"
    assert programme.progress(ann).friends_counted == 0


# Pausing and the deadline


def test_a_paused_campaign_still_voids_and_posts_what_was_earned(
    database: Database, clock: FrozenClock
) -> None:
    programme = Programme.launch(database, clock)
    ann = programme.enrol("ann")
    bob = programme.enrol("bob")
    programme.invite_many(ann, friend_names("a", 5))
    programme.invite_many(bob, friend_names("b", 5))
    programme.pause()
    clock.advance(timedelta(days=1))
    programme.event(programme.account_closed("b2"))  # bob loses his prize while paused
    assert programme.progress(bob).reward.status == "voided"  # type: ignore[union-attr]
    programme.invite(bob, "b6")  # would make five again: no new credit while paused
    bob_state = programme.progress(bob)
    assert bob_state.friends_counted == 4
    assert bob_state.reward.status == "voided"  # type: ignore[union-attr]
    assert friend_row(programme, "b6").status == "not_credited"
    clock.advance(timedelta(days=7))
    assert programme.release_due() == 1
    assert programme.progress(ann).reward.status == "posted"  # type: ignore[union-attr]
    assert programme.budget() == {
        "funded": 1_000_000,
        "held": 0,
        "spent": 5000,
        "available": 995_000,
    }
    assert programme.discrepancies() == []


def test_after_resuming_new_friends_count_again(database: Database, clock: FrozenClock) -> None:
    programme = Programme.launch(database, clock)
    bob = programme.enrol("bob")
    programme.invite_many(bob, friend_names("b", 3))
    programme.pause()
    programme.invite(bob, "c1")
    programme.resume()
    programme.invite_many(bob, friend_names("d", 2))
    state = programme.progress(bob)
    assert state.friends_counted == 5
    assert [f.status for f in state.friends].count("not_credited") == 1
    assert state.reward is not None
    assert state.reward.status == "held"


def test_a_friend_qualifying_exactly_at_the_deadline_counts_one_second_later_does_not(
    database: Database, clock: FrozenClock
) -> None:
    programme = Programme.launch(database, clock, friends_needed=2)
    ann = programme.enrol("ann")
    for name, offset in (("on-time", 0), ("late", 1)):
        click = programme.click(ann.code, f"device-{name}")
        programme.event(programme.install(f"device-{name}", token=click.token))
        at = ann.deadline_at + timedelta(seconds=offset)
        programme.event(programme.signup(name, f"device-{name}", at=at))
    assert friend_row(programme, "on-time").status == "qualified"
    late = friend_row(programme, "late")
    assert (late.status, late.status_reason) == ("late", "after_deadline")
    assert programme.progress(ann).reward is None


def test_a_refund_ignored_after_the_holding_period_stays_ignored_when_the_friend_orders_again(
    database: Database, clock: FrozenClock
) -> None:
    programme = Programme.launch(
        database, clock, qualifying_action="first_order", min_order_minor=1000
    )
    ann = _winner(programme)
    clock.advance(timedelta(days=8))
    assert programme.release_due() == 1
    outcome = programme.event(programme.refund("order-f1"))
    assert outcome.reason == "after_holding_period"
    programme.event(programme.order("f1", "order-f1-again", 2500))  # re-evaluates f1
    assert friend_row(programme, "f1").status == "qualified"
    assert programme.progress(ann).reward.status == "posted"  # type: ignore[union-attr]
    assert programme.budget()["spent"] == 5000
    assert programme.discrepancies() == []


def test_a_closed_account_reported_before_the_signup_still_disqualifies_the_friend(
    database: Database, clock: FrozenClock
) -> None:
    programme = Programme.launch(database, clock)
    ann = programme.enrol("ann")
    outcome = programme.event(programme.account_closed("f1"))
    assert (outcome.status, outcome.reason) == ("accepted", "not_signed_up_yet")
    programme.invite(ann, "f1")
    row = friend_row(programme, "f1")
    assert (row.status, row.disqualified_reason) == ("disqualified", "account_closed")
    assert programme.progress(ann).friends_counted == 0


def test_a_chargeback_reported_before_its_order_still_disqualifies_the_buyer(
    database: Database, clock: FrozenClock
) -> None:
    programme = Programme.launch(database, clock)
    ann = programme.enrol("ann")
    programme.invite(ann, "f1")
    assert programme.progress(ann).friends_counted == 1
    outcome = programme.event(programme.chargeback("order-f1"))
    assert (outcome.status, outcome.reason) == ("accepted", "order_not_seen_yet")
    assert friend_row(programme, "f1").status == "qualified"  # whose order? not known yet
    programme.event(programme.order("f1", "order-f1", 2500))
    assert friend_row(programme, "f1").status == "disqualified"
    assert programme.progress(ann).friends_counted == 0
