"""The lifecycle (``draft -> live <-> paused -> ended``) behind the launch gate, and the
gate's own checks of campaigns: a funded budget and an open time window."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy.orm import Session

from parrain.audit import service as audit
from parrain.campaigns.errors import (
    IllegalTransition,
    LaunchGateFailed,
)
from parrain.campaigns.gate import GateFinding, register_launch_check, run_launch_gate
from parrain.campaigns.models import Campaign
from parrain.campaigns.schemas import (
    CampaignRead,
    CampaignStatus,
)
from parrain.campaigns.service.common import budget_of, display_locale, load, subject, to_read
from parrain.campaigns.service.prizes import prize_cost
from parrain.kit.clock import Clock
from parrain.kit.money import Money

#: The lifecycle: which status each action leads from and to.
TRANSITIONS: dict[str, tuple[frozenset[CampaignStatus], CampaignStatus]] = {
    "launch": (frozenset({CampaignStatus.DRAFT}), CampaignStatus.LIVE),
    "pause": (frozenset({CampaignStatus.LIVE}), CampaignStatus.PAUSED),
    "resume": (frozenset({CampaignStatus.PAUSED}), CampaignStatus.LIVE),
    "end": (frozenset({CampaignStatus.LIVE, CampaignStatus.PAUSED}), CampaignStatus.ENDED),
}


_PAST_TENSE = {"launch": "launched", "pause": "paused", "resume": "resumed", "end": "ended"}


def _transition(
    *, session: Session, campaign_id: UUID, action: str, actor: str, clock: Clock
) -> CampaignRead:
    campaign = load(session, campaign_id, for_update=True)
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
        subject=subject(campaign_id),
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
            "budget_funded",
            f"the prize budget holds {held}, less than one prize ({prize})",
            {
                "held_minor": budget.available_minor,
                "prize_minor": needed,
                "currency": campaign.currency,
            },
        )
    ]


def _window_open(_session: Session, campaign: Campaign, clock: Clock) -> list[GateFinding]:
    if clock.now() < campaign.ends_at:
        return []
    return [GateFinding("window_open", "the campaign's time window has already closed")]


register_launch_check("budget_funded", _budget_funded)


register_launch_check("window_open", _window_open)
