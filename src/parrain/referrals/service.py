"""Referral operations: enrolment, clicks on a link, a member's progress, a campaign's funnel.

Nothing commits; the edges run each call in :meth:`parrain.db.session.Database.run`. The
events the marketplace sends are in :mod:`parrain.referrals.events`; what the facts mean
(friends who count, the prize) is in :mod:`parrain.referrals.progress`.
"""

from __future__ import annotations

import re
import secrets
from datetime import timedelta
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit
from uuid import UUID

from sqlalchemy.orm import Session

from parrain.campaigns import service as campaigns
from parrain.campaigns.errors import CampaignNotFound
from parrain.campaigns.models import Campaign
from parrain.campaigns.schemas import CampaignStatus
from parrain.kit.clock import Clock
from parrain.kit.crypto import lookup_hash
from parrain.kit.ids import new_id
from parrain.kit.money import Money
from parrain.members import service as members
from parrain.members.service import MemberKeys
from parrain.referrals import repository
from parrain.referrals.codes import SponsorshipCode, link_for, new_code, parse_code
from parrain.referrals.errors import (
    AlreadyEnrolled,
    EnrolmentNotFound,
    EnrolmentRefused,
    UnknownCode,
)
from parrain.referrals.models import Click, Enrolment, Reward, Sighting
from parrain.referrals.schemas import (
    ClickResult,
    EnrolmentCreate,
    EnrolmentRead,
    FriendRead,
    FunnelRead,
    ProgressRead,
    RewardRead,
)

#: Lookup-hash purpose of device identifiers (app device ids and link visitors alike).
DEVICE_PURPOSE = "device"

#: User agents of crawlers, link previewers and scripts: their clicks are not counted.
_BOT_AGENT = re.compile(
    r"bot|crawl|spider|slurp|preview|facebookexternalhit|embedly|whatsapp|telegram|"
    r"skypeuripreview|bitlyspider|curl/|wget/|python-requests|python-httpx|httpclient|"
    r"headlesschrome|lighthouse|monitor|pingdom|^$",
    re.IGNORECASE,
)


def is_bot(user_agent: str | None) -> bool:
    """Whether a link visitor's user agent is a crawler, a previewer or a script."""
    return _BOT_AGENT.search(user_agent or "") is not None


def device_hash(keys: MemberKeys, device: str) -> str:
    return lookup_hash(keys.lookup, device, purpose=DEVICE_PURPOSE)


def _load_campaign(session: Session, campaign_id: UUID) -> Campaign:
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise CampaignNotFound(
            f"campaign {campaign_id} does not exist", campaign_id=str(campaign_id)
        )
    return campaign


def _load_enrolment(session: Session, enrolment_id: UUID) -> Enrolment:
    enrolment = repository.get_enrolment(session, enrolment_id)
    if enrolment is None:
        raise EnrolmentNotFound(
            f"enrolment {enrolment_id} does not exist", enrolment_id=str(enrolment_id)
        )
    return enrolment


def to_read(enrolment: Enrolment, *, link_base_url: str) -> EnrolmentRead:
    code = SponsorshipCode(enrolment.code)
    return EnrolmentRead(
        id=enrolment.id,
        campaign_id=enrolment.campaign_id,
        member_id=enrolment.member_id,
        code=code.canonical,
        code_display=code.display,
        link=link_for(code, base_url=link_base_url),
        enrolled_at=enrolment.enrolled_at,
        deadline_at=enrolment.deadline_at,
    )


def _refuse(reason: str, message: str, campaign: Campaign) -> EnrolmentRefused:
    return EnrolmentRefused(message, reason=reason, campaign_id=str(campaign.id))


def enrol(
    *,
    session: Session,
    campaign_id: UUID,
    enrolment_in: EnrolmentCreate,
    keys: MemberKeys,
    clock: Clock,
    link_base_url: str,
) -> EnrolmentRead:
    """Enrol a member (registered on the way if new) in a live campaign of their market.

    Refused with :class:`EnrolmentRefused` and a one-word ``reason`` when the campaign is not
    live (``not_launched``, ``paused``, ``ended``), outside its window (``not_started``,
    ``ended``), of another market (``other_market``) or cannot pay one more prize
    (``out_of_budget``); :class:`AlreadyEnrolled` when the member already is.
    """
    campaign = _load_campaign(session, campaign_id)
    now = clock.now()
    status = CampaignStatus(campaign.status)
    if status is CampaignStatus.DRAFT:
        raise _refuse("not_launched", "this campaign has not been launched yet", campaign)
    if status is CampaignStatus.PAUSED:
        raise _refuse("paused", "this campaign is paused: it takes no new members", campaign)
    if status is CampaignStatus.ENDED or now >= campaign.ends_at:
        raise _refuse("ended", "this campaign has ended", campaign)
    if now < campaign.starts_at:
        raise _refuse("not_started", "this campaign has not started yet", campaign)
    member_in = enrolment_in.member
    if member_in.market != campaign.market:
        raise _refuse(
            "other_market",
            f"this campaign is for members in {campaign.market}, not {member_in.market}",
            campaign,
        )
    budget = campaigns.budget_of(session=session, campaign=campaign)
    if budget.available_minor < campaigns.prize_cost(campaign):
        raise _refuse(
            "out_of_budget",
            "this campaign's prize budget is spent: it takes no new members",
            campaign,
        )
    member = members.register_member(session=session, member_in=member_in, keys=keys, clock=clock)
    existing = repository.get_enrolment_of(session, campaign_id=campaign.id, member_id=member.id)
    if existing is not None:
        raise AlreadyEnrolled(
            "this member is already enrolled in this campaign",
            reason="already_enrolled",
            enrolment_id=str(existing.id),
        )
    code = new_code()
    while repository.code_taken(session, code.canonical):  # about 1 in 2^40 per enrolment
        code = new_code()
    enrolment = Enrolment(
        id=new_id(),
        campaign_id=campaign.id,
        member_id=member.id,
        code=code.canonical,
        enrolled_at=now,
        deadline_at=min(now + timedelta(hours=campaign.enrolment_window_hours), campaign.ends_at),
    )
    sightings = [
        Sighting(
            id=new_id(),
            market=campaign.market,
            kind=kind,
            value_hash=value_hash,
            seen_at=now,
            source=f"enrolment:{enrolment.id}",
        )
        for kind, value_hash in (
            ("user", members.marketplace_user_hash(keys, member_in.marketplace_user_id.reveal())),
            ("email", members.email_hash(keys, member_in.email.reveal())),
        )
    ]
    repository.add(session, enrolment, *sightings)
    return to_read(enrolment, link_base_url=link_base_url)


def find_enrolment_of(
    *, session: Session, campaign_id: UUID, member_id: UUID, link_base_url: str
) -> EnrolmentRead | None:
    """The member's enrolment in the campaign, if they are enrolled."""
    enrolment = repository.get_enrolment_of(session, campaign_id=campaign_id, member_id=member_id)
    return None if enrolment is None else to_read(enrolment, link_base_url=link_base_url)


def enrolments_of_member(
    *, session: Session, member_id: UUID, link_base_url: str
) -> list[EnrolmentRead]:
    """Every enrolment of the member, oldest first (for the member's own pages)."""
    return [
        to_read(enrolment, link_base_url=link_base_url)
        for enrolment in repository.enrolments_of_member(session, member_id)
    ]


def get_enrolment(*, session: Session, enrolment_id: UUID, link_base_url: str) -> EnrolmentRead:
    return to_read(_load_enrolment(session, enrolment_id), link_base_url=link_base_url)


def find_enrolment_by_code(
    *, session: Session, code_text: str, link_base_url: str
) -> EnrolmentRead:
    """The enrolment of a code as typed; :class:`InvalidCode` or :class:`UnknownCode`."""
    code = parse_code(code_text)
    enrolment = repository.get_enrolment_by_code(session, code.canonical)
    if enrolment is None:
        raise UnknownCode("no member shares this sponsorship code", code=code.display)
    return to_read(enrolment, link_base_url=link_base_url)


def _with_token(url: str, token: str) -> str:
    parts = urlsplit(url)
    query = [*parse_qsl(parts.query, keep_blank_values=True), ("parrain_token", token)]
    return urlunsplit(parts._replace(query=urlencode(query)))


def record_click(
    *,
    session: Session,
    code_text: str,
    device: str,
    user_agent: str | None,
    keys: MemberKeys,
    clock: Clock,
) -> ClickResult:
    """A visit to a sponsorship link: at most one click per link and device, none for bots.

    ``device`` identifies the visitor (a first-party cookie, else address and user agent);
    only its keyed hash is stored. The answer carries the deferred deep-link token (the same
    for every visit of that device to that link) and where to send the visitor.
    Raises :class:`InvalidCode` for a mistyped code, :class:`UnknownCode` for one nobody has.
    """
    code = parse_code(code_text)
    enrolment = repository.get_enrolment_by_code(session, code.canonical)
    if enrolment is None:
        raise UnknownCode("no member shares this sponsorship code", code=code.display)
    campaign = _load_campaign(session, enrolment.campaign_id)
    if is_bot(user_agent):
        return ClickResult(
            enrolment_id=enrolment.id,
            campaign_id=campaign.id,
            token=None,
            recorded=False,
            redirect_to=campaign.landing_url,
        )
    candidate = Click(
        id=new_id(),
        enrolment_id=enrolment.id,
        campaign_id=campaign.id,
        device_hash=device_hash(keys, device),
        token=secrets.token_urlsafe(24),
        clicked_at=clock.now(),
    )
    click = repository.insert_click_if_new(session, candidate)
    return ClickResult(
        enrolment_id=enrolment.id,
        campaign_id=campaign.id,
        token=click.token,
        recorded=click.id == candidate.id,
        redirect_to=_with_token(campaign.landing_url, click.token)
        if campaign.landing_url
        else None,
    )


_REWARD_MESSAGES = {
    "held": "Your reward of {amount} is held until {release}, then it is yours.",
    "posted": "Your reward of {amount} is yours.",
    "voided": "Your reward was cancelled: a friend's signup no longer counts.",
    "clawed_back": "Your reward was taken back: a friend's signup no longer counts.",
    "refused": (
        "You reached the goal, but the campaign's prize budget is spent: no reward can be "
        "paid. We are sorry."
    ),
}


def _reward_read(reward: Reward, campaign: Campaign) -> RewardRead:
    locale = campaigns.display_locale(campaign)
    amount = Money(
        campaign.reward_cash_minor + campaign.reward_coupon_minor, campaign.currency
    ).format(locale)
    release = reward.release_at.date().isoformat() if reward.release_at else ""
    return RewardRead(
        id=reward.id,
        status=reward.status,
        reason=reward.reason,
        message=_REWARD_MESSAGES[reward.status].format(amount=amount, release=release),
        cash_minor=campaign.reward_cash_minor,
        coupon_minor=campaign.reward_coupon_minor,
        currency=campaign.currency,
        earned_at=reward.earned_at,
        release_at=reward.release_at,
        settled_at=reward.settled_at,
    )


def progress(
    *, session: Session, enrolment_id: UUID, clock: Clock, link_base_url: str
) -> ProgressRead:
    """A member's progress: friends so far, the deadline, the reward's state."""
    enrolment = _load_enrolment(session, enrolment_id)
    campaign = _load_campaign(session, enrolment.campaign_id)
    friends = repository.friends_of_enrolment(session, enrolment_id)
    reward = repository.current_reward(session, enrolment_id)
    return ProgressRead(
        enrolment=to_read(enrolment, link_base_url=link_base_url),
        campaign_status=campaign.status,
        friends_needed=campaign.friends_needed,
        friends_counted=sum(friend.status == "qualified" for friend in friends),
        friends=[
            FriendRead(
                id=friend.id,
                status=friend.status,
                reason=friend.status_reason,
                signed_up_at=friend.signed_up_at,
                qualified_at=friend.qualified_at,
                counts=friend.status == "qualified",
            )
            for friend in friends
        ],
        deadline_passed=clock.now() > enrolment.deadline_at,
        reward=_reward_read(reward, campaign) if reward is not None else None,
    )


def funnel(*, session: Session, campaign_id: UUID) -> FunnelRead:
    """Clicks → installs → signups → qualified → rewarded, for one campaign."""
    campaign = _load_campaign(session, campaign_id)
    counts = repository.funnel_counts(session, campaign.id)
    return FunnelRead(
        campaign_id=campaign.id,
        enrolments=counts["enrolments"],
        clicks=counts["clicks"],
        installs=counts["installs"],
        signups=counts["signups"],
        qualified=counts["qualified"],
        rewarded=counts["rewards_held"] + counts["rewards_posted"],
        rewards_held=counts["rewards_held"],
        rewards_posted=counts["rewards_posted"],
        rewards_refused=counts["rewards_refused"],
    )
