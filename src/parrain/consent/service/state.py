"""A member's consents as they stand: per optional item and channel, ``not_asked``,
``granted``, ``renewal_due`` (within :data:`RENEWAL_DAYS` of expiry), ``refused``,
``withdrawn`` or ``expired``; and their history, for their export. Read-only."""

from __future__ import annotations

from datetime import datetime, timedelta
from uuid import UUID

from sqlalchemy.orm import Session

from parrain.consent import repository
from parrain.consent.models import ConsentEvent, ConsentGrant
from parrain.consent.schemas import (
    ConsentStateRead,
    ConsentStatus,
    LegalBasis,
    MemberConsentsRead,
)
from parrain.consent.service.events import ConsentKey, items_of
from parrain.kit.clock import Clock
from parrain.members import service as members

#: ``renewal_due`` starts this many days before a grant runs out.
RENEWAL_DAYS = 14


def _state(
    row: ConsentGrant | None,
    *,
    campaign_id: UUID,
    key: ConsentKey,
    now: datetime,
    renewal_days: int,
) -> ConsentStateRead:
    if row is None:
        return ConsentStateRead(
            campaign_id=campaign_id,
            data_category=key.data_category,
            data_use=key.data_use,
            channel=key.channel,
            status=ConsentStatus.NOT_ASKED,
            renewal_due=False,
            declaration_version=None,
            notice_sha256=None,
            granted_at=None,
            expires_at=None,
        )
    status = ConsentStatus(row.status)
    if status is ConsentStatus.GRANTED and row.expires_at is not None:
        if now >= row.expires_at:
            status = ConsentStatus.EXPIRED
        elif row.expires_at - now <= timedelta(days=renewal_days):
            status = ConsentStatus.RENEWAL_DUE
    return ConsentStateRead(
        campaign_id=campaign_id,
        data_category=key.data_category,
        data_use=key.data_use,
        channel=key.channel,
        status=status,
        renewal_due=status in (ConsentStatus.RENEWAL_DUE, ConsentStatus.EXPIRED),
        declaration_version=row.declaration_version,
        notice_sha256=row.notice_sha256,
        granted_at=row.granted_at,
        expires_at=row.expires_at,
    )


def member_consents(
    *, session: Session, member_id: UUID, clock: Clock, renewal_days: int = RENEWAL_DAYS
) -> MemberConsentsRead:
    """The current state of every optional item on every channel of the campaigns the member
    is enrolled in or answered (latest declarations), and of every consent they answered:
    ``not_asked`` until a first answer, ``renewal_due`` within ``renewal_days`` of expiry."""
    members.get_row(session=session, member_id=member_id)  # MemberNotFound
    now = clock.now()
    rows = {
        (row.campaign_id, ConsentKey(row.data_category, row.data_use, row.channel)): row
        for row in repository.grants_of_member(session, member_id)
    }
    campaigns = sorted(
        set(repository.enrolled_campaigns(session, member_id)) | {c for c, _k in rows}
    )
    keys: list[tuple[UUID, ConsentKey]] = []
    for campaign_id in campaigns:
        declaration = repository.latest_declaration(session, campaign_id)
        if declaration is None:
            continue
        for item in items_of(declaration):
            if item.legal_basis is LegalBasis.CONSENT:
                keys.extend(
                    (campaign_id, ConsentKey(item.data_category, item.data_use, channel))
                    for channel in sorted(set(item.channels))
                )
    keys.extend(key for key in rows if key not in set(keys))  # items no longer declared
    return MemberConsentsRead(
        member_id=member_id,
        renewal_days=renewal_days,
        items=[
            _state(
                rows.get((campaign_id, key)),
                campaign_id=campaign_id,
                key=key,
                now=now,
                renewal_days=renewal_days,
            )
            for campaign_id, key in keys
        ],
    )


def history(*, session: Session, member_id: UUID) -> list[ConsentEvent]:
    """Every consent event of the member, oldest first (for their export)."""
    return repository.events_of_member(session, member_id)
