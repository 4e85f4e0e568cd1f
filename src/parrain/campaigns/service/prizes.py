"""Prizes out of the budget: their parts, the linked pending holds that reserve them, and
posting, voiding or clawing them back (each at most once: ids are derived)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal
from uuid import UUID

from sqlalchemy.orm import Session

from parrain.campaigns.errors import (
    CampaignNotAcceptingCredit,
    CampaignNotFound,
    InsufficientBudget,
)
from parrain.campaigns.models import Campaign
from parrain.campaigns.schemas import CampaignStatus
from parrain.campaigns.service.common import budget_of, load
from parrain.kit.clock import Clock
from parrain.kit.ids import derived_id
from parrain.ledger import service as ledger
from parrain.ledger.errors import ExceedsCredits, LedgerError
from parrain.ledger.postings import Phase, Transfer, TransferRequest


def prize_cost(campaign: Campaign) -> int:
    """What one prize costs the budget: the member's reward plus each friend's welcome."""
    return (
        campaign.reward_cash_minor
        + campaign.reward_coupon_minor
        + campaign.friend_welcome_minor * campaign.friends_needed
    )


PrizePartKind = Literal["cash", "coupon", "welcome"]


@dataclass(frozen=True, slots=True)
class PrizePart:
    """One transfer of a prize, out of the budget: ``cash`` to the cash owed to members,
    ``coupon`` (the member's) and ``welcome`` (a friend's) to the coupon liability.

    ``transfer_id`` is the id of its pending hold; posting, voiding and clawing back derive
    their ids from it, so each happens at most once.
    """

    transfer_id: UUID
    kind: PrizePartKind
    amount: int


def prize_parts(
    campaign: Campaign, *, reward_id: UUID, welcome_for: Sequence[UUID] = ()
) -> list[PrizePart]:
    """The parts of one prize: the member's cash and coupons, and a welcome for each friend
    in ``welcome_for`` when the campaign gives one. Parts worth nothing are left out."""
    parts = [
        PrizePart(derived_id("reward", reward_id, "cash"), "cash", campaign.reward_cash_minor),
        PrizePart(
            derived_id("reward", reward_id, "coupon"), "coupon", campaign.reward_coupon_minor
        ),
    ]
    parts.extend(
        PrizePart(
            derived_id("reward", reward_id, "welcome", friend_id),
            "welcome",
            campaign.friend_welcome_minor,
        )
        for friend_id in welcome_for
    )
    return [part for part in parts if part.amount > 0]


def _credit_account(campaign: Campaign, kind: PrizePartKind) -> UUID:
    if kind == "cash":
        return campaign.cash_payable_account_id
    return campaign.coupon_liability_account_id


def hold_prize(
    *, session: Session, campaign_id: UUID, parts: Sequence[PrizePart], clock: Clock
) -> list[Transfer]:
    """Reserve a prize in the budget: one linked pending transfer per part, all or nothing.

    Refused unless the campaign is live (:class:`CampaignNotAcceptingCredit`), or when the
    budget, counting the holds already placed, cannot cover every part
    (:class:`InsufficientBudget`; nothing is written). The same parts hold once however
    often they are sent.
    """
    [outcome] = hold_prizes(session=session, prizes=[(campaign_id, parts)], clock=clock)
    if isinstance(outcome, CampaignNotAcceptingCredit | InsufficientBudget):
        raise outcome
    return outcome


def hold_prizes(
    *,
    session: Session,
    prizes: Sequence[tuple[UUID, Sequence[PrizePart]]],
    clock: Clock,
) -> list[list[Transfer] | CampaignNotAcceptingCredit | InsufficientBudget]:
    """:func:`hold_prize` for several prizes (campaign id, parts) in one ledger batch: for
    each, in order, its holds or the refusal :func:`hold_prize` would raise. Each prize is
    all or nothing on its own; earlier prizes are held first, so when the budget runs out
    the later ones are refused."""
    campaigns: dict[UUID, Campaign] = {}
    for campaign_id, _parts in prizes:
        if campaign_id not in campaigns:
            # The identity map's copy when the caller loaded it in this transaction.
            campaign = session.get(Campaign, campaign_id)
            if campaign is None:
                raise CampaignNotFound(
                    f"campaign {campaign_id} does not exist", campaign_id=str(campaign_id)
                )
            campaigns[campaign_id] = campaign
    outcomes: list[list[Transfer] | CampaignNotAcceptingCredit | InsufficientBudget | None] = []
    chains: list[list[TransferRequest]] = []
    for campaign_id, parts in prizes:
        campaign = campaigns[campaign_id]
        if campaign.status != CampaignStatus.LIVE:
            outcomes.append(
                CampaignNotAcceptingCredit(
                    f"the campaign is {campaign.status}: it takes no new credit",
                    campaign_id=str(campaign_id),
                    status=campaign.status,
                )
            )
            continue
        outcomes.append(None)
        chains.append(
            [
                TransferRequest(
                    id=part.transfer_id,
                    kind=f"reward_hold_{part.kind}",
                    debit_account_id=campaign.budget_account_id,
                    credit_account_id=_credit_account(campaign, part.kind),
                    amount=part.amount,
                    currency=campaign.currency,
                    phase=Phase.PENDING,
                )
                for part in parts
            ]
        )
    held = iter(ledger.create_chains(session=session, chains=chains, clock=clock))
    available: dict[UUID, int] = {}
    done: list[list[Transfer] | CampaignNotAcceptingCredit | InsufficientBudget] = []
    for (campaign_id, parts), outcome in zip(prizes, outcomes, strict=True):
        if outcome is not None:
            done.append(outcome)
            continue
        result = next(held)
        if isinstance(result, ExceedsCredits):
            # Nothing of this prize was written: the budget is as the holds before it left it.
            if campaign_id not in available:
                budget = budget_of(session=session, campaign=campaigns[campaign_id])
                available[campaign_id] = budget.available_minor
            done.append(
                InsufficientBudget(
                    "the prize budget cannot cover this reward",
                    campaign_id=str(campaign_id),
                    available_minor=available[campaign_id],
                    needed_minor=sum(part.amount for part in parts),
                )
            )
        elif isinstance(result, LedgerError):
            raise result
        else:
            done.append(result)
    return done


def prize_part_transfer_ids(transfer_id: UUID) -> list[UUID]:
    """Every ledger transfer a prize part can have: its hold, then the post or the void, and
    a claw-back (for an export or an audit to find them all)."""
    return [
        transfer_id,
        derived_id("post", transfer_id),
        derived_id("void", transfer_id),
        derived_id("claw_back", transfer_id),
    ]


def settle_prize_parts(
    *, session: Session, parts: Sequence[PrizePart], post: bool, clock: Clock
) -> list[Transfer]:
    """Post (``post=True``: the holding period passed) or void (back to the budget) held
    parts, linked: all or nothing. Works whatever the campaign's status: what was earned is
    honoured. Settling a part again returns the first result."""
    verb, phase = ("post", Phase.POST_PENDING) if post else ("void", Phase.VOID_PENDING)
    requests = [
        TransferRequest(
            id=derived_id(verb, part.transfer_id),
            kind=f"reward_{verb}_{part.kind}",
            phase=phase,
            pending_id=part.transfer_id,
        )
        for part in parts
    ]
    return ledger.create_linked(session=session, transfers=requests, clock=clock)


def claw_back_prize_parts(
    *, session: Session, campaign_id: UUID, parts: Sequence[PrizePart], clock: Clock
) -> list[Transfer]:
    """Return posted parts to the budget (ADR 0008): cash owed and coupon value go back,
    linked, each at most once. Only for parts whose hold was posted."""
    campaign = load(session, campaign_id)
    requests = [
        TransferRequest(
            id=derived_id("claw_back", part.transfer_id),
            kind=f"reward_claw_back_{part.kind}",
            debit_account_id=_credit_account(campaign, part.kind),
            credit_account_id=campaign.budget_account_id,
            amount=part.amount,
            currency=campaign.currency,
        )
        for part in parts
    ]
    return ledger.create_linked(session=session, transfers=requests, clock=clock)


def hold_reward(
    *, session: Session, campaign_id: UUID, reward_id: UUID, clock: Clock
) -> list[Transfer]:
    """Reserve one member reward (cash and coupon parts, no welcome) in the budget."""
    campaign = load(session, campaign_id)
    return hold_prize(
        session=session,
        campaign_id=campaign_id,
        parts=prize_parts(campaign, reward_id=reward_id),
        clock=clock,
    )


def release_reward(
    *, session: Session, campaign_id: UUID, reward_id: UUID, clock: Clock
) -> list[Transfer]:
    """Post a reward held by :func:`hold_reward` (its holding period passed)."""
    campaign = load(session, campaign_id)
    return settle_prize_parts(
        session=session, parts=prize_parts(campaign, reward_id=reward_id), post=True, clock=clock
    )


def void_reward(
    *, session: Session, campaign_id: UUID, reward_id: UUID, clock: Clock
) -> list[Transfer]:
    """Return a reward held by :func:`hold_reward` to the budget."""
    campaign = load(session, campaign_id)
    return settle_prize_parts(
        session=session, parts=prize_parts(campaign, reward_id=reward_id), post=False, clock=clock
    )
