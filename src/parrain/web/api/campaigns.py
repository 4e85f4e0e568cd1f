"""Campaign routes: drafts, funding and the lifecycle ``draft → live ⇄ paused → ended``."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter

from parrain.campaigns import service as campaigns
from parrain.campaigns.schemas import (
    CampaignCreate,
    CampaignRead,
    CampaignStatus,
    CampaignUpdate,
    FundingCreate,
)
from parrain.web.deps import ActorDep, ClockDep, DatabaseDep, operator
from parrain.web.errors import error_responses

router = APIRouter(
    prefix="/campaigns", tags=["campaigns"], responses=error_responses(401, 403, 422, 500)
)


@router.post(
    "",
    status_code=201,
    responses=error_responses(409, 413),
    dependencies=[operator("campaigns.edit")],
)
def create_campaign(
    campaign_in: CampaignCreate, database: DatabaseDep, clock: ClockDep, actor: ActorDep
) -> CampaignRead:
    """Create a draft campaign with its budget, cash-payable and coupon-liability accounts."""
    return database.run(
        lambda session: campaigns.create(
            session=session, campaign_in=campaign_in, actor=actor, clock=clock
        )
    )


@router.get("", dependencies=[operator("campaigns.view")])
def list_campaigns(
    database: DatabaseDep, status: CampaignStatus | None = None
) -> list[CampaignRead]:
    """Every campaign, or those with the given status."""
    return database.read(lambda session: campaigns.list_campaigns(session=session, status=status))


@router.get(
    "/{campaign_id}", responses=error_responses(404), dependencies=[operator("campaigns.view")]
)
def get_campaign(campaign_id: UUID, database: DatabaseDep) -> CampaignRead:
    return database.read(lambda session: campaigns.get(session=session, campaign_id=campaign_id))


@router.patch(
    "/{campaign_id}",
    responses=error_responses(404, 409, 413),
    dependencies=[operator("campaigns.edit")],
)
def update_campaign(
    campaign_id: UUID,
    campaign_in: CampaignUpdate,
    database: DatabaseDep,
    clock: ClockDep,
    actor: ActorDep,
) -> CampaignRead:
    """Change a draft; fields left out keep their value. Other statuses answer 409."""
    return database.run(
        lambda session: campaigns.update(
            session=session,
            campaign_id=campaign_id,
            campaign_in=campaign_in,
            actor=actor,
            clock=clock,
        )
    )


@router.post(
    "/{campaign_id}/funding",
    responses=error_responses(404, 409, 413),
    dependencies=[operator("campaigns.edit")],
)
def fund_campaign(
    campaign_id: UUID,
    funding_in: FundingCreate,
    database: DatabaseDep,
    clock: ClockDep,
    actor: ActorDep,
) -> CampaignRead:
    """Move money from the operator's funding account into the prize budget.

    Send a ``funding_id`` to make retries safe: the same id funds once.
    """
    return database.run(
        lambda session: campaigns.fund(
            session=session,
            campaign_id=campaign_id,
            funding_in=funding_in,
            actor=actor,
            clock=clock,
        )
    )


@router.post(
    "/{campaign_id}/launch",
    responses=error_responses(404, 409),
    dependencies=[operator("campaigns.lifecycle")],
)
def launch_campaign(
    campaign_id: UUID, database: DatabaseDep, clock: ClockDep, actor: ActorDep
) -> CampaignRead:
    """Put a draft live. A failed launch gate answers 409 ``launch_gate_failed`` with
    ``details.findings``."""
    return database.run(
        lambda session: campaigns.launch(
            session=session, campaign_id=campaign_id, actor=actor, clock=clock
        )
    )


@router.post(
    "/{campaign_id}/pause",
    responses=error_responses(404, 409),
    dependencies=[operator("campaigns.lifecycle")],
)
def pause_campaign(
    campaign_id: UUID, database: DatabaseDep, clock: ClockDep, actor: ActorDep
) -> CampaignRead:
    """Stop new enrolments and new credit; what members already earned is honoured."""
    return database.run(
        lambda session: campaigns.pause(
            session=session, campaign_id=campaign_id, actor=actor, clock=clock
        )
    )


@router.post(
    "/{campaign_id}/resume",
    responses=error_responses(404, 409),
    dependencies=[operator("campaigns.lifecycle")],
)
def resume_campaign(
    campaign_id: UUID, database: DatabaseDep, clock: ClockDep, actor: ActorDep
) -> CampaignRead:
    """Put a paused campaign live again; it passes the launch gate again first."""
    return database.run(
        lambda session: campaigns.resume(
            session=session, campaign_id=campaign_id, actor=actor, clock=clock
        )
    )


@router.post(
    "/{campaign_id}/end",
    responses=error_responses(404, 409),
    dependencies=[operator("campaigns.lifecycle")],
)
def end_campaign(
    campaign_id: UUID, database: DatabaseDep, clock: ClockDep, actor: ActorDep
) -> CampaignRead:
    """End a live or paused campaign for good."""
    return database.run(
        lambda session: campaigns.end(
            session=session, campaign_id=campaign_id, actor=actor, clock=clock
        )
    )
