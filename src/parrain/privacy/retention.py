"""The retention sweep: erase the people whose data the programme no longer needs.

A member's personal data is kept to run the programme they took part in (as a member who
enrolled, or as a friend who signed up through a link) for as long as the campaign's
data-use declaration says: the longest ``max_days`` of its programme items, counted from
when parrain recorded the person, as the notice tells them ("for 1 year at most"). It is
never erased while a campaign they take part in still runs, or while a prize is still held
for them (what is owed to them must be paid first): then it goes as soon as both are over.
The sweep erases exactly as an erasure request does (crypto-shredding, ADR 14), with the
reason ``retention`` in the audit chain. Someone who never took part in any campaign is
kept for the configured default (``ConsentSettings.max_days``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.orm import Session

from parrain.campaigns.models import Campaign
from parrain.campaigns.schemas import CampaignStatus
from parrain.consent import service as consent
from parrain.consent.errors import DeclarationNotFound
from parrain.consent.schemas import LegalBasis
from parrain.kit.clock import Clock
from parrain.members.models import Member
from parrain.privacy.service import erase_member
from parrain.referrals import repository as referrals

SWEEP_ACTOR = "system:retention"


@dataclass(frozen=True, slots=True)
class Retention:
    """Until when a member's data is kept, or why it is kept for now (``until`` is None)."""

    until: datetime | None
    reason: str


@dataclass(frozen=True, slots=True)
class SweepReport:
    scanned: int
    erased: list[UUID]
    last_id: UUID | None  # where the next batch starts (keyset), None when the table is done


def _over_at(campaign: Campaign, now: datetime) -> datetime | None:
    """When the campaign stopped running, or None while it still runs."""
    if campaign.status == CampaignStatus.ENDED and campaign.ended_at is not None:
        return campaign.ended_at
    if now >= campaign.ends_at:
        return campaign.ends_at
    return None


def _programme_days(session: Session, campaign_id: UUID, default_days: int) -> int:
    """The longest declared duration of the campaign's programme uses (its latest
    declaration), or ``default_days`` when none is declared."""
    try:
        declaration = consent.get_declaration(session=session, campaign_id=campaign_id)
    except DeclarationNotFound:
        return default_days
    days = [
        item.max_days
        for item in declaration.items
        if item.legal_basis == LegalBasis.PROGRAMME and item.max_days is not None
    ]
    return max(days) if days else default_days


def retention_of(
    session: Session, member: Member, *, now: datetime, default_days: int
) -> Retention:
    """How long ``member``'s personal data is kept (see the module doc)."""
    campaign_ids: set[UUID] = set()
    held = False
    for enrolment in referrals.enrolments_of_member(session, member.id):
        campaign_ids.add(enrolment.campaign_id)
        held |= any(
            r.status == "held" for r in referrals.rewards_of_enrolment(session, enrolment.id)
        )
    friend = referrals.friend_of_member(session, member.id)
    if friend is not None:
        if friend.campaign_id is not None:
            campaign_ids.add(friend.campaign_id)
        held |= any(
            p.status == "held" for p in referrals.welcome_parts_of_friend(session, friend.id)
        )
    if held:
        return Retention(None, "prize_held")
    if not campaign_ids:
        return Retention(member.created_at + timedelta(days=default_days), "no_campaign")
    until = member.created_at
    for campaign_id in sorted(campaign_ids):
        campaign = session.get(Campaign, campaign_id)
        if campaign is None:  # a foreign key guarantees it
            continue
        over = _over_at(campaign, now)
        if over is None:
            return Retention(None, "campaign_running")
        declared = member.created_at + timedelta(
            days=_programme_days(session, campaign_id, default_days)
        )
        until = max(until, declared, over)
    return Retention(until, "declared_duration")


def sweep(
    *,
    session: Session,
    clock: Clock,
    default_days: int,
    after: UUID | None = None,
    limit: int = 200,
) -> SweepReport:
    """Look at up to ``limit`` members not erased yet (by id, after ``after``) and erase those
    whose retention has passed. Call again with ``after=report.last_id`` until it is None."""
    now = clock.now()
    statement = select(Member).where(Member.erased_at.is_(None)).order_by(Member.id).limit(limit)
    if after is not None:
        statement = statement.where(Member.id > after)
    batch = list(session.scalars(statement))
    erased: list[UUID] = []
    for member in batch:
        retention = retention_of(session, member, now=now, default_days=default_days)
        if retention.until is None or retention.until > now:
            continue
        erase_member(
            session=session,
            member_id=member.id,
            actor=SWEEP_ACTOR,
            clock=clock,
            reason="retention",
            details={"kept_until": retention.until.isoformat(), "rule": retention.reason},
        )
        erased.append(member.id)
    last_id = batch[-1].id if len(batch) == limit else None
    return SweepReport(scanned=len(batch), erased=erased, last_id=last_id)
