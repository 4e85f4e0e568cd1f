"""Consent routes for operators: a campaign's data-use declaration (versioned), what the
policy finds in it, and the notices rendered from each version."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query

from parrain.consent import service as consent
from parrain.consent.schemas import (
    DeclarationCreate,
    DeclarationRead,
    NoticeLanguage,
    NoticeRead,
    PolicyReport,
)
from parrain.web.deps import ActorDep, ClockDep, DatabaseDep, SettingsDep
from parrain.web.errors import error_responses

router = APIRouter(prefix="/campaigns", tags=["consent"], responses=error_responses(422, 500))

VersionQuery = Annotated[
    int | None,
    Query(ge=1, le=1_000_000, description="A declaration version; the latest when left out."),
]


@router.put("/{campaign_id}/declaration", responses=error_responses(404, 409, 413))
def declare_data_use(
    campaign_id: UUID,
    declaration_in: DeclarationCreate,
    database: DatabaseDep,
    clock: ClockDep,
    settings: SettingsDep,
    actor: ActorDep,
) -> DeclarationRead:
    """Record the campaign's data-use declaration as a new version, with its notices (EN, FR).

    Sending the same items as the latest version records nothing and returns it. A key that
    is not in fideslang's taxonomy answers 422 ``unknown_taxonomy_key`` naming it; an ended
    campaign answers 409 ``declaration_locked``; a live campaign accepts only a declaration
    that passes the policy (409 ``declaration_refused`` with ``details.findings``).
    """
    limits = consent.limits_from(settings.consent)
    return database.run(
        lambda session: consent.declare(
            session=session,
            campaign_id=campaign_id,
            declaration_in=declaration_in,
            actor=actor,
            clock=clock,
            limits=limits,
        )
    )


@router.get("/{campaign_id}/declaration", responses=error_responses(404))
def get_declaration(
    campaign_id: UUID, database: DatabaseDep, version: VersionQuery = None
) -> DeclarationRead:
    """The campaign's latest declaration (or ``?version=N``), with its notices' hashes."""
    return database.read(
        lambda session: consent.get_declaration(
            session=session, campaign_id=campaign_id, version=version
        )
    )


@router.get("/{campaign_id}/declaration/policy", responses=error_responses(404))
def check_declaration_policy(
    campaign_id: UUID, database: DatabaseDep, settings: SettingsDep
) -> PolicyReport:
    """What the policy finds in the latest declaration, as the launch gate would: one
    finding per problem, each with its code and GDPR article. Launches nothing."""
    limits = consent.limits_from(settings.consent)
    return database.read(
        lambda session: consent.check_policy(
            session=session, campaign_id=campaign_id, limits=limits
        )
    )


@router.get("/{campaign_id}/notices/{language}", responses=error_responses(404))
def get_notice(
    campaign_id: UUID, language: NoticeLanguage, database: DatabaseDep, version: VersionQuery = None
) -> NoticeRead:
    """The notice of the latest declaration (or ``?version=N``) in ``en`` or ``fr``: its text
    exactly as stored, its SHA-256 and its readability score."""
    return database.read(
        lambda session: consent.get_notice(
            session=session, campaign_id=campaign_id, language=language, version=version
        )
    )
