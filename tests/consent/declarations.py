"""Declarations the consent tests share: the programme's own, an honest advertising consent,
and the clause of DESIGN.md §1 written as a declaration."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from parrain.campaigns import service as campaigns
from parrain.campaigns.schemas import CampaignCreate, CampaignRead, FundingCreate
from parrain.consent.schemas import DeclarationCreate, DeclarationItem, LegalBasis
from parrain.consent.service import programme_declaration
from parrain.db.session import Database
from parrain.kit.clock import Clock
from parrain.kit.ids import new_id

ACTOR = "operator:test"
CONTROLLER = "Example Marketplace Ltd"


def programme_items(market: str = "GB") -> list[DeclarationItem]:
    """Username and photo shown to invited friends, PayPal address to pay: all needed."""
    return list(programme_declaration(controller=CONTROLLER, territories=[market]).items)


def photo_in_ads(**changes: Any) -> DeclarationItem:
    """The member's photo in the marketplace's own adverts: optional, 6 months, named places."""
    fields: dict[str, Any] = {
        "data_category": "user.content.self_image",
        "data_use": "marketing.advertising.first_party",
        "legal_basis": LegalBasis.CONSENT,
        "controllers": [CONTROLLER],
        "channels": ["app", "web", "social"],
        "territories": ["GB"],
        "max_days": 183,
    }
    fields.update(changes)
    return DeclarationItem.model_validate(fields)


def honest(market: str = "GB") -> DeclarationCreate:
    return DeclarationCreate(items=[*programme_items(market), photo_in_ads(territories=[market])])


#: "photo, name likeness, voice, opinions, statements, biographical information, and/or
#: hometown", as fideslang categories.
CLAUSE_CATEGORIES = (
    "user.content.self_image",
    "user.name",
    "user.biometric.voice",
    "user.demographic.political_opinion",
    "user.content.public",
    "user.demographic.profile",
    "user.contact.address.city",
)


def clause_of_the_case() -> DeclarationCreate:
    """Taking part "constitutes consent" to use all of it "for promotional or advertising
    purposes in any media worldwide ... in perpetuity": bundled with the reward, by
    "Sponsor", in any media, worldwide, for ever."""
    return DeclarationCreate(
        items=[
            DeclarationItem(
                data_category=category,
                data_use="marketing.advertising",
                legal_basis=LegalBasis.PROGRAMME,
                controllers=["Sponsor"],
                channels=["any media"],
                territories=["worldwide"],
                max_days=None,
            )
            for category in CLAUSE_CATEGORIES
        ]
    )


def draft_campaign(
    database: Database, clock: Clock, *, funded_minor: int = 100_000, **rules: Any
) -> CampaignRead:
    """A funded draft of the UK programme: only the consent check stands between it and live."""
    fields: dict[str, Any] = {
        "name": f"Cash Rewards UK {new_id()}",
        "market": "GB",
        "currency": "GBP",
        "languages": ["en"],
        "starts_at": clock.now(),
        "ends_at": clock.now() + timedelta(days=30),
        "friends_needed": 5,
        "reward_cash_minor": 2000,
        "reward_coupon_minor": 3000,
    }
    fields.update(rules)
    campaign_in = CampaignCreate.model_validate(fields)

    def work(session: Session) -> CampaignRead:
        created = campaigns.create(
            session=session, campaign_in=campaign_in, actor=ACTOR, clock=clock
        )
        if funded_minor:
            campaigns.fund(
                session=session,
                campaign_id=created.id,
                funding_in=FundingCreate(amount_minor=funded_minor, currency=created.currency),
                actor=ACTOR,
                clock=clock,
            )
        return campaigns.get(session=session, campaign_id=created.id)

    return database.run(work)
