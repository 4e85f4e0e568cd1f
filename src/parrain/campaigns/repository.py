"""Every query of campaigns."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import select
from sqlalchemy.orm import Session

from parrain.campaigns.models import Campaign


def get(session: Session, campaign_id: UUID, *, for_update: bool = False) -> Campaign | None:
    statement = select(Campaign).where(Campaign.id == campaign_id)
    if for_update:
        statement = statement.with_for_update()
    return session.scalars(statement).one_or_none()


def get_by_name(session: Session, name: str) -> Campaign | None:
    return session.scalars(select(Campaign).where(Campaign.name == name)).one_or_none()


def list_campaigns(session: Session, *, status: str | None = None) -> list[Campaign]:
    statement = select(Campaign).order_by(Campaign.created_at, Campaign.id)
    if status is not None:
        statement = statement.where(Campaign.status == status)
    return list(session.scalars(statement))


def add(session: Session, campaign: Campaign) -> None:
    session.add(campaign)
    session.flush()
