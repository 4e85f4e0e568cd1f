"""What the facts mean: is a friend new, whose are they, do they count; is the prize held,
posted, voided or clawed back. Nothing commits.

Two steps, run after every fact that may change them:

1. :func:`evaluate_friend` derives a friend's state from the stored facts alone (their
   signup, the installs and clicks of their device, the codes they carried or typed, the
   sightings of their user id, device and email, their orders), so the same facts give the
   same state whatever order the events came in. Two things are sticky because they depend
   on *when* parrain learnt of them: a friend who qualified while the campaign was not live
   is ``not_credited`` (pausing stops new credit), and a disqualification stays.
2. :func:`reconcile_enrolment` compares the friends who count with the member's prize and
   moves money to match, under a lock on the enrolment row: the goal reached → linked
   pending transfers out of the budget (cash, coupons, a welcome for each counted friend);
   a counted friend lost during the holding period → void what depended on them; after the
   holding period → claw back (ADR 0008).

:func:`release_due_rewards` posts held prizes whose holding period has passed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from sqlalchemy.orm import Session

from parrain.audit import service as audit
from parrain.campaigns import service as campaigns
from parrain.campaigns.errors import CampaignNotAcceptingCredit, InsufficientBudget
from parrain.campaigns.models import Campaign
from parrain.campaigns.schemas import CampaignStatus
from parrain.kit.clock import Clock
from parrain.kit.ids import derived_id
from parrain.referrals import repository
from parrain.referrals.attribution import (
    Attribution,
    AttributionRule,
    Conversion,
    Touch,
    attribute,
)
from parrain.referrals.models import Click, Enrolment, Friend, Reward, RewardPart

SYSTEM_ACTOR = "system:referrals"


@dataclass(frozen=True, slots=True)
class _Credit:
    enrolment: Enrolment
    campaign: Campaign
    attribution: Attribution


def _campaign(session: Session, campaign_id: UUID) -> Campaign:
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:  # a foreign key guarantees it
        raise LookupError(f"campaign {campaign_id} is missing")
    return campaign


def rule_of(campaign: Campaign) -> AttributionRule:
    return AttributionRule(
        model="first_click" if campaign.attribution_model == "first_click" else "last_click",
        window=timedelta(hours=campaign.attribution_window_hours),
    )


def _touch(click: Click, code: str) -> Touch:
    return Touch(
        at=click.clicked_at, code=code, device_id=click.device_hash, touch_id=str(click.id)
    )


def _attribute(session: Session, friend: Friend) -> _Credit | None:
    """Which enrolment, if any, this friend's signup credits (see the module doc).

    The campaign whose rule decides is the one the evidence names most directly: the
    token's click, else the code carried or typed, else the device's latest click. Only that
    campaign's clicks and code take part, and only campaigns of the friend's market.
    """
    install = repository.latest_install_before(
        session, market=friend.market, device_hash=friend.device_hash, at=friend.signed_up_at
    )
    token_click = (
        repository.get_click(session, install.click_id)
        if install is not None and install.click_id is not None
        else None
    )
    code = (install.code if install is not None else None) or friend.typed_code
    device_clicks = repository.clicks_of_device(
        session, market=friend.market, device_hash=friend.device_hash
    )
    code_enrolment = repository.get_enrolment_by_code(session, code) if code else None

    if token_click is not None:
        campaign_id = token_click.campaign_id
    elif code_enrolment is not None:
        campaign_id = code_enrolment.campaign_id
    elif device_clicks:
        latest = max(device_clicks, key=lambda c: (c.clicked_at, c.id))
        campaign_id = latest.campaign_id
    else:
        return None
    campaign = _campaign(session, campaign_id)
    if campaign.market != friend.market:
        return None

    clicks = [c for c in device_clicks if c.campaign_id == campaign_id]
    if token_click is not None and token_click.campaign_id == campaign_id:
        clicks.append(token_click)
    codes = {
        c.enrolment_id: enrolment.code
        for c in clicks
        if (enrolment := repository.get_enrolment(session, c.enrolment_id)) is not None
    }
    touches = [_touch(c, codes[c.enrolment_id]) for c in clicks]
    typed = (
        code_enrolment.code
        if code_enrolment and code_enrolment.campaign_id == campaign_id
        else None
    )
    conversion = Conversion(
        at=install.installed_at if install is not None else friend.signed_up_at,
        device_id=friend.device_hash,
        code=typed,
        token_touch_id=str(token_click.id)
        if token_click is not None and token_click.campaign_id == campaign_id
        else None,
    )
    result = attribute(rule_of(campaign), touches=touches, conversion=conversion)
    if result is None:
        return None
    enrolment = repository.get_enrolment_by_code(session, result.code)
    if enrolment is None:
        return None
    return _Credit(enrolment=enrolment, campaign=campaign, attribution=result)


def _qualifying_time(
    session: Session, friend: Friend, campaign: Campaign
) -> tuple[datetime | None, str | None]:
    """When the friend did the campaign's qualifying action, or why they have not."""
    if campaign.qualifying_action == "signup":
        return friend.signed_up_at, None
    order = repository.first_completed_order(session, friend.id)
    if order is None:
        return None, "no_completed_order"
    if order.currency != campaign.currency:
        return None, "first_order_other_currency"
    if order.amount_minor - order.refunded_minor < max(campaign.min_order_minor, 1):
        return None, "first_order_below_minimum"
    return order.ordered_at, None


def evaluate_friend(session: Session, friend: Friend, *, clock: Clock) -> set[UUID]:
    """Derive ``friend``'s state from the facts; return the enrolments whose count may have
    changed (the one they were credited to before and the one they are credited to now)."""
    before = {friend.enrolment_id} if friend.enrolment_id is not None else set()
    credit = _attribute(session, friend)
    if credit is not None and credit.enrolment.member_id == friend.member_id:
        credit = None  # a member cannot sponsor themselves
    friend.install_id = None
    friend.qualified_at = None
    friend.status_reason = None
    if credit is None:
        friend.enrolment_id = friend.campaign_id = friend.attribution_reason = None
        friend.new_customer = True
        friend.seen_before = None
        friend.status = "disqualified" if friend.disqualified_at else "pending"
        friend.status_reason = friend.disqualified_reason or "no_sponsor"
        session.flush()
        return before

    campaign = credit.campaign
    friend.enrolment_id = credit.enrolment.id
    friend.campaign_id = campaign.id
    friend.attribution_reason = credit.attribution.reason.value
    seen = repository.seen_before(
        session,
        market=friend.market,
        hashes=[
            ("user", friend.user_hash),
            ("device", friend.device_hash),
            ("email", friend.email_hash),
        ],
        since=friend.signed_up_at - timedelta(days=campaign.new_customer_days),
        before=friend.signed_up_at,
        exclude_source=f"friend:{friend.id}",
    )
    friend.new_customer = seen is None
    friend.seen_before = seen
    was_qualified = friend.status == "qualified"
    if friend.disqualified_at is not None:
        friend.status, friend.status_reason = "disqualified", friend.disqualified_reason
    elif seen is not None:
        friend.status, friend.status_reason = "not_new", f"{seen}_seen_before"
    else:
        qualified_at, why_not = _qualifying_time(session, friend, campaign)
        if qualified_at is None:
            friend.status = "unqualified" if why_not != "no_completed_order" else "waiting"
            friend.status_reason = why_not
        elif qualified_at > credit.enrolment.deadline_at:
            friend.status, friend.status_reason = "late", "after_deadline"
            friend.qualified_at = qualified_at
        elif friend.not_credited_at is not None:
            friend.status, friend.status_reason = "not_credited", "campaign_not_live"
        elif not was_qualified and campaign.status != CampaignStatus.LIVE:
            friend.not_credited_at = clock.now()
            friend.status, friend.status_reason = "not_credited", "campaign_not_live"
        else:
            friend.status = "qualified"
            friend.qualified_at = qualified_at
    session.flush()
    return before | {credit.enrolment.id}


_KINDS: dict[str, campaigns.PrizePartKind] = {
    "cash": "cash",
    "coupon": "coupon",
    "welcome": "welcome",
}


def _part(part: RewardPart) -> campaigns.PrizePart:
    # The table's CHECK keeps ``kind`` to these three.
    return campaigns.PrizePart(
        transfer_id=part.id, kind=_KINDS[part.kind], amount=part.amount_minor
    )


def _record(session: Session, reward: Reward, action: str, clock: Clock, **details: object) -> None:
    audit.record(
        session=session,
        actor=SYSTEM_ACTOR,
        action=f"reward.{action}",
        subject=f"reward:{reward.id}",
        details={"enrolment_id": str(reward.enrolment_id), **details},
        clock=clock,
    )


def reconcile_enrolment(session: Session, enrolment_id: UUID, *, clock: Clock) -> Reward | None:
    """Make the member's prize match the friends who count (see the module doc)."""
    enrolment = repository.get_enrolment(session, enrolment_id, for_update=True)
    if enrolment is None:
        return None
    campaign = _campaign(session, enrolment.campaign_id)
    counted = [
        friend
        for friend in repository.friends_of_enrolment(session, enrolment_id)
        if friend.status == "qualified"
    ]
    counted.sort(key=lambda f: (f.qualified_at, f.signed_up_at, f.id))
    counted_ids = {friend.id for friend in counted}
    reward = repository.current_reward(session, enrolment_id, for_update=True)
    enough = len(counted) >= campaign.friends_needed

    if reward is not None and reward.status in ("held", "posted"):
        _settle_lost_friends(session, reward, campaign, counted_ids, enough, clock)
        return reward
    if reward is not None and reward.status == "clawed_back":
        return reward
    if not enough:
        return reward
    return _place(session, enrolment, campaign, counted, reward, clock)


def _place(
    session: Session,
    enrolment: Enrolment,
    campaign: Campaign,
    counted: Sequence[Friend],
    previous: Reward | None,
    clock: Clock,
) -> Reward | None:
    winners = counted[: campaign.friends_needed]
    earned_at = max(friend.qualified_at or friend.signed_up_at for friend in winners)
    if previous is not None and previous.status == "refused":
        reward = previous
    else:
        generation = 1 if previous is None else previous.generation + 1
        reward = Reward(
            id=derived_id("reward", enrolment.id, generation),
            enrolment_id=enrolment.id,
            generation=generation,
            campaign_id=campaign.id,
            currency=campaign.currency,
            created_at=clock.now(),
        )
    parts = campaigns.prize_parts(
        campaign, reward_id=reward.id, welcome_for=[friend.id for friend in winners]
    )
    try:
        campaigns.hold_prize(session=session, campaign_id=campaign.id, parts=parts, clock=clock)
    except CampaignNotAcceptingCredit:
        return previous
    except InsufficientBudget as refusal:
        first_refusal = reward.status != "refused"
        reward.status, reward.reason = "refused", "budget_exhausted"
        reward.earned_at = earned_at
        session.add(reward)
        session.flush()
        if first_refusal:
            _record(session, reward, "refused", clock, **refusal.details)
        return reward
    welcome = iter(winners)
    rows = [
        RewardPart(
            id=part.transfer_id,
            reward_id=reward.id,
            kind=part.kind,
            friend_id=next(welcome).id if part.kind == "welcome" else None,
            amount_minor=part.amount,
            status="held",
        )
        for part in parts
    ]
    reward.status, reward.reason = "held", None
    reward.earned_at = earned_at
    reward.release_at = earned_at + timedelta(days=campaign.holding_days)
    session.add(reward)
    session.flush()
    repository.add(session, *rows)
    _record(
        session,
        reward,
        "held",
        clock,
        generation=reward.generation,
        release_at=reward.release_at.isoformat(),
        parts={str(row.id): [row.kind, row.amount_minor] for row in rows},
        friends=[str(friend.id) for friend in winners],
    )
    return reward


def _settle_lost_friends(
    session: Session,
    reward: Reward,
    campaign: Campaign,
    counted_ids: set[UUID],
    enough: bool,
    clock: Clock,
) -> None:
    """Undo what depended on friends who no longer count: their welcome, and the member's
    own parts once too few friends are left. Held parts are voided, posted ones clawed back."""
    parts = repository.parts_of(session, reward.id)
    lost = [
        part
        for part in parts
        if part.status in ("held", "posted")
        and (not enough or (part.friend_id is not None and part.friend_id not in counted_ids))
    ]
    if not lost:
        return
    now = clock.now()
    held = [part for part in lost if part.status == "held"]
    posted = [part for part in lost if part.status == "posted"]
    if held:
        campaigns.settle_prize_parts(
            session=session, parts=[_part(p) for p in held], post=False, clock=clock
        )
    if posted:
        campaigns.claw_back_prize_parts(
            session=session, campaign_id=campaign.id, parts=[_part(p) for p in posted], clock=clock
        )
    for part in held:
        part.status, part.settled_at = "voided", now
    for part in posted:
        part.status, part.settled_at = "clawed_back", now
    if not enough:
        reward.status = "voided" if reward.status == "held" else "clawed_back"
        reward.reason = "friends_fell_short"
        reward.settled_at = now
    session.flush()
    _record(
        session,
        reward,
        "voided" if held else "clawed_back",
        clock,
        parts=[str(part.id) for part in lost],
        whole_reward=not enough,
    )


def release_reward(session: Session, reward_id: UUID, *, clock: Clock) -> bool:
    """Post a held prize whose holding period has passed; ``False`` if it is not due."""
    reward = session.get(Reward, reward_id)
    if reward is None:
        return False
    repository.get_enrolment(session, reward.enrolment_id, for_update=True)
    session.refresh(reward)
    now = clock.now()
    if reward.status != "held" or reward.release_at is None or reward.release_at > now:
        return False
    held = [part for part in repository.parts_of(session, reward.id) if part.status == "held"]
    if held:
        campaigns.settle_prize_parts(
            session=session, parts=[_part(p) for p in held], post=True, clock=clock
        )
    for part in held:
        part.status, part.settled_at = "posted", now
    reward.status, reward.settled_at = "posted", now
    session.flush()
    _record(session, reward, "posted", clock, parts=[str(part.id) for part in held])
    return True


def release_due_rewards(session: Session, *, clock: Clock, limit: int = 100) -> int:
    """Post up to ``limit`` held prizes that are due; return how many were posted."""
    due = repository.due_rewards(session, now=clock.now(), limit=limit)
    return sum(release_reward(session, reward.id, clock=clock) for reward in due)
