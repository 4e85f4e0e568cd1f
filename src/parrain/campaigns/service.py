"""Campaign operations: drafts, funding, the lifecycle and budget holds. Nothing commits.

Each campaign owns three ledger accounts in its currency:

* ``budget``: the prize fund, credited by funding and never debited past its credits
  (pending holds included), so a campaign can never overspend;
* ``cash_payable``: reward cash owed to members until it is paid out to PayPal;
* ``coupon_liability``: coupon value owed to members and friends until spent or expired.

Funding moves money from the operator's funding account of that currency into the budget.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal
from uuid import UUID

from babel import Locale, UnknownLocaleError
from sqlalchemy.orm import Session

from parrain.audit import service as audit
from parrain.campaigns import repository
from parrain.campaigns.errors import (
    CampaignEnded,
    CampaignNameTaken,
    CampaignNotAcceptingCredit,
    CampaignNotEditable,
    CampaignNotFound,
    IllegalTransition,
    InsufficientBudget,
    InvalidCampaign,
    LaunchGateFailed,
)
from parrain.campaigns.gate import GateFinding, register_launch_check, run_launch_gate
from parrain.campaigns.models import Campaign
from parrain.campaigns.schemas import (
    BudgetRead,
    CampaignAccounts,
    CampaignCreate,
    CampaignRead,
    CampaignStatus,
    CampaignUpdate,
    FundingCreate,
)
from parrain.kit.clock import Clock
from parrain.kit.ids import derived_id, new_id
from parrain.kit.money import Money
from parrain.ledger import service as ledger
from parrain.ledger.errors import ExceedsCredits, LedgerError
from parrain.ledger.postings import Account, Created, Phase, Transfer, TransferRequest
from parrain.ledger.schemas import AccountCreate

#: The lifecycle: which status each action leads from and to.
TRANSITIONS: dict[str, tuple[frozenset[CampaignStatus], CampaignStatus]] = {
    "launch": (frozenset({CampaignStatus.DRAFT}), CampaignStatus.LIVE),
    "pause": (frozenset({CampaignStatus.LIVE}), CampaignStatus.PAUSED),
    "resume": (frozenset({CampaignStatus.PAUSED}), CampaignStatus.LIVE),
    "end": (frozenset({CampaignStatus.LIVE, CampaignStatus.PAUSED}), CampaignStatus.ENDED),
}
_PAST_TENSE = {"launch": "launched", "pause": "paused", "resume": "resumed", "end": "ended"}


def funding_account_reference(currency: str) -> str:
    return f"operator-funding:{currency}"


@functools.cache
def _locale_for(market: str, languages: tuple[str, ...]) -> str:
    for language in languages:
        try:
            return str(Locale.parse(f"{language}_{market}"))
        except (UnknownLocaleError, ValueError):
            continue
    return "en_GB"


def display_locale(campaign: Campaign) -> str:
    """The locale amounts of this campaign are shown in: ``en_GB``, ``fr_FR``..."""
    return _locale_for(campaign.market, tuple(campaign.languages))


def _subject(campaign_id: UUID) -> str:
    return f"campaign:{campaign_id}"


def _load(session: Session, campaign_id: UUID, *, for_update: bool = False) -> Campaign:
    campaign = repository.get(session, campaign_id, for_update=for_update)
    if campaign is None:
        raise CampaignNotFound(
            f"campaign {campaign_id} does not exist", campaign_id=str(campaign_id)
        )
    return campaign


def budget_of(*, session: Session, campaign: Campaign) -> BudgetRead:
    account = ledger.get_account(session=session, account_id=campaign.budget_account_id)
    return _budget(campaign, account)


def _budget(campaign: Campaign, account: Account) -> BudgetRead:
    return BudgetRead.of(
        currency=campaign.currency,
        funded=account.credits_posted,
        held=account.debits_pending,
        spent=account.debits_posted,
        locale=display_locale(campaign),
    )


def to_read(*, session: Session, campaign: Campaign) -> CampaignRead:
    reward = campaign.reward_cash_minor + campaign.reward_coupon_minor
    return CampaignRead(
        id=campaign.id,
        name=campaign.name,
        market=campaign.market,
        currency=campaign.currency,
        languages=list(campaign.languages),
        status=CampaignStatus(campaign.status),
        starts_at=campaign.starts_at,
        ends_at=campaign.ends_at,
        friends_needed=campaign.friends_needed,
        enrolment_window_hours=campaign.enrolment_window_hours,
        reward_minor=reward,
        reward_cash_minor=campaign.reward_cash_minor,
        reward_coupon_minor=campaign.reward_coupon_minor,
        reward_display=Money(reward, campaign.currency).format(display_locale(campaign)),
        friend_welcome_minor=campaign.friend_welcome_minor,
        holding_days=campaign.holding_days,
        coupon_min_spend_minor=campaign.coupon_min_spend_minor,
        coupon_valid_days=campaign.coupon_valid_days,
        attribution_model=campaign.attribution_model,
        attribution_window_hours=campaign.attribution_window_hours,
        new_customer_days=campaign.new_customer_days,
        qualifying_action=campaign.qualifying_action,
        min_order_minor=campaign.min_order_minor,
        landing_url=campaign.landing_url,
        budget=budget_of(session=session, campaign=campaign),
        accounts=CampaignAccounts(
            budget=campaign.budget_account_id,
            cash_payable=campaign.cash_payable_account_id,
            coupon_liability=campaign.coupon_liability_account_id,
        ),
        locale=display_locale(campaign),
        created_at=campaign.created_at,
        launched_at=campaign.launched_at,
        ended_at=campaign.ended_at,
    )


def create(
    *, session: Session, campaign_in: CampaignCreate, actor: str, clock: Clock
) -> CampaignRead:
    if repository.get_by_name(session, campaign_in.name) is not None:
        raise CampaignNameTaken(
            f"a campaign called {campaign_in.name!r} already exists", name=campaign_in.name
        )
    campaign_id = new_id()
    accounts = {
        kind: ledger.create_account(
            session=session,
            account_in=AccountCreate(
                currency=campaign_in.currency,
                kind=f"campaign_{kind}",
                reference=f"campaign:{campaign_id}:{kind}",
                debits_must_not_exceed_credits=kind == "budget",
            ),
            clock=clock,
        )
        for kind in ("budget", "cash_payable", "coupon_liability")
    }
    now = clock.now()
    campaign = Campaign(
        id=campaign_id,
        name=campaign_in.name,
        market=campaign_in.market,
        currency=campaign_in.currency,
        languages=list(campaign_in.languages),
        starts_at=campaign_in.starts_at,
        ends_at=campaign_in.ends_at,
        friends_needed=campaign_in.friends_needed,
        enrolment_window_hours=campaign_in.enrolment_window_hours,
        reward_cash_minor=campaign_in.reward_cash_minor,
        reward_coupon_minor=campaign_in.reward_coupon_minor,
        friend_welcome_minor=campaign_in.friend_welcome_minor,
        holding_days=campaign_in.holding_days,
        coupon_min_spend_minor=campaign_in.coupon_min_spend_minor,
        coupon_valid_days=campaign_in.coupon_valid_days,
        attribution_model=campaign_in.attribution_model,
        attribution_window_hours=campaign_in.attribution_window_hours,
        new_customer_days=campaign_in.new_customer_days,
        qualifying_action=campaign_in.qualifying_action,
        min_order_minor=campaign_in.min_order_minor,
        landing_url=campaign_in.landing_url,
        status=CampaignStatus.DRAFT.value,
        budget_account_id=accounts["budget"].id,
        cash_payable_account_id=accounts["cash_payable"].id,
        coupon_liability_account_id=accounts["coupon_liability"].id,
        created_at=now,
        updated_at=now,
    )
    repository.add(session, campaign)
    audit.record(
        session=session,
        actor=actor,
        action="campaign.created",
        subject=_subject(campaign_id),
        details={
            "name": campaign.name,
            "market": campaign.market,
            "currency": campaign.currency,
            "reward_cash_minor": campaign.reward_cash_minor,
            "reward_coupon_minor": campaign.reward_coupon_minor,
            "accounts": {kind: str(account.id) for kind, account in accounts.items()},
        },
        clock=clock,
    )
    return to_read(session=session, campaign=campaign)


def update(
    *,
    session: Session,
    campaign_id: UUID,
    campaign_in: CampaignUpdate,
    actor: str,
    clock: Clock,
) -> CampaignRead:
    """Change a draft. A live, paused or ended campaign's rules are fixed."""
    campaign = _load(session, campaign_id, for_update=True)
    if campaign.status != CampaignStatus.DRAFT:
        raise CampaignNotEditable(
            f"only a draft can be changed; this campaign is {campaign.status}",
            status=campaign.status,
        )
    changes = campaign_in.model_dump(exclude_unset=True)
    new_name = changes.get("name")
    if new_name not in (None, campaign.name) and repository.get_by_name(session, new_name):
        raise CampaignNameTaken(f"a campaign called {new_name!r} already exists", name=new_name)
    merged = {
        "starts_at": changes.get("starts_at", campaign.starts_at),
        "ends_at": changes.get("ends_at", campaign.ends_at),
        "cash": changes.get("reward_cash_minor", campaign.reward_cash_minor),
        "coupon": changes.get("reward_coupon_minor", campaign.reward_coupon_minor),
    }
    if merged["starts_at"] >= merged["ends_at"]:
        raise InvalidCampaign("the campaign must end after it starts", field="ends_at")
    if merged["cash"] + merged["coupon"] == 0:
        raise InvalidCampaign("the reward must be greater than zero", field="reward_cash_minor")
    for name, value in changes.items():
        if value is None and name != "landing_url":
            raise InvalidCampaign(f"{name} cannot be cleared", field=name)
        setattr(campaign, name, list(value) if name == "languages" else value)
    campaign.updated_at = clock.now()
    session.flush()
    if changes:
        audit.record(
            session=session,
            actor=actor,
            action="campaign.updated",
            subject=_subject(campaign_id),
            details={"fields": sorted(changes)},
            clock=clock,
        )
    return to_read(session=session, campaign=campaign)


def get(*, session: Session, campaign_id: UUID) -> CampaignRead:
    return to_read(session=session, campaign=_load(session, campaign_id))


def find_by_name(*, session: Session, name: str) -> CampaignRead | None:
    campaign = repository.get_by_name(session, name)
    return to_read(session=session, campaign=campaign) if campaign is not None else None


def list_campaigns(*, session: Session, status: CampaignStatus | None = None) -> list[CampaignRead]:
    campaigns = repository.list_campaigns(session, status=status.value if status else None)
    return [to_read(session=session, campaign=c) for c in campaigns]


def _funding_account(*, session: Session, currency: str, actor: str, clock: Clock) -> Account:
    reference = funding_account_reference(currency)
    account = ledger.find_account(session=session, reference=reference)
    if account is None:
        account = ledger.create_account(
            session=session,
            account_in=AccountCreate(
                currency=currency, kind="operator_funding", reference=reference
            ),
            clock=clock,
        )
        audit.record(
            session=session,
            actor=actor,
            action="ledger.account_opened",
            subject=f"ledger_account:{account.id}",
            details={"kind": "operator_funding", "currency": currency, "reference": reference},
            clock=clock,
        )
    return account


def fund(
    *,
    session: Session,
    campaign_id: UUID,
    funding_in: FundingCreate,
    actor: str,
    clock: Clock,
) -> CampaignRead:
    """Move money from the operator's funding account into the campaign's prize budget.

    With a ``funding_id`` the call is idempotent: sending it again funds nothing more.
    """
    campaign = _load(session, campaign_id)
    if campaign.status == CampaignStatus.ENDED:
        raise CampaignEnded("an ended campaign cannot be funded", campaign_id=str(campaign_id))
    amount = Money(funding_in.amount_minor, funding_in.currency)
    if amount.currency != campaign.currency:
        raise InvalidCampaign(
            f"this campaign is funded in {campaign.currency}, not {amount.currency}",
            field="currency",
            campaign_currency=campaign.currency,
        )
    source = _funding_account(session=session, currency=campaign.currency, actor=actor, clock=clock)
    funding_id = funding_in.funding_id or new_id()
    [outcome] = ledger.create_transfers(
        session=session,
        transfers=[
            TransferRequest(
                id=funding_id,
                kind="campaign_funding",
                debit_account_id=source.id,
                credit_account_id=campaign.budget_account_id,
                amount=amount.minor,
                currency=amount.currency,
            )
        ],
        clock=clock,
    )
    transfer = ledger.unwrap(outcome)
    if isinstance(outcome, Created):
        audit.record(
            session=session,
            actor=actor,
            action="campaign.funded",
            subject=_subject(campaign_id),
            details={
                "amount_minor": amount.minor,
                "currency": amount.currency,
                "transfer_id": str(transfer.id),
            },
            clock=clock,
        )
    return to_read(session=session, campaign=campaign)


def _transition(
    *, session: Session, campaign_id: UUID, action: str, actor: str, clock: Clock
) -> CampaignRead:
    campaign = _load(session, campaign_id, for_update=True)
    sources, target = TRANSITIONS[action]
    current = CampaignStatus(campaign.status)
    if current not in sources:
        raise IllegalTransition(
            f"cannot {action} a campaign that is {current.value}",
            action=action,
            status=current.value,
            allowed_from=sorted(s.value for s in sources),
        )
    if target is CampaignStatus.LIVE:
        findings = run_launch_gate(session, campaign, clock)
        if findings:
            raise LaunchGateFailed(
                f"the campaign cannot {action}: " + "; ".join(f.message for f in findings),
                findings=[{"check": f.check, "message": f.message} for f in findings],
            )
    now = clock.now()
    campaign.status = target.value
    campaign.updated_at = now
    if action == "launch":
        campaign.launched_at = now
    if action == "end":
        campaign.ended_at = now
    session.flush()
    audit.record(
        session=session,
        actor=actor,
        action=f"campaign.{_PAST_TENSE[action]}",
        subject=_subject(campaign_id),
        details={"from": current.value, "to": target.value},
        clock=clock,
    )
    return to_read(session=session, campaign=campaign)


def launch(*, session: Session, campaign_id: UUID, actor: str, clock: Clock) -> CampaignRead:
    return _transition(
        session=session, campaign_id=campaign_id, action="launch", actor=actor, clock=clock
    )


def pause(*, session: Session, campaign_id: UUID, actor: str, clock: Clock) -> CampaignRead:
    """Stop new enrolments and new credit; holds already placed keep their course."""
    return _transition(
        session=session, campaign_id=campaign_id, action="pause", actor=actor, clock=clock
    )


def resume(*, session: Session, campaign_id: UUID, actor: str, clock: Clock) -> CampaignRead:
    return _transition(
        session=session, campaign_id=campaign_id, action="resume", actor=actor, clock=clock
    )


def end(*, session: Session, campaign_id: UUID, actor: str, clock: Clock) -> CampaignRead:
    return _transition(
        session=session, campaign_id=campaign_id, action="end", actor=actor, clock=clock
    )


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
    campaign = _load(session, campaign_id)
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
    campaign = _load(session, campaign_id)
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
    campaign = _load(session, campaign_id)
    return settle_prize_parts(
        session=session, parts=prize_parts(campaign, reward_id=reward_id), post=True, clock=clock
    )


def void_reward(
    *, session: Session, campaign_id: UUID, reward_id: UUID, clock: Clock
) -> list[Transfer]:
    """Return a reward held by :func:`hold_reward` to the budget."""
    campaign = _load(session, campaign_id)
    return settle_prize_parts(
        session=session, parts=prize_parts(campaign, reward_id=reward_id), post=False, clock=clock
    )


def _budget_funded(session: Session, campaign: Campaign, _clock: Clock) -> list[GateFinding]:
    budget = budget_of(session=session, campaign=campaign)
    needed = prize_cost(campaign)
    if budget.available_minor >= needed:
        return []
    locale = display_locale(campaign)
    held = Money(budget.available_minor, campaign.currency).format(locale)
    prize = Money(needed, campaign.currency).format(locale)
    return [
        GateFinding(
            "budget_funded", f"the prize budget holds {held}, less than one prize ({prize})"
        )
    ]


def _window_open(_session: Session, campaign: Campaign, clock: Clock) -> list[GateFinding]:
    if clock.now() < campaign.ends_at:
        return []
    return [GateFinding("window_open", "the campaign's time window has already closed")]


register_launch_check("budget_funded", _budget_funded)
register_launch_check("window_open", _window_open)
