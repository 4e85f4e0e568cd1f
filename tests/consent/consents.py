"""What the consent-event tests share: a live UK programme whose declaration adds one optional
use (the member's photo in the marketplace's adverts), and one call per consent action, each
one transaction as the API runs it."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from parrain.consent import service as consent
from parrain.consent.schemas import (
    ConsentCheck,
    ConsentChoice,
    ConsentDecision,
    ConsentRecorded,
    ConsentWithdrawal,
    DeclarationCreate,
    NoticeShown,
    NoticeShownCreate,
)
from parrain.db.session import Database
from parrain.kit.clock import FrozenClock
from parrain.kit.crypto import SigningKey
from tests.consent.declarations import ACTOR, honest
from tests.referrals.programme import Programme

SIGNING_KEY = SigningKey(bytes(range(32)))
ISSUER = consent.ReceiptIssuer(signing_key=SIGNING_KEY, notice_base_url="https://parrain.example")
PHOTO = "user.content.self_image"
ADS = "marketing.advertising.first_party"
USERNAME = "user.account.username"
OPERATIONS = "essential.service.operations"


def launch(database: Database, clock: FrozenClock, **rules: Any) -> Programme:
    """The Cash Rewards programme, live, declaring the photo-in-adverts consent as well."""
    programme = Programme.launch(database, clock, **rules)
    redeclare(programme, honest())
    return programme


def redeclare(programme: Programme, declaration: DeclarationCreate) -> int:
    declared = programme.database.run(
        lambda s: consent.declare(
            session=s,
            campaign_id=programme.campaign.id,
            declaration_in=declaration,
            actor=ACTOR,
            clock=programme.clock,
        )
    )
    return declared.version


def show(
    database: Database, clock: FrozenClock, member_id: UUID, campaign_id: UUID, language: str = "en"
) -> NoticeShown:
    shown_in = NoticeShownCreate.model_validate(
        {"campaign_id": campaign_id, "language": language, "method": "screen:consents"}
    )
    return database.run(
        lambda s: consent.show_notice(
            session=s, member_id=member_id, shown_in=shown_in, clock=clock
        )
    )


def choice(campaign_id: UUID, **changes: Any) -> ConsentChoice:
    fields: dict[str, Any] = {
        "campaign_id": campaign_id,
        "data_category": PHOTO,
        "data_use": ADS,
        "channel": "social",
        "language": "en",
        "method": "switch:ad_photo:on",
    }
    fields.update(changes)
    return ConsentChoice.model_validate(fields)


def grant(
    database: Database, clock: FrozenClock, member_id: UUID, campaign_id: UUID, **changes: Any
) -> ConsentRecorded:
    choice_in = choice(campaign_id, **changes)
    return database.run(
        lambda s: consent.grant(
            session=s,
            member_id=member_id,
            choice=choice_in,
            issuer=ISSUER,
            actor="api:test",
            clock=clock,
        )
    )


def refuse(
    database: Database, clock: FrozenClock, member_id: UUID, campaign_id: UUID, **changes: Any
) -> ConsentRecorded:
    choice_in = choice(campaign_id, **{"method": "switch:ad_photo:off", **changes})
    return database.run(
        lambda s: consent.refuse(
            session=s, member_id=member_id, choice=choice_in, actor="api:test", clock=clock
        )
    )


def withdraw(
    database: Database, clock: FrozenClock, member_id: UUID, campaign_id: UUID, **changes: Any
) -> ConsentRecorded:
    fields: dict[str, Any] = {
        "campaign_id": campaign_id,
        "data_category": PHOTO,
        "data_use": ADS,
        "channel": "social",
        "method": "settings:ad_photo:withdraw",
    }
    fields.update(changes)
    withdrawal = ConsentWithdrawal.model_validate(fields)
    return database.run(
        lambda s: consent.withdraw(
            session=s,
            member_id=member_id,
            withdrawal=withdrawal,
            issuer=ISSUER,
            actor="api:test",
            clock=clock,
        )
    )


def check_in(member_id: UUID, **changes: Any) -> ConsentCheck:
    fields: dict[str, Any] = {
        "member_id": member_id,
        "data_category": PHOTO,
        "data_use": ADS,
        "channel": "social",
        "territory": "GB",
    }
    fields.update(changes)
    return ConsentCheck.model_validate(fields)


def check(
    database: Database, clock: FrozenClock, member_id: UUID, **changes: Any
) -> ConsentDecision:
    asked = check_in(member_id, **changes)
    return database.read(lambda s: consent.check(session=s, check_in=asked, clock=clock))
