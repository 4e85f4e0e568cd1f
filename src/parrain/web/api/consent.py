"""Consent routes.

For operators: a campaign's data-use declaration (versioned), what the policy finds in it,
and the notices rendered from each version.

For the marketplace's backend (an integration key with the ``consent`` scope), acting for a
member: record that a notice was shown, the member's grants, refusals and withdrawals
(grants and withdrawals answer with a signed receipt), the member's current state, and the
consent check, one or a batch at a time, before using a member's data.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query

from parrain.config import Settings
from parrain.consent import service as consent
from parrain.consent.schemas import (
    ConsentCheck,
    ConsentCheckBatch,
    ConsentChoice,
    ConsentDecision,
    ConsentDecisions,
    ConsentRecorded,
    ConsentWithdrawal,
    DeclarationCreate,
    DeclarationRead,
    MemberConsentsRead,
    NoticeLanguage,
    NoticeRead,
    NoticeShown,
    NoticeShownCreate,
    PolicyReport,
)
from parrain.web.deps import (
    ActorDep,
    ClockDep,
    ConsentKeyDep,
    DatabaseDep,
    SettingsDep,
    operator,
    run_blocking,
    run_quick_read,
)
from parrain.web.errors import error_responses

router = APIRouter(tags=["consent"], responses=error_responses(422, 500))

VersionQuery = Annotated[
    int | None,
    Query(ge=1, le=1_000_000, description="A declaration version; the latest when left out."),
]


@router.put(
    "/campaigns/{campaign_id}/declaration",
    responses=error_responses(404, 409, 413),
    dependencies=[operator("campaigns.edit")],
)
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


@router.get(
    "/campaigns/{campaign_id}/declaration",
    responses=error_responses(404),
    dependencies=[operator("campaigns.view")],
)
def get_declaration(
    campaign_id: UUID, database: DatabaseDep, version: VersionQuery = None
) -> DeclarationRead:
    """The campaign's latest declaration (or ``?version=N``), with its notices' hashes."""
    return database.read(
        lambda session: consent.get_declaration(
            session=session, campaign_id=campaign_id, version=version
        )
    )


@router.get(
    "/campaigns/{campaign_id}/declaration/policy",
    responses=error_responses(404),
    dependencies=[operator("campaigns.view")],
)
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


@router.get("/campaigns/{campaign_id}/notices/{language}", responses=error_responses(404))
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


# --- For a member, through the marketplace's backend (scope ``consent``) ----------------------

_MEMBER_ERRORS = error_responses(401, 403, 404, 409)


def _issuer(settings: Settings) -> consent.ReceiptIssuer:
    return consent.ReceiptIssuer(
        signing_key=settings.crypto.build_signing_key(),
        notice_base_url=settings.referrals.link_base_url,
    )


@router.post("/members/{member_id}/consents/shown", responses=_MEMBER_ERRORS)
def record_notice_shown(
    member_id: UUID,
    shown_in: NoticeShownCreate,
    database: DatabaseDep,
    clock: ClockDep,
    key: ConsentKeyDep,
) -> NoticeShown:
    """The member is about to see the campaign's optional consents: answers the notice of
    the latest declaration in ``language`` exactly as stored (display exactly this text) and
    records a ``shown`` event with its SHA-256 for every optional item and channel. A grant
    needs this first. Every optional choice starts unticked."""
    return database.run(
        lambda session: consent.show_notice(
            session=session, member_id=member_id, shown_in=shown_in, clock=clock
        )
    )


@router.post("/members/{member_id}/consents/grant", responses=_MEMBER_ERRORS)
def grant_consent(
    member_id: UUID,
    choice: ConsentChoice,
    database: DatabaseDep,
    clock: ClockDep,
    settings: SettingsDep,
    key: ConsentKeyDep,
) -> ConsentRecorded:
    """The member says yes to one optional item on one channel. Needs the notice shown
    first (409 ``notice_not_shown``); programme items are not optional (409
    ``programme_use_not_optional``). Lasts the item's declared maximum duration. Answers the
    event and its signed receipt (keep it: it verifies offline)."""
    issuer = _issuer(settings)
    return database.run(
        lambda session: consent.grant(
            session=session,
            member_id=member_id,
            choice=choice,
            issuer=issuer,
            actor=key.actor,
            clock=clock,
        )
    )


@router.post("/members/{member_id}/consents/refuse", responses=_MEMBER_ERRORS)
def refuse_consent(
    member_id: UUID,
    choice: ConsentChoice,
    database: DatabaseDep,
    clock: ClockDep,
    key: ConsentKeyDep,
) -> ConsentRecorded:
    """The member says no to one optional item on one channel. The reward does not change.
    A consent in force is withdrawn instead (409 ``consent_already_granted``)."""
    return database.run(
        lambda session: consent.refuse(
            session=session, member_id=member_id, choice=choice, actor=key.actor, clock=clock
        )
    )


@router.post("/members/{member_id}/consents/withdraw", responses=_MEMBER_ERRORS)
def withdraw_consent(
    member_id: UUID,
    withdrawal: ConsentWithdrawal,
    database: DatabaseDep,
    clock: ClockDep,
    settings: SettingsDep,
    key: ConsentKeyDep,
) -> ConsentRecorded:
    """The member takes back a yes, in one call: the very next check denies, integrations
    get a ``consent.withdrawn`` webhook, and the answer carries the signed receipt of the
    withdrawal. Nothing granted: 409 ``consent_not_granted``."""
    issuer = _issuer(settings)
    return database.run(
        lambda session: consent.withdraw(
            session=session,
            member_id=member_id,
            withdrawal=withdrawal,
            issuer=issuer,
            actor=key.actor,
            clock=clock,
        )
    )


@router.get("/members/{member_id}/consents", responses=error_responses(401, 403, 404))
def member_consents(
    member_id: UUID, database: DatabaseDep, clock: ClockDep, key: ConsentKeyDep
) -> MemberConsentsRead:
    """The current state of each optional item and channel for the member: ``not_asked``,
    ``granted``, ``renewal_due`` (running out soon: ask again), ``refused``, ``withdrawn``
    or ``expired``."""
    return database.read(
        lambda session: consent.member_consents(session=session, member_id=member_id, clock=clock)
    )


@router.post("/consent/check", responses=error_responses(401, 403))
async def check_consent(
    check_in: ConsentCheck, database: DatabaseDep, clock: ClockDep, key: ConsentKeyDep
) -> ConsentDecision:
    """May this member's data be used for this use, on this channel, in this territory, at
    ``at`` (default now)? ``allow`` or ``deny`` with a stable reason (``consent_granted``,
    ``programme_use``, ``no_consent``, ``refused``, ``withdrawn``, ``expired``,
    ``territory_not_covered``, ``channel_not_covered``, ``member_unknown``,
    ``member_erased``) and the declaration version and notice hash it rests on. Exact at
    the time of the call: a withdrawal is seen by the very next check (the rows it reads may
    come from the process's cache, which a version read with them keeps exact; ADR 25)."""
    # A coroutine that hands only the database work to the quick-read thread (ADR 27).
    # Each statement of a check may see its own snapshot (ADR 25): on PostgreSQL no
    # transaction is opened, which saves two round trips per check.
    decided = await run_quick_read(
        lambda: database.read_statements(
            lambda session: consent.check(session=session, check_in=check_in, clock=clock)
        )
    )
    return decided.read()


@router.post("/consent/check/batch", responses=error_responses(401, 403))
async def check_consents(
    batch: ConsentCheckBatch, database: DatabaseDep, clock: ClockDep, key: ConsentKeyDep
) -> ConsentDecisions:
    """Up to 1,000 checks, answered in order from one database query."""
    return await run_blocking(
        lambda: database.read_statements(
            lambda session: ConsentDecisions(
                results=[
                    decided.read()
                    for decided in consent.check_many(
                        session=session, checks=batch.checks, clock=clock
                    )
                ]
            )
        )
    )
