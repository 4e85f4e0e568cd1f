"""The demo's two live campaigns (UK in GBP, France in EUR), funded, declared and launched."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Final
from uuid import UUID

from sqlalchemy.orm import Session

from parrain.campaigns import service as campaigns
from parrain.campaigns.schemas import CampaignCreate, CampaignRead, CampaignStatus, FundingCreate
from parrain.consent import service as consent
from parrain.consent.schemas import DeclarationCreate, DeclarationItem, LegalBasis, NoticeLanguage
from parrain.kit.clock import Clock
from parrain.kit.ids import derived_id
from parrain.kit.money import Money


@dataclass(frozen=True, slots=True)
class DemoCampaign:
    """One seeded campaign: £50 (or 50 €) = 20 cash + 30 coupons once 5 friends join within
    24 hours, held 7 days, funded with 5,000; its data-use declaration names ``controller``
    (and asks for one optional use when ``asks_photo_in_ads``)."""

    name: str
    market: str
    currency: str
    languages: tuple[str, ...]
    controller: str
    reward_cash: str = "20.00"
    reward_coupons: str = "30.00"
    funding: str = "5000.00"
    friends_needed: int = 5
    enrolment_window_hours: int = 24
    holding_days: int = 7
    #: Whether its declaration adds the optional use :func:`photo_in_ads` to the programme's.
    asks_photo_in_ads: bool = False

    @property
    def funding_id(self) -> UUID:
        """Fixed per campaign, so seeding again replays the first funding."""
        return derived_id("demo", "funding", self.name)


DEMO_CAMPAIGNS = (
    DemoCampaign(
        name="Cash Rewards UK",
        market="GB",
        currency="GBP",
        languages=("en",),
        controller="Demo Marketplace Ltd",
        asks_photo_in_ads=True,
    ),
    DemoCampaign(
        name="Cash Rewards France",
        market="FR",
        currency="EUR",
        languages=("fr", "en"),
        controller="Demo Marketplace SAS",
    ),
)
DEMO_DURATION = timedelta(days=90)
#: How long before "now" the campaigns start and are launched: the seeded members' stories
#: (a prize already past its holding period) happen inside that time.
DEMO_HISTORY = timedelta(days=14)


PHOTO: Final = "user.content.self_image"
ADS: Final = "marketing.advertising.first_party"


def photo_in_ads(spec: DemoCampaign) -> DeclarationItem:
    """An optional use, asked separately from the reward: the member's profile photo in the
    marketplace's own adverts in its app and on its website, for six months at most."""
    return DeclarationItem(
        data_category=PHOTO,
        data_use=ADS,
        legal_basis=LegalBasis.CONSENT,
        controllers=[spec.controller],
        channels=["app", "web"],
        territories=[spec.market],
        max_days=183,
        purpose={
            NoticeLanguage.EN: "shown in our own adverts in the app and on our website",
            NoticeLanguage.FR: "montrée dans nos propres publicités, dans l'application et sur "
            "notre site",
        },
    )


def declaration_of(spec: DemoCampaign) -> DeclarationCreate:
    """What the programme needs, and the optional use when the campaign asks for it."""
    needed = consent.programme_declaration(controller=spec.controller, territories=[spec.market])
    optional = [photo_in_ads(spec)] if spec.asks_photo_in_ads else []
    return DeclarationCreate(items=[*needed.items, *optional])


@dataclass(frozen=True, slots=True)
class SeededCampaign:
    campaign: CampaignRead
    created: bool


def _seed_one(session: Session, spec: DemoCampaign, *, clock: Clock, actor: str) -> SeededCampaign:
    existing = campaigns.find_by_name(session=session, name=spec.name)
    campaign = existing
    if campaign is None:
        now = clock.now()
        campaign = campaigns.create(
            session=session,
            campaign_in=CampaignCreate(
                name=spec.name,
                market=spec.market,
                currency=spec.currency,
                languages=list(spec.languages),
                starts_at=now,
                ends_at=now + DEMO_DURATION,
                friends_needed=spec.friends_needed,
                enrolment_window_hours=spec.enrolment_window_hours,
                reward_cash_minor=Money.parse(spec.reward_cash, spec.currency).minor,
                reward_coupon_minor=Money.parse(spec.reward_coupons, spec.currency).minor,
                holding_days=spec.holding_days,
            ),
            actor=actor,
            clock=clock,
        )
    if campaign.status is CampaignStatus.DRAFT:
        campaigns.fund(
            session=session,
            campaign_id=campaign.id,
            funding_in=FundingCreate(
                amount_minor=Money.parse(spec.funding, spec.currency).minor,
                currency=spec.currency,
                funding_id=spec.funding_id,
            ),
            actor=actor,
            clock=clock,
        )
        consent.declare(  # the same items as its latest version: nothing recorded
            session=session,
            campaign_id=campaign.id,
            declaration_in=declaration_of(spec),
            actor=actor,
            clock=clock,
        )
        campaign = campaigns.launch(
            session=session, campaign_id=campaign.id, actor=actor, clock=clock
        )
    return SeededCampaign(campaign=campaign, created=existing is None)


def seed_demo(*, session: Session, clock: Clock, actor: str) -> list[SeededCampaign]:
    """Create, fund, declare (the programme's data use) and launch the demo campaigns, as of
    ``clock``'s time (``parrain demo`` passes a clock :data:`DEMO_HISTORY` in the past). One
    found by name is left as it is, unless it is still a draft: then it is funded (with the
    fixed funding id), declared and launched. Run it in one transaction: seeding twice changes
    nothing."""
    return [_seed_one(session, spec, clock=clock, actor=actor) for spec in DEMO_CAMPAIGNS]
