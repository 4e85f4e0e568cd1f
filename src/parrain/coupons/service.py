"""Issue prize coupons, redeem them at checkout, expire and cancel them. Nothing commits.

Money moves only through the ledger, each movement at most once (ids derived from the
coupon's id): issuing moves nothing (the prize part's post already moved its value from the
budget to the campaign's coupon liability); redeeming moves the discount from the liability
to the marketplace's coupon redemptions and what the order could not use back to the budget;
expiring moves the whole value back to the budget; cancelling (a clawed-back prize) leaves
the money to the claw-back.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID

from sqlalchemy.orm import Session

from parrain.audit import service as audit
from parrain.campaigns import service as campaigns
from parrain.campaigns.models import Campaign
from parrain.coupons import repository
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
from parrain.kit.clock import Clock
from parrain.kit.ids import derived_id, new_id
from parrain.kit.money import Money
from parrain.ledger import service as ledger
from parrain.ledger.postings import TransferRequest
from parrain.ledger.schemas import AccountCreate
from parrain.referrals.codes import SponsorshipCode, new_code, parse_code
from parrain.referrals.errors import InvalidCode

#: Random symbols of a coupon code (60 bits), plus the check symbol.
CODE_SYMBOLS = 12
SYSTEM_ACTOR = "system:coupons"


@dataclass(frozen=True, slots=True)
class CouponPart:
    """A posted prize part paid in coupons, and who owns it."""

    reward_part_id: UUID
    member_id: UUID
    amount_minor: int


def redemptions_account_reference(currency: str) -> str:
    """The account of what budgets owe the marketplace for the coupons it honoured."""
    return f"coupon_redemptions:{currency}"


def _display(code: str) -> str:
    return SponsorshipCode(code).display


def to_read(coupon: Coupon, campaign: Campaign) -> CouponRead:
    locale = campaigns.display_locale(campaign)
    return CouponRead(
        code=_display(coupon.code),
        member_id=coupon.member_id,
        campaign_id=coupon.campaign_id,
        amount_minor=coupon.amount_minor,
        currency=coupon.currency,
        min_spend_minor=coupon.min_spend_minor,
        status=coupon.status,  # a CHECK keeps it to the four
        issued_at=coupon.issued_at,
        expires_at=coupon.expires_at,
        value_display=Money(coupon.amount_minor, coupon.currency).format(locale),
        redeemed_order_id=coupon.order_id,
        settled_at=coupon.settled_at,
    )


def issue(
    *, session: Session, campaign: Campaign, parts: Sequence[CouponPart], clock: Clock
) -> list[Coupon]:
    """One coupon per posted coupon part (a part that has one already keeps it), valid for
    the campaign's ``coupon_valid_days`` with its minimum spend."""
    existing = {
        c.reward_part_id for c in repository.of_parts(session, [p.reward_part_id for p in parts])
    }
    now = clock.now()
    issued = []
    for part in parts:
        if part.reward_part_id in existing:
            continue
        code = new_code(random_symbols=CODE_SYMBOLS).canonical
        while repository.code_taken(session, code):  # 2^60 codes: practically never
            code = new_code(random_symbols=CODE_SYMBOLS).canonical
        issued.append(
            Coupon(
                id=new_id(),
                code=code,
                campaign_id=campaign.id,
                member_id=part.member_id,
                reward_part_id=part.reward_part_id,
                amount_minor=part.amount_minor,
                currency=campaign.currency,
                min_spend_minor=campaign.coupon_min_spend_minor,
                status="issued",
                issued_at=now,
                expires_at=now + timedelta(days=campaign.coupon_valid_days),
            )
        )
    if issued:
        repository.add(session, *issued)
    return issued


def _find(session: Session, code_text: str, *, for_update: bool) -> Coupon:
    try:
        code = parse_code(code_text, random_symbols=CODE_SYMBOLS).canonical
    except InvalidCode:
        raise CouponNotFound("there is no coupon with this code: check how it was typed") from None
    coupon = repository.by_code(session, code, for_update=for_update)
    if coupon is None:
        raise CouponNotFound("there is no coupon with this code: check how it was typed")
    return coupon


def _campaign(session: Session, campaign_id: UUID) -> Campaign:
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:  # a foreign key guarantees it
        raise CouponNotFound("the coupon's campaign is gone")
    return campaign


def get(*, session: Session, code: str) -> CouponRead:
    coupon = _find(session, code, for_update=False)
    return to_read(coupon, _campaign(session, coupon.campaign_id))


def of_member(*, session: Session, member_id: UUID) -> list[CouponRead]:
    coupons = repository.of_member(session, member_id)
    return [to_read(c, _campaign(session, c.campaign_id)) for c in coupons]


def _redemptions_account(session: Session, currency: str, clock: Clock) -> UUID:
    reference = redemptions_account_reference(currency)
    account = ledger.find_account(session=session, reference=reference)
    if account is None:
        # Two first redemptions at once: one insert fails on the unique reference and its
        # transaction is retried by Database.run, finding this account.
        account = ledger.create_account(
            session=session,
            account_in=AccountCreate(
                currency=currency, kind="coupon_redemptions", reference=reference
            ),
            clock=clock,
        )
    return account.id


def _redemption(coupon: Coupon, *, replayed: bool) -> RedemptionRead:
    assert coupon.order_id is not None
    assert coupon.order_amount_minor is not None
    assert coupon.settled_at is not None
    return RedemptionRead(
        code=_display(coupon.code),
        order_id=coupon.order_id,
        discount_minor=min(coupon.amount_minor, coupon.order_amount_minor),
        currency=coupon.currency,
        redeemed_at=coupon.settled_at,
        replayed=replayed,
    )


def redeem(
    *, session: Session, code: str, redemption_in: RedemptionCreate, clock: Clock
) -> RedemptionRead:
    """Spend a coupon on an order, once. The same order asking again gets the first answer;
    another order is refused. The coupon row is locked, so of many checkouts racing for one
    coupon exactly one wins."""
    coupon = _find(session, code, for_update=True)
    if coupon.status == "redeemed":
        if coupon.order_id == redemption_in.order_id:
            return _redemption(coupon, replayed=True)
        raise CouponAlreadyRedeemed("this coupon was already used on another order")
    if coupon.status == "cancelled":
        raise CouponCancelled("this coupon was cancelled: the prize it came from was taken back")
    now = clock.now()
    if coupon.status == "expired" or now >= coupon.expires_at:
        raise CouponExpired("this coupon has expired", expired_at=coupon.expires_at.isoformat())
    if redemption_in.currency != coupon.currency:
        raise CouponCurrencyMismatch(
            f"this coupon is in {coupon.currency}, the order in {redemption_in.currency}",
            field="currency",
        )
    if redemption_in.order_amount_minor < coupon.min_spend_minor:
        raise CouponMinimumSpendNotMet(
            "the order is below this coupon's minimum spend",
            field="order_amount_minor",
            min_spend_minor=coupon.min_spend_minor,
        )
    campaign = _campaign(session, coupon.campaign_id)
    discount = min(coupon.amount_minor, redemption_in.order_amount_minor)
    moves = [
        TransferRequest(
            id=derived_id("coupon_redeem", coupon.id),
            kind="coupon_redeemed",
            debit_account_id=campaign.coupon_liability_account_id,
            credit_account_id=_redemptions_account(session, coupon.currency, clock),
            amount=discount,
            currency=coupon.currency,
        )
    ]
    if coupon.amount_minor > discount:  # what the order could not use goes back
        moves.append(
            TransferRequest(
                id=derived_id("coupon_unused", coupon.id),
                kind="coupon_unused",
                debit_account_id=campaign.coupon_liability_account_id,
                credit_account_id=campaign.budget_account_id,
                amount=coupon.amount_minor - discount,
                currency=coupon.currency,
            )
        )
    ledger.create_linked(session=session, transfers=moves, clock=clock)
    coupon.status = "redeemed"
    coupon.order_id = redemption_in.order_id
    coupon.order_amount_minor = redemption_in.order_amount_minor
    coupon.settled_at = now
    session.flush()
    return _redemption(coupon, replayed=False)


def expire_due(*, session: Session, clock: Clock, limit: int = 500) -> int:
    """Expire issued coupons past their date: each one's value back to its budget (one
    ledger batch), audited with their count. Returns how many expired."""
    now = clock.now()
    due = repository.due_to_expire(session, now=now, limit=limit)
    if not due:
        return 0
    chains = []
    for coupon in due:
        campaign = _campaign(session, coupon.campaign_id)
        chains.append(
            [
                TransferRequest(
                    id=derived_id("coupon_expire", coupon.id),
                    kind="coupon_expired",
                    debit_account_id=campaign.coupon_liability_account_id,
                    credit_account_id=campaign.budget_account_id,
                    amount=coupon.amount_minor,
                    currency=coupon.currency,
                )
            ]
        )
    for result in ledger.create_chains(session=session, chains=chains, clock=clock):
        if isinstance(result, Exception):
            raise result
    for coupon in due:
        coupon.status, coupon.settled_at = "expired", now
    session.flush()
    audit.record(
        session=session,
        actor=SYSTEM_ACTOR,
        action="coupon.expired",
        subject="coupons",
        details={"count": len(due), "coupon_ids": [str(c.id) for c in due]},
        clock=clock,
    )
    return len(due)


def cancel_for_parts(
    *, session: Session, reward_part_ids: Collection[UUID], clock: Clock
) -> set[UUID]:
    """Cancel the unspent coupons of prize parts being clawed back; return the parts whose
    coupon was already spent (or expired), whose value is no longer in the liability."""
    settled: set[UUID] = set()
    now = clock.now()
    for coupon in repository.of_parts(session, reward_part_ids, for_update=True):
        if coupon.status == "issued":
            coupon.status, coupon.settled_at = "cancelled", now
        elif coupon.status in ("redeemed", "expired"):
            settled.add(coupon.reward_part_id)
    session.flush()
    return settled
