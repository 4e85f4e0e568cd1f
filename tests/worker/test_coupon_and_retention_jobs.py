"""The worker's coupon expiry and retention sweep jobs, over whole batches."""

from __future__ import annotations

from datetime import timedelta

from parrain.db.session import Database
from parrain.kit.clock import FrozenClock
from parrain.members.models import Member
from parrain.worker.jobs import expire_coupons, sweep_retention
from tests.referrals.programme import Programme, friend_names


def test_expired_coupons_go_back_to_the_budget_in_batches(
    database: Database, clock: FrozenClock
) -> None:
    programme = Programme.launch(database, clock, coupon_valid_days=10, friend_welcome_minor=500)
    for name in ("ann", "bea"):
        enrolment = programme.enrol(name)
        programme.invite_many(enrolment, friend_names(f"{name}-f", 5))
    clock.advance(timedelta(days=8))
    assert programme.release_due() == 2
    available = programme.budget()["available"]
    assert expire_coupons(database=database, clock=clock, batch_size=3) == 0  # not yet
    clock.advance(timedelta(days=10))
    assert expire_coupons(database=database, clock=clock, batch_size=3) == 12  # 2 + 10 welcome
    assert expire_coupons(database=database, clock=clock) == 0
    assert programme.budget()["available"] == available + 2 * 3000 + 10 * 500
    assert programme.discrepancies() == []


def test_the_retention_sweep_erases_across_batches(database: Database, clock: FrozenClock) -> None:
    programme = Programme.launch(database, clock)
    for name in ("ann", "bea", "cat"):
        programme.invite_many(programme.enrol(name), friend_names(f"{name}-f", 2))
    assert sweep_retention(database=database, clock=clock, default_days=365, batch_size=4) == 0
    clock.advance(timedelta(days=366))  # the campaign closed on day 60; the notice said 1 year
    assert sweep_retention(database=database, clock=clock, default_days=365, batch_size=4) == 9
    left = database.read(lambda s: s.query(Member).filter(Member.erased_at.is_(None)).count())
    assert left == 0
    assert programme.discrepancies() == []
