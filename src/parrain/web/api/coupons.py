"""Coupon routes for the marketplace's backend (an integration key with the ``events``
scope): a coupon's state, a member's coupons, and redemption at checkout."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Path

from parrain.coupons import service as coupons
from parrain.coupons.schemas import CouponRead, RedemptionCreate, RedemptionRead
from parrain.web.deps import ClockDep, DatabaseDep, EventsKeyDep
from parrain.web.errors import error_responses

router = APIRouter(tags=["coupons"], responses=error_responses(401, 403, 404, 422, 500))

CodePath = Annotated[
    str, Path(min_length=1, max_length=64, description="The coupon code, as typed.")
]


@router.get("/coupons/{code}")
def get_coupon(code: CodePath, database: DatabaseDep, _key: EventsKeyDep) -> CouponRead:
    """A coupon's value, minimum spend, expiry and state (hyphens and case don't matter)."""
    return database.read(lambda session: coupons.get(session=session, code=code))


@router.post("/coupons/{code}/redeem", responses=error_responses(409))
def redeem_coupon(
    code: CodePath,
    redemption_in: RedemptionCreate,
    database: DatabaseDep,
    clock: ClockDep,
    _key: EventsKeyDep,
) -> RedemptionRead:
    """Spend a coupon on an order at checkout, once. Idempotent per order: the same
    `order_id` again answers the first redemption (`replayed: true`); another order gets 409
    `coupon_already_redeemed`. Expired (409 `coupon_expired`), cancelled (409
    `coupon_cancelled`), another currency (422 `coupon_currency_mismatch`) or an order below
    the minimum spend (422 `coupon_minimum_spend_not_met`) are refused with nothing written."""
    return database.run(
        lambda session: coupons.redeem(
            session=session, code=code, redemption_in=redemption_in, clock=clock
        )
    )


@router.get("/members/{member_id}/coupons")
def list_member_coupons(
    member_id: UUID, database: DatabaseDep, _key: EventsKeyDep
) -> list[CouponRead]:
    """A member's coupons (their prize's, and their welcome as an invited friend) and their
    state: issued, redeemed, expired or cancelled."""
    return database.read(lambda session: coupons.of_member(session=session, member_id=member_id))
