"""Consent events: a member shown a notice, granting, refusing or withdrawing an optional
use of their data, and grants running out. Nothing here commits.

Every event is appended to ``consent_events`` (never changed) and, except ``shown``, moves
the consent's current state in ``consent_grants`` in the same transaction, under that row's
lock, so that the state always says what the last event says. A grant needs the same notice
shown to the member first, lasts the item's declared ``max_days`` and yields a signed
receipt, as does a withdrawal; a withdrawal and an expiry also put a takedown message in the
outbox for integrations (ids and codes only). Only optional items (legal basis ``consent``)
are asked: programme items cannot be granted, refused or withdrawn, and the reward never
depends on an optional one (``referrals``, ``campaigns`` and ``ledger`` never import this).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy.orm import Session

from parrain.audit import service as audit
from parrain.campaigns import repository as campaign_repository
from parrain.campaigns.errors import CampaignNotFound
from parrain.campaigns.models import Campaign
from parrain.consent import receipts, repository, wording
from parrain.consent.errors import (
    ChannelNotDeclared,
    ConsentAlreadyGranted,
    ConsentItemNotFound,
    ConsentItemOpenEnded,
    ConsentMemberErased,
    ConsentNotGranted,
    DeclarationNotFound,
    NoticeNotFound,
    NoticeNotShown,
    ProgrammeUseNotOptional,
)
from parrain.consent.models import ConsentDeclaration, ConsentEvent, ConsentGrant, ConsentNotice
from parrain.consent.schemas import (
    ConsentAction,
    ConsentChoice,
    ConsentEventRead,
    ConsentRecorded,
    ConsentStatus,
    ConsentWithdrawal,
    DeclarationCreate,
    DeclarationItem,
    LegalBasis,
    NoticeLanguage,
    NoticeShown,
    NoticeShownCreate,
    ReceiptFile,
)
from parrain.consent.service.declarations import get_notice
from parrain.kit.clock import Clock
from parrain.kit.crypto import SigningKey
from parrain.kit.ids import new_id
from parrain.members import service as members
from parrain.members.models import Member
from parrain.outbox import service as outbox

#: The ``method`` of the events the expiry job records.
EXPIRY_METHOD = "system:expiry"
EXPIRY_ACTOR = "system:worker"
TOPIC_WITHDRAWN = "consent.withdrawn"
TOPIC_EXPIRED = "consent.expired"


@dataclass(frozen=True, slots=True)
class ReceiptIssuer:
    """What signs receipts: the signing key, and the public base URL under which a receipt's
    ``policyUrl`` names the notice (``{base}/v1/campaigns/{id}/notices/{lang}?version=N``)."""

    signing_key: SigningKey
    notice_base_url: str


@dataclass(frozen=True, slots=True)
class ConsentKey:
    """One consent of a member in a campaign: an item (category, use) on one channel."""

    data_category: str
    data_use: str
    channel: str


# --- Loading and validating -----------------------------------------------------------------


def _member(session: Session, member_id: UUID) -> Member:
    member = members.get_row(session=session, member_id=member_id)  # MemberNotFound
    if member.erased_at is not None:
        raise ConsentMemberErased(
            "the member was erased: no consent is recorded for them any more",
            member_id=str(member_id),
        )
    return member


def _campaign(session: Session, campaign_id: UUID) -> Campaign:
    campaign = campaign_repository.get(session, campaign_id)
    if campaign is None:
        raise CampaignNotFound(
            f"campaign {campaign_id} does not exist", campaign_id=str(campaign_id)
        )
    return campaign


def _latest(session: Session, campaign_id: UUID) -> tuple[Campaign, ConsentDeclaration]:
    campaign = _campaign(session, campaign_id)
    declaration = repository.latest_declaration(session, campaign_id)
    if declaration is None:
        raise DeclarationNotFound(
            "the campaign has no data-use declaration yet", campaign_id=str(campaign_id)
        )
    return campaign, declaration


def items_of(declaration: ConsentDeclaration) -> list[DeclarationItem]:
    return DeclarationCreate.model_validate(declaration.body).items


def _find_item(
    declaration: ConsentDeclaration, data_category: str, data_use: str
) -> DeclarationItem | None:
    for item in items_of(declaration):
        if item.data_category == data_category and item.data_use == data_use:
            return item
    return None


def _optional_item(
    declaration: ConsentDeclaration, data_category: str, data_use: str, channel: str
) -> DeclarationItem:
    """The optional item of the declaration for this category, use and channel, or why not."""
    item = _find_item(declaration, data_category, data_use)
    details = {
        "campaign_id": str(declaration.campaign_id),
        "version": declaration.version,
        "data_category": data_category,
        "data_use": data_use,
    }
    if item is None:
        raise ConsentItemNotFound(
            f"version {declaration.version} of the campaign's declaration has no item "
            f"{data_category} for {data_use}",
            **details,
        )
    if item.legal_basis is LegalBasis.PROGRAMME:
        raise ProgrammeUseNotOptional(
            f"{data_category} for {data_use} is needed to run the programme: it is not an "
            "optional consent, and cannot be granted, refused or withdrawn",
            **details,
        )
    if channel not in item.channels:
        raise ChannelNotDeclared(
            f"{data_category} for {data_use} is not declared for the channel {channel!r}",
            channel=channel,
            **details,
        )
    return item


def _notice(session: Session, declaration: ConsentDeclaration, language: str) -> ConsentNotice:
    found = repository.notice(session, declaration.id, language)
    if found is None:
        raise NoticeNotFound(
            f"version {declaration.version} has no notice in {language}",
            campaign_id=str(declaration.campaign_id),
            version=declaration.version,
            language=language,
        )
    return found


def _state_row(
    session: Session, member_id: UUID, campaign_id: UUID, key: ConsentKey
) -> ConsentGrant | None:
    return repository.grant_for_update(
        session,
        member_id=member_id,
        campaign_id=campaign_id,
        data_category=key.data_category,
        data_use=key.data_use,
        channel=key.channel,
    )


# --- Writing events -------------------------------------------------------------------------


def event_read(event: ConsentEvent) -> ConsentEventRead:
    return ConsentEventRead(
        id=event.id,
        member_id=event.member_id,
        campaign_id=event.campaign_id,
        declaration_version=event.declaration_version,
        data_category=event.data_category,
        data_use=event.data_use,
        channel=event.channel,
        action=ConsentAction(event.action),
        notice_sha256=event.notice_sha256,
        language=NoticeLanguage(event.language),
        method=event.method,
        occurred_at=event.occurred_at,
        expires_at=event.expires_at,
    )


def receipt_file(event: ConsentEvent) -> ReceiptFile | None:
    if event.receipt is None:
        return None
    return ReceiptFile.model_validate_json(event.receipt)


def _event(
    *,
    member_id: UUID,
    declaration: ConsentDeclaration,
    data_category: str,
    data_use: str,
    channel: str,
    action: ConsentAction,
    notice_sha256: str,
    language: str,
    method: str,
    occurred_at: datetime,
    expires_at: datetime | None = None,
    event_id: UUID | None = None,
) -> ConsentEvent:
    return ConsentEvent(
        id=event_id or new_id(),
        member_id=member_id,
        campaign_id=declaration.campaign_id,
        declaration_id=declaration.id,
        declaration_version=declaration.version,
        data_category=data_category,
        data_use=data_use,
        channel=channel,
        action=action.value,
        notice_sha256=notice_sha256,
        language=language,
        method=method,
        occurred_at=occurred_at,
        expires_at=expires_at,
        receipt=None,
    )


def _move_state(
    session: Session,
    row: ConsentGrant | None,
    event: ConsentEvent,
    *,
    status: str,
    territories: Sequence[str],
) -> ConsentGrant:
    """Set the current state to what ``event`` says (insert the row on a first answer)."""
    granted = status == ConsentStatus.GRANTED.value
    values: dict[str, Any] = {
        "status": status,
        "declaration_id": event.declaration_id,
        "declaration_version": event.declaration_version,
        "notice_sha256": event.notice_sha256,
        "language": event.language,
        "territories": sorted(set(territories)),
        "granted_at": event.occurred_at if granted else None,
        "expires_at": event.expires_at if granted else None,
        "updated_at": event.occurred_at,
        "last_event_id": event.id,
    }
    if row is None:
        row = ConsentGrant(
            id=new_id(),
            member_id=event.member_id,
            campaign_id=event.campaign_id,
            data_category=event.data_category,
            data_use=event.data_use,
            channel=event.channel,
            **values,
        )
        repository.add(session, row)
        return row
    for name, value in values.items():
        setattr(row, name, value)
    session.flush()
    return row


def _purpose_words(item: DeclarationItem, language: NoticeLanguage) -> str:
    if item.purpose is not None and language in item.purpose:
        return item.purpose[language]
    return wording.use_words(item.data_use, language)


def _signed_receipt(
    *,
    issuer: ReceiptIssuer,
    event: ConsentEvent,
    action: receipts.ConsentAction,
    campaign: Campaign,
    item: DeclarationItem,
) -> str:
    language = NoticeLanguage(event.language)
    base = issuer.notice_base_url.rstrip("/")
    receipt = receipts.build_receipt(
        event_id=event.id,
        action=action,
        occurred_at=event.occurred_at,
        member_id=event.member_id,
        # A declaration names controllers by legal name only: the receipt carries no
        # invented contact details (see ADR 15).
        controllers=[receipts.Controller(name=name) for name in item.controllers if name],
        jurisdiction=campaign.market,
        language=language.value,
        collection_method=event.method,
        policy_url=(
            f"{base}/v1/campaigns/{campaign.id}/notices/{language.value}"
            f"?version={event.declaration_version}"
        ),
        service=campaign.name,
        purposes=[
            receipts.ReceiptPurpose(
                purpose=_purpose_words(item, language),
                data_use=item.data_use,
                data_categories=(item.data_category,),
            )
        ],
        campaign_id=campaign.id,
        notice_sha256=event.notice_sha256,
        notice_version=event.declaration_version,
        channels=[event.channel],
        territories=list(item.territories),
        expires_at=event.expires_at,
    )
    return receipts.sign_receipt(receipt, issuer.signing_key).to_file().decode("utf-8")


def _audit(session: Session, event: ConsentEvent, *, actor: str, clock: Clock) -> None:
    audit.record(
        session=session,
        actor=actor,
        action=f"consent.{event.action}",
        subject=f"member:{event.member_id}",
        details={
            "event_id": str(event.id),
            "campaign_id": str(event.campaign_id),
            "data_category": event.data_category,
            "data_use": event.data_use,
            "channel": event.channel,
            "notice_sha256": event.notice_sha256,
        },
        clock=clock,
    )


def _takedown(session: Session, event: ConsentEvent, *, topic: str, clock: Clock) -> None:
    outbox.enqueue(
        session=session,
        topic=topic,
        payload={
            "event_id": str(event.id),
            "member_id": str(event.member_id),
            "campaign_id": str(event.campaign_id),
            "data_category": event.data_category,
            "data_use": event.data_use,
            "channel": event.channel,
            f"{event.action}_at": event.occurred_at.isoformat(),
        },
        clock=clock,
    )


# --- Operations -----------------------------------------------------------------------------


def show_notice(
    *, session: Session, member_id: UUID, shown_in: NoticeShownCreate, clock: Clock
) -> NoticeShown:
    """Record that the member is shown the notice of the campaign's latest declaration in
    ``shown_in.language``: one ``shown`` event per optional item and channel, each with the
    notice's hash. Returns the notice exactly as stored, for the app to display."""
    _member(session, member_id)
    _campaign_row, declaration = _latest(session, shown_in.campaign_id)
    notice = _notice(session, declaration, shown_in.language.value)
    now = clock.now()
    events = [
        _event(
            member_id=member_id,
            declaration=declaration,
            data_category=item.data_category,
            data_use=item.data_use,
            channel=channel,
            action=ConsentAction.SHOWN,
            notice_sha256=notice.sha256,
            language=notice.language,
            method=shown_in.method,
            occurred_at=now,
        )
        for item in items_of(declaration)
        if item.legal_basis is LegalBasis.CONSENT
        for channel in sorted(set(item.channels))
    ]
    if events:
        repository.add(session, *events)
    return NoticeShown(
        notice=get_notice(
            session=session,
            campaign_id=shown_in.campaign_id,
            language=shown_in.language,
            version=declaration.version,
        ),
        events=[event_read(event) for event in events],
    )


def grant(
    *,
    session: Session,
    member_id: UUID,
    choice: ConsentChoice,
    issuer: ReceiptIssuer,
    actor: str,
    clock: Clock,
) -> ConsentRecorded:
    """Record the member's yes to one optional item on one channel, against the notice of
    the campaign's latest declaration in ``choice.language``, which must have been shown to
    them first (:class:`NoticeNotShown`). The grant lasts the item's ``max_days``; granting
    again renews it. Returns the event and its signed receipt."""
    _member(session, member_id)
    campaign, declaration = _latest(session, choice.campaign_id)
    channel = choice.channel.value
    item = _optional_item(declaration, choice.data_category, choice.data_use, channel)
    if item.max_days is None:
        raise ConsentItemOpenEnded(
            f"{item.data_category} for {item.data_use} has no maximum duration: parrain "
            "records no open-ended consent (the policy refuses it too)",
            campaign_id=str(campaign.id),
        )
    notice = _notice(session, declaration, choice.language.value)
    key = ConsentKey(item.data_category, item.data_use, channel)
    row = _state_row(session, member_id, campaign.id, key)
    if not repository.was_shown(
        session,
        member_id=member_id,
        declaration_id=declaration.id,
        notice_sha256=notice.sha256,
        data_category=item.data_category,
        data_use=item.data_use,
        channel=channel,
    ):
        raise NoticeNotShown(
            f"the {notice.language} notice of version {declaration.version} (sha256 "
            f"{notice.sha256}) was not shown to this member for this item and channel: show "
            "it first (POST .../consents/shown)",
            notice_sha256=notice.sha256,
            version=declaration.version,
        )
    now = clock.now()
    event = _event(
        member_id=member_id,
        declaration=declaration,
        data_category=item.data_category,
        data_use=item.data_use,
        channel=channel,
        action=ConsentAction.GRANTED,
        notice_sha256=notice.sha256,
        language=notice.language,
        method=choice.method,
        occurred_at=now,
        expires_at=now + timedelta(days=item.max_days),
    )
    event.receipt = _signed_receipt(
        issuer=issuer,
        event=event,
        action=receipts.ConsentAction.GRANTED,
        campaign=campaign,
        item=item,
    )
    repository.add(session, event)
    _move_state(session, row, event, status="granted", territories=item.territories)
    _audit(session, event, actor=actor, clock=clock)
    return ConsentRecorded(event=event_read(event), receipt=receipt_file(event))


def refuse(
    *, session: Session, member_id: UUID, choice: ConsentChoice, actor: str, clock: Clock
) -> ConsentRecorded:
    """Record the member's no to one optional item on one channel (nothing to prove: a no
    needs no prior notice). A consent currently granted is withdrawn, not refused
    (:class:`ConsentAlreadyGranted`)."""
    _member(session, member_id)
    campaign, declaration = _latest(session, choice.campaign_id)
    channel = choice.channel.value
    item = _optional_item(declaration, choice.data_category, choice.data_use, channel)
    notice = _notice(session, declaration, choice.language.value)
    row = _state_row(
        session, member_id, campaign.id, ConsentKey(item.data_category, item.data_use, channel)
    )
    now = clock.now()
    if _in_force(row, now):
        raise ConsentAlreadyGranted(
            "this consent is granted: withdraw it instead (the withdrawal is what tells "
            "integrations to take the data down)",
            campaign_id=str(campaign.id),
        )
    event = _event(
        member_id=member_id,
        declaration=declaration,
        data_category=item.data_category,
        data_use=item.data_use,
        channel=channel,
        action=ConsentAction.REFUSED,
        notice_sha256=notice.sha256,
        language=notice.language,
        method=choice.method,
        occurred_at=now,
    )
    repository.add(session, event)
    _move_state(session, row, event, status="refused", territories=item.territories)
    _audit(session, event, actor=actor, clock=clock)
    return ConsentRecorded(event=event_read(event), receipt=None)


def _in_force(row: ConsentGrant | None, now: datetime) -> bool:
    return (
        row is not None
        and row.status == ConsentStatus.GRANTED.value
        and row.expires_at is not None
        and now < row.expires_at
    )


def withdraw(
    *,
    session: Session,
    member_id: UUID,
    withdrawal: ConsentWithdrawal,
    issuer: ReceiptIssuer,
    actor: str,
    clock: Clock,
) -> ConsentRecorded:
    """Take back a granted consent, in one call: the state says ``withdrawn`` for the very
    next check, a ``consent.withdrawn`` takedown message goes to the outbox, and the member
    gets a signed receipt of the withdrawal. The event points at the notice the grant did."""
    _member(session, member_id)
    campaign = _campaign(session, withdrawal.campaign_id)
    channel = withdrawal.channel.value
    key = ConsentKey(withdrawal.data_category, withdrawal.data_use, channel)
    row = _state_row(session, member_id, campaign.id, key)
    now = clock.now()
    if row is None or not _in_force(row, now):
        latest = repository.latest_declaration(session, campaign.id)
        if latest is not None and row is None:
            _optional_item(latest, key.data_category, key.data_use, channel)  # why, if it can
        raise ConsentNotGranted(
            "this consent is not granted: there is nothing to withdraw",
            campaign_id=str(campaign.id),
            status=row.status if row is not None else "not_asked",
        )
    declaration = repository.declaration_by_id(session, row.declaration_id)
    item = (
        _find_item(declaration, key.data_category, key.data_use)
        if declaration is not None
        else None
    )
    if declaration is None or item is None:  # a grant always points at its declared item
        raise ConsentItemNotFound("the granted item's declaration is missing")
    event = _event(
        member_id=member_id,
        declaration=declaration,
        data_category=key.data_category,
        data_use=key.data_use,
        channel=channel,
        action=ConsentAction.WITHDRAWN,
        notice_sha256=row.notice_sha256,
        language=row.language,
        method=withdrawal.method,
        occurred_at=now,
    )
    event.receipt = _signed_receipt(
        issuer=issuer,
        event=event,
        action=receipts.ConsentAction.WITHDRAWN,
        campaign=campaign,
        item=item,
    )
    repository.add(session, event)
    _move_state(session, row, event, status="withdrawn", territories=row.territories)
    _takedown(session, event, topic=TOPIC_WITHDRAWN, clock=clock)
    _audit(session, event, actor=actor, clock=clock)
    return ConsentRecorded(event=event_read(event), receipt=receipt_file(event))


def expire_due(*, session: Session, clock: Clock, limit: int = 200) -> int:
    """Turn up to ``limit`` grants whose expiry has passed into ``expired`` events, each
    with a ``consent.expired`` takedown message; return how many. (A check already denies
    a grant past its expiry; this records it and tells integrations.)"""
    now = clock.now()
    due = repository.due_grants(session, now=now, limit=limit)
    expired: list[str] = []
    for row in due:
        declaration = repository.declaration_by_id(session, row.declaration_id)
        if declaration is None:  # pragma: no cover - a foreign key keeps it
            continue
        event = _event(
            member_id=row.member_id,
            declaration=declaration,
            data_category=row.data_category,
            data_use=row.data_use,
            channel=row.channel,
            action=ConsentAction.EXPIRED,
            notice_sha256=row.notice_sha256,
            language=row.language,
            method=EXPIRY_METHOD,
            occurred_at=now,
        )
        repository.add(session, event)
        _move_state(session, row, event, status="expired", territories=row.territories)
        _takedown(session, event, topic=TOPIC_EXPIRED, clock=clock)
        expired.append(str(event.id))
    if expired:
        audit.record(
            session=session,
            actor=EXPIRY_ACTOR,
            action="consent.expired",
            subject="consent",
            details={"count": len(expired), "event_ids": expired},
            clock=clock,
        )
    return len(expired)
