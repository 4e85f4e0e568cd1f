"""Coupon errors, each with a stable code. Messages never repeat personal data."""

from __future__ import annotations

from parrain.errors import Conflict, InvalidInput, NotFound


class CouponNotFound(NotFound):
    """No coupon has this code (or it was mistyped: the check symbol catches most slips)."""

    code = "coupon_not_found"


class CouponAlreadyRedeemed(Conflict):
    code = "coupon_already_redeemed"


class CouponExpired(Conflict):
    code = "coupon_expired"


class CouponCancelled(Conflict):
    """The prize the coupon came from was clawed back before it was spent."""

    code = "coupon_cancelled"


class CouponMinimumSpendNotMet(InvalidInput):
    code = "coupon_minimum_spend_not_met"


class CouponCurrencyMismatch(InvalidInput):
    code = "coupon_currency_mismatch"
