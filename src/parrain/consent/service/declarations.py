"""Data-use declarations, their policy check and their notices. Nothing here commits.

``declare`` records a new version of a campaign's declaration (the same items as the latest
version record nothing), renders its notice in every language, stores each with its SHA-256
and appends the change to the audit log. Versions and notices are never changed afterwards.

The launch gate's ``consent_declaration`` check is registered when this module is imported:
the API and the CLI import it, and a campaign launches or resumes only with a declaration
that passes :mod:`parrain.consent.policy`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from sqlalchemy.orm import Session

from parrain.audit import service as audit
from parrain.campaigns import repository as campaign_repository
from parrain.campaigns import service as _campaign_checks  # noqa: F401 (see the end)
from parrain.campaigns.errors import CampaignNotFound
from parrain.campaigns.gate import GateFinding, register_launch_check
from parrain.campaigns.models import Campaign
from parrain.campaigns.schemas import CampaignStatus
from parrain.config import ConsentSettings
from parrain.consent import notices, policy, repository, taxonomy
from parrain.consent.errors import (
    DeclarationLocked,
    DeclarationNotFound,
    DeclarationRefused,
    NoticeNotFound,
    UnknownTaxonomyKey,
)
from parrain.consent.models import ConsentDeclaration, ConsentNotice
from parrain.consent.schemas import (
    DeclarationCreate,
    DeclarationItem,
    DeclarationRead,
    LegalBasis,
    NoticeLanguage,
    NoticeRead,
    NoticeSummary,
    PolicyFindingRead,
    PolicyReport,
    ReadabilityRead,
)
from parrain.kit.clock import Clock
from parrain.kit.ids import new_id

GATE_CHECK = "consent_declaration"


def limits_from(settings: ConsentSettings) -> policy.PolicyLimits:
    return policy.PolicyLimits(
        max_advertising_days=settings.max_advertising_days, max_days=settings.max_days
    )


def configured_limits() -> policy.PolicyLimits:
    """The limits ``PARRAIN_CONSENT_*`` sets, read now (the launch gate has no settings)."""
    return limits_from(ConsentSettings())


def _subject(campaign_id: UUID) -> str:
    return f"campaign:{campaign_id}"


def _campaign(session: Session, campaign_id: UUID, *, for_update: bool = False) -> Campaign:
    """The campaign, locked when ``for_update``: a declaration and a launch of the same
    campaign then take turns, so the gate never reads a version about to be replaced."""
    campaign = campaign_repository.get(session, campaign_id, for_update=for_update)
    if campaign is None:
        raise CampaignNotFound(
            f"campaign {campaign_id} does not exist", campaign_id=str(campaign_id)
        )
    return campaign


def _items_of(declaration: ConsentDeclaration) -> list[DeclarationItem]:
    return DeclarationCreate.model_validate(declaration.body).items


def _summary(notice: ConsentNotice) -> NoticeSummary:
    return NoticeSummary(
        language=NoticeLanguage(notice.language),
        sha256=notice.sha256,
        readability=ReadabilityRead(
            score=notice.readability_score,
            formula=notice.readability_formula,
        ),
    )


def _read(session: Session, declaration: ConsentDeclaration) -> DeclarationRead:
    return DeclarationRead(
        id=declaration.id,
        campaign_id=declaration.campaign_id,
        version=declaration.version,
        created_at=declaration.created_at,
        items=_items_of(declaration),
        notices=[_summary(n) for n in repository.notices_of(session, declaration.id)],
    )


def _check_taxonomy(items: Sequence[DeclarationItem]) -> None:
    unknown: list[dict[str, Any]] = []
    for number, item in enumerate(items, start=1):
        pairs: tuple[tuple[taxonomy.TaxonomyKind, str], ...] = (
            ("data_category", item.data_category),
            ("data_use", item.data_use),
        )
        for field, key in pairs:
            problem = taxonomy.problem_with(field, key)
            if problem is not None:
                unknown.append({"item": number, "field": field, "key": key, "problem": problem})
    if unknown:
        raise UnknownTaxonomyKey(
            "; ".join(f"item {u['item']} {u['field']}: {u['problem']}" for u in unknown),
            keys=unknown,
        )


def _findings(
    items: Sequence[DeclarationItem] | None, limits: policy.PolicyLimits
) -> list[PolicyFindingRead]:
    return [
        PolicyFindingRead(
            code=finding.code,
            message=finding.message,
            article=finding.article,
            items=list(finding.items),
        )
        for finding in policy.evaluate(items, limits)
    ]


def declare(
    *,
    session: Session,
    campaign_id: UUID,
    declaration_in: DeclarationCreate,
    actor: str,
    clock: Clock,
    limits: policy.PolicyLimits | None = None,
) -> DeclarationRead:
    """Record ``declaration_in`` as the campaign's next version, with its notices.

    The same items as the latest version record nothing and return it. Refused with
    :class:`UnknownTaxonomyKey` when a key is not in fideslang's taxonomy,
    :class:`DeclarationLocked` once the campaign has ended, and
    :class:`DeclarationRefused` when the campaign is live and the new declaration does not
    pass the policy (a paused campaign passes the gate again when it resumes).
    """
    campaign = _campaign(session, campaign_id, for_update=True)
    items = declaration_in.items
    _check_taxonomy(items)
    if campaign.status == CampaignStatus.ENDED:
        raise DeclarationLocked(
            "the campaign has ended: its declaration is kept as it was",
            campaign_id=str(campaign_id),
        )
    latest = repository.latest_declaration(session, campaign_id)
    body = declaration_in.model_dump(mode="json")
    if latest is not None and latest.body == body:
        return _read(session, latest)
    if campaign.status == CampaignStatus.LIVE:
        findings = _findings(items, limits or configured_limits())
        if findings:
            raise DeclarationRefused(
                "the campaign is live: its declaration can only be replaced by one that "
                "passes the policy: " + "; ".join(f.message for f in findings),
                findings=[f.model_dump() for f in findings],
            )
    return _record(
        session=session,
        campaign=campaign,
        items=items,
        body=body,
        actor=actor,
        clock=clock,
        version=(latest.version + 1) if latest is not None else 1,
    )


def _record(
    *,
    session: Session,
    campaign: Campaign,
    items: Sequence[DeclarationItem],
    body: dict[str, Any],
    version: int,
    actor: str,
    clock: Clock,
) -> DeclarationRead:
    now = clock.now()
    declaration = ConsentDeclaration(
        id=new_id(), campaign_id=campaign.id, version=version, body=body, created_at=now
    )
    repository.add(session, declaration)
    rendered = [
        notices.render(
            campaign_name=campaign.name,
            market=campaign.market,
            version=version,
            items=items,
            language=language,
        )
        for language in notices.LANGUAGES
    ]
    repository.add(
        session,
        *(
            ConsentNotice(
                id=new_id(),
                declaration_id=declaration.id,
                language=notice.language.value,
                content=notice.content,
                sha256=notice.sha256,
                readability_score=notice.readability_score,
                readability_formula=notice.readability_formula,
                rendered_at=now,
            )
            for notice in rendered
        ),
    )
    audit.record(
        session=session,
        actor=actor,
        action="consent.declared",
        subject=_subject(campaign.id),
        details={
            "declaration_id": str(declaration.id),
            "version": version,
            "items": [
                {
                    "data_category": item.data_category,
                    "data_use": item.data_use,
                    "legal_basis": item.legal_basis.value,
                }
                for item in items
            ],
            "notices": {notice.language.value: notice.sha256 for notice in rendered},
        },
        clock=clock,
    )
    return _read(session, declaration)


def _declaration(session: Session, campaign_id: UUID, version: int | None) -> ConsentDeclaration:
    _campaign(session, campaign_id)  # CampaignNotFound first
    if version is None:
        found = repository.latest_declaration(session, campaign_id)
        if found is None:
            raise DeclarationNotFound(
                "the campaign has no data-use declaration yet", campaign_id=str(campaign_id)
            )
        return found
    found = repository.declaration_version(session, campaign_id, version)
    if found is None:
        raise DeclarationNotFound(
            f"the campaign has no declaration version {version}",
            campaign_id=str(campaign_id),
            version=version,
        )
    return found


def latest_version(*, session: Session, campaign_id: UUID) -> int | None:
    """The campaign's latest declaration version, ``None`` before the first."""
    latest = repository.latest_declaration(session, campaign_id)
    return latest.version if latest is not None else None


def get_declaration(
    *, session: Session, campaign_id: UUID, version: int | None = None
) -> DeclarationRead:
    """The latest version of the campaign's declaration, or the given one."""
    return _read(session, _declaration(session, campaign_id, version))


def check_policy(
    *, session: Session, campaign_id: UUID, limits: policy.PolicyLimits
) -> PolicyReport:
    """What the policy finds in the campaign's latest declaration, without launching."""
    _campaign(session, campaign_id)
    latest = repository.latest_declaration(session, campaign_id)
    findings = _findings(_items_of(latest) if latest is not None else None, limits)
    return PolicyReport(
        campaign_id=campaign_id,
        version=latest.version if latest is not None else None,
        passes=not findings,
        findings=findings,
    )


def find_declaration(*, session: Session, declaration_id: UUID) -> DeclarationRead | None:
    """One declaration version by its id, with its notices' hashes; None if there is none."""
    found = repository.declaration_by_id(session, declaration_id)
    return _read(session, found) if found is not None else None


def list_declarations(*, session: Session) -> list[DeclarationRead]:
    """Every declaration version of every campaign with its notices' hashes (the auditor's
    register of what members were shown), by campaign, then version."""
    return [_read(session, declaration) for declaration in repository.all_declarations(session)]


def get_notice(
    *,
    session: Session,
    campaign_id: UUID,
    language: NoticeLanguage,
    version: int | None = None,
) -> NoticeRead:
    """The notice of the latest declaration version (or the given one) in ``language``."""
    declaration = _declaration(session, campaign_id, version)
    notice = repository.notice(session, declaration.id, language.value)
    if notice is None:
        raise NoticeNotFound(
            f"version {declaration.version} has no notice in {language.value}",
            campaign_id=str(campaign_id),
            version=declaration.version,
            language=language.value,
        )
    return NoticeRead(
        campaign_id=campaign_id,
        declaration_id=declaration.id,
        version=declaration.version,
        language=language,
        content=notice.content,
        sha256=notice.sha256,
        readability=_summary(notice).readability,
        rendered_at=notice.rendered_at,
    )


#: How long the programme's own data is kept or shown, in days, unless told otherwise.
PROGRAMME_DISPLAY_DAYS = 183
PROGRAMME_PAYMENT_DAYS = 365


def programme_declaration(*, controller: str, territories: Sequence[str]) -> DeclarationCreate:
    """What running a Cash Rewards programme needs, declared as such: the member's username
    and profile photo shown to the friends they invite, and their PayPal address to pay them.
    Nothing optional: add any optional use (an advert) as its own ``consent`` item."""
    shown = {
        NoticeLanguage.EN: "shown to the friends you invite, so they know the invitation is "
        "from you",
        NoticeLanguage.FR: "montrée aux amis que vous invitez, pour qu'ils sachent que "
        "l'invitation vient de vous",
    }
    common: dict[str, Any] = {
        "legal_basis": LegalBasis.PROGRAMME,
        "controllers": [controller],
        "territories": list(territories),
    }
    return DeclarationCreate(
        items=[
            DeclarationItem(
                data_category="user.account.username",
                data_use="essential.service.operations",
                channels=["app", "web"],
                max_days=PROGRAMME_DISPLAY_DAYS,
                purpose={
                    NoticeLanguage.EN: shown[NoticeLanguage.EN],
                    NoticeLanguage.FR: "montré aux amis que vous invitez, pour qu'ils sachent "
                    "que l'invitation vient de vous",
                },
                **common,
            ),
            DeclarationItem(
                data_category="user.content.self_image",
                data_use="essential.service.operations",
                channels=["app", "web"],
                max_days=PROGRAMME_DISPLAY_DAYS,
                purpose=shown,
                **common,
            ),
            DeclarationItem(
                data_category="user.contact.email",
                data_use="essential.service.payment_processing",
                channels=["payment_provider"],
                max_days=PROGRAMME_PAYMENT_DAYS,
                purpose={
                    NoticeLanguage.EN: "the one your PayPal account uses, sent to PayPal to "
                    "pay the cash part of your reward",
                    NoticeLanguage.FR: "celle de votre compte PayPal, transmise à PayPal pour "
                    "vous verser la part en argent de votre récompense",
                },
                **common,
            ),
        ]
    )


def declare_programme_defaults(
    *, session: Session, campaign_id: UUID, controller: str, actor: str, clock: Clock
) -> DeclarationRead:
    """Declare :func:`programme_declaration` for the campaign's market (a no-op when that is
    already its latest version): what the demo, the benchmarks and the tests launch with."""
    campaign = _campaign(session, campaign_id)
    return declare(
        session=session,
        campaign_id=campaign_id,
        declaration_in=programme_declaration(controller=controller, territories=[campaign.market]),
        actor=actor,
        clock=clock,
    )


def _declaration_passes_policy(
    session: Session, campaign: Campaign, _clock: Clock
) -> list[GateFinding]:
    latest = repository.latest_declaration(session, campaign.id)
    items = _items_of(latest) if latest is not None else None
    findings = policy.evaluate(items, configured_limits())
    return [GateFinding(f"{GATE_CHECK}.{finding.code}", finding.message) for finding in findings]


# The campaign's own checks (a funded budget, an open window) come first in the gate's
# findings, whichever module a process imports first: the campaigns service, imported
# above, has registered them.
register_launch_check(GATE_CHECK, _declaration_passes_policy)
