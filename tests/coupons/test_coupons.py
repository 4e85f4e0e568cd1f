"""Prize coupons: issued when a held prize is posted, redeemed once at checkout (idempotent
per order, safe under concurrency), expired back into the budget, cancelled by a claw-back.
On SQLite and PostgreSQL, through the ledger."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest

from parrain.coupons import service as coupons
from parrain.coupons.errors import (
    CouponAlreadyRedeemed,
    CouponCancelled,
    CouponCurrencyMismatch,
    CouponExpired,
    CouponMinimumSpendNotMet,
    CouponNotFound,
)
from parrain.coupons.models import Coupon
from parrain.coupons.schemas import CouponRead, RedemptionCreate, RedemptionRead
from parrain.db.session import Database
from parrain.kit.clock import FrozenClock
from parrain.ledger import service as ledger
from parrain.referrals.codes import parse_code
from parrain.referrals.schemas import EnrolmentRead
from tests.referrals.programme import Programme, friend_names


def _winner(programme: Programme) -> EnrolmentRead:
    """Ann's five friends sign up and each orders: her prize is held, then posted (day 8)."""
    ann = programme.enrol("ann")
    for name in friend_names("f", 5):
        programme.invite(ann, name)
        programme.event(programme.order(name, f"order-{name}", 4000))
    programme.clock.advance(timedelta(days=8))
    assert programme.release_due() == 1
    return ann


def _coupons_of(programme: Programme, member_id: Any) -> list[CouponRead]:
    return programme.database.read(lambda s: coupons.of_member(session=s, member_id=member_id))


def _redeem(
    programme: Programme, code: str, order_id: str, amount: int, currency: str = "GBP"
) -> RedemptionRead:
    redemption_in = RedemptionCreate(
        order_id=order_id, order_amount_minor=amount, currency=currency
    )
    return programme.database.run(
        lambda s: coupons.redeem(
            session=s, code=code, redemption_in=redemption_in, clock=programme.clock
        )
    )


def _redemptions_balance(programme: Programme) -> int:
    def work(session: Any) -> int:
        account = ledger.find_account(
            session=session, reference=coupons.redemptions_account_reference("GBP")
        )
        return 0 if account is None else account.credits_posted - account.debits_posted

    return programme.database.read(work)


def test_posting_a_prize_issues_its_coupons_to_the_member_and_the_welcomed_friends(
    database: Database, clock: FrozenClock
) -> None:
    programme = Programme.launch(
        database, clock, friend_welcome_minor=500, coupon_min_spend_minor=2500
    )
    ann = programme.enrol("ann")
    programme.invite_many(ann, friend_names("f", 5))
    assert _coupons_of(programme, ann.member_id) == []  # held: no coupon yet
    clock.advance(timedelta(days=8))
    assert programme.release_due() == 1

    [coupon] = _coupons_of(programme, ann.member_id)
    assert (coupon.amount_minor, coupon.currency, coupon.status) == (3000, "GBP", "issued")
    assert coupon.min_spend_minor == 2500
    assert coupon.value_display == "£30.00"
    assert coupon.expires_at == clock.now() + timedelta(days=90)
    parse_code(coupon.code, random_symbols=coupons.CODE_SYMBOLS)  # a valid, checked code
    # Each friend (a member too) got their welcome coupon.
    all_coupons = database.read(lambda s: s.query(Coupon).all())
    assert sorted(c.amount_minor for c in all_coupons) == [500] * 5 + [3000]
    assert len({c.member_id for c in all_coupons}) == 6
    assert len({c.code for c in all_coupons}) == 6
    # Releasing again issues nothing more.
    assert programme.release_due() == 0
    assert len(database.read(lambda s: s.query(Coupon).all())) == 6


def test_a_coupon_is_spent_once_and_the_same_order_gets_its_first_answer(
    database: Database, clock: FrozenClock
) -> None:
    programme = Programme.launch(database, clock)
    ann = _winner(programme)
    [coupon] = _coupons_of(programme, ann.member_id)
    liability_before = programme.balances()["coupons"]

    typed = coupon.code.lower().replace("-", " ")  # as a person might type it
    first = _redeem(programme, typed, "order-9001", 4500)
    assert (first.discount_minor, first.replayed) == (3000, False)
    again = _redeem(programme, coupon.code, "order-9001", 4500)
    assert again.replayed
    assert again.redeemed_at == first.redeemed_at
    with pytest.raises(CouponAlreadyRedeemed):
        _redeem(programme, coupon.code, "order-9002", 4500)

    [after] = _coupons_of(programme, ann.member_id)
    assert (after.status, after.redeemed_order_id) == ("redeemed", "order-9001")
    assert _redemptions_balance(programme) == 3000
    debits_posted = programme.balances()["coupons"][1]
    assert debits_posted == liability_before[1] + 3000  # the liability paid the coupon once
    assert programme.discrepancies() == []


def test_an_order_smaller_than_the_coupon_uses_part_and_the_rest_goes_back(
    database: Database, clock: FrozenClock
) -> None:
    programme = Programme.launch(database, clock)
    ann = _winner(programme)
    [coupon] = _coupons_of(programme, ann.member_id)
    available = programme.budget()["available"]
    redeemed = _redeem(programme, coupon.code, "order-small", 1200)
    assert redeemed.discount_minor == 1200
    assert _redemptions_balance(programme) == 1200
    assert programme.budget()["available"] == available + 1800
    assert programme.discrepancies() == []


def test_bad_redemptions_are_refused_with_nothing_written(
    database: Database, clock: FrozenClock
) -> None:
    programme = Programme.launch(database, clock, coupon_min_spend_minor=5000)
    ann = _winner(programme)
    [coupon] = _coupons_of(programme, ann.member_id)
    with pytest.raises(CouponMinimumSpendNotMet):
        _redeem(programme, coupon.code, "order-1", 4999)
    with pytest.raises(CouponCurrencyMismatch):
        _redeem(programme, coupon.code, "order-1", 9000, currency="EUR")
    with pytest.raises(CouponNotFound):
        _redeem(programme, "0000-0000-0000-0", "order-1", 9000)
    mistyped = coupon.code[:-1] + ("0" if coupon.code[-1] != "0" else "1")
    with pytest.raises(CouponNotFound):
        _redeem(programme, mistyped, "order-1", 9000)
    [still] = _coupons_of(programme, ann.member_id)
    assert still.status == "issued"
    assert _redemptions_balance(programme) == 0


def test_fifty_checkouts_racing_for_one_coupon_exactly_one_wins(
    database: Database, clock: FrozenClock
) -> None:
    programme = Programme.launch(database, clock)
    ann = _winner(programme)
    [coupon] = _coupons_of(programme, ann.member_id)
    start = threading.Barrier(50)
    won: list[str] = []
    refused: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def checkout(index: int) -> None:
        start.wait()
        try:
            _redeem(programme, coupon.code, f"order-{index}", 4000)
        except CouponAlreadyRedeemed:
            with lock:
                refused.append(f"order-{index}")
        except BaseException as error:  # reported below
            errors.append(error)
        else:
            with lock:
                won.append(f"order-{index}")

    threads = [threading.Thread(target=checkout, args=(i,)) for i in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert len(won) == 1
    assert len(refused) == 49
    [after] = _coupons_of(programme, ann.member_id)
    assert after.redeemed_order_id == won[0]
    assert _redemptions_balance(programme) == 3000  # paid out once
    assert programme.discrepancies() == []


def test_an_expired_coupon_returns_its_value_to_the_budget(
    database: Database, clock: FrozenClock
) -> None:
    programme = Programme.launch(database, clock, coupon_valid_days=30)
    ann = _winner(programme)
    [coupon] = _coupons_of(programme, ann.member_id)
    available = programme.budget()["available"]
    clock.advance(timedelta(days=30))
    with pytest.raises(CouponExpired):
        _redeem(programme, coupon.code, "order-late", 9000)
    expired = database.run(lambda s: coupons.expire_due(session=s, clock=clock))
    assert expired == 1
    assert database.run(lambda s: coupons.expire_due(session=s, clock=clock)) == 0
    [after] = _coupons_of(programme, ann.member_id)
    assert after.status == "expired"
    assert programme.budget()["available"] == available + 3000
    with pytest.raises(CouponExpired):
        _redeem(programme, coupon.code, "order-late", 9000)
    assert programme.discrepancies() == []


def test_a_claw_back_cancels_an_unspent_coupon_and_keeps_a_spent_one(
    database: Database, clock: FrozenClock
) -> None:
    programme = Programme.launch(database, clock)
    ann = _winner(programme)
    [coupon] = _coupons_of(programme, ann.member_id)
    assert programme.event(programme.chargeback("order-f2")).status == "accepted"
    [after] = _coupons_of(programme, ann.member_id)
    assert after.status == "cancelled"
    with pytest.raises(CouponCancelled):
        _redeem(programme, coupon.code, "order-x", 9000)
    assert programme.budget()["available"] == 1_000_000  # cash and coupons both came back
    assert programme.discrepancies() == []

    # Bea spends her coupon before a friend's chargeback: it cannot come back.
    bea = programme.enrol("bea")
    for name in friend_names("g", 5):
        programme.invite(bea, name)
        programme.event(programme.order(name, f"order-{name}", 4000))
    clock.advance(timedelta(days=8))
    assert programme.release_due() == 1
    [hers] = _coupons_of(programme, bea.member_id)
    _redeem(programme, hers.code, "order-bea", 9000)
    available = programme.budget()["available"]
    assert programme.event(programme.chargeback("order-g2")).status == "accepted"
    assert programme.budget()["available"] == available + 2000  # only the cash came back
    [spent] = _coupons_of(programme, bea.member_id)
    assert spent.status == "redeemed"
    assert _redemptions_balance(programme) == 3000
    # A second chargeback changes nothing more.
    programme.event(programme.chargeback("order-g4"))
    assert programme.budget()["available"] == available + 2000
    assert programme.discrepancies() == []
