"""``parrain serve`` runs the HTTP API; ``parrain demo`` makes a SQLite file with two live
campaigns (UK in GBP, France in EUR) and serves the API on it. Needs nothing else."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated
from uuid import UUID

import typer
from rich.table import Table
from sqlalchemy.orm import Session

from parrain.access import service as access
from parrain.access.schemas import ApiKeyCreate, ApiKeyScope
from parrain.campaigns import service as campaigns
from parrain.campaigns.schemas import CampaignCreate, CampaignRead, CampaignStatus, FundingCreate
from parrain.cli.output import console, reports_errors
from parrain.cli.state import CliState, open_database, safe_url, state_of
from parrain.config import Settings
from parrain.consent import service as consent
from parrain.db import migrate
from parrain.db.session import Database
from parrain.kit.clock import Clock, SystemClock
from parrain.kit.ids import derived_id
from parrain.kit.money import Money
from parrain.members import service as members
from parrain.members.schemas import MemberCreate
from parrain.members.service import MemberKeys
from parrain.referrals import service as referrals
from parrain.referrals.schemas import EnrolmentCreate, EnrolmentRead


@dataclass(frozen=True, slots=True)
class DemoCampaign:
    """One seeded campaign: £50 (or 50 €) = 20 cash + 30 coupons once 5 friends join within
    24 hours, held 7 days, funded with 5,000; its data-use declaration names ``controller``."""

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
        consent.declare_programme_defaults(
            session=session,
            campaign_id=campaign.id,
            controller=spec.controller,
            actor=actor,
            clock=clock,
        )
        campaign = campaigns.launch(
            session=session, campaign_id=campaign.id, actor=actor, clock=clock
        )
    return SeededCampaign(campaign=campaign, created=existing is None)


def seed_demo(*, session: Session, clock: Clock, actor: str) -> list[SeededCampaign]:
    """Create, fund, declare (the programme's data use) and launch the demo campaigns. One
    found by name is left as it is, unless it is still a draft: then it is funded (with the
    fixed funding id), declared and launched. Run it in one transaction: seeding twice changes
    nothing."""
    return [_seed_one(session, spec, clock=clock, actor=actor) for spec in DEMO_CAMPAIGNS]


DEMO_KEY_NAME = "demo-marketplace"
DEMO_MEMBER = {
    "market": "GB",
    "marketplace_user_id": "demo-member-ann",
    "email": "ann@example.org",
    "username": "ann_demo",
}


@dataclass(frozen=True, slots=True)
class DemoIntegration:
    """What the demo's marketplace needs: an events API key (its secret only when it was
    made by this run: it is stored hashed) and a member enrolled in the UK campaign."""

    api_key: str | None
    enrolment: EnrolmentRead


def seed_integration(
    *, session: Session, clock: Clock, actor: str, keys: MemberKeys, link_base_url: str
) -> DemoIntegration:
    """Make the demo's API key and enrolled member unless they exist (run after seed_demo)."""
    secret: str | None = None
    if not any(key.name == DEMO_KEY_NAME for key in access.list_api_keys(session=session)):
        created = access.create_api_key(
            session=session,
            key_in=ApiKeyCreate(name=DEMO_KEY_NAME, scopes=[ApiKeyScope.EVENTS]),
            actor=actor,
            clock=clock,
        )
        secret = created.key
    uk = campaigns.find_by_name(session=session, name=DEMO_CAMPAIGNS[0].name)
    if uk is None:  # seed_demo made it
        raise RuntimeError("seed the demo campaigns first")
    member_in = MemberCreate.model_validate(DEMO_MEMBER)
    member = members.find_by_marketplace_user(
        session=session,
        market=member_in.market,
        marketplace_user_id=member_in.marketplace_user_id.reveal(),
        keys=keys,
    )
    existing = (
        referrals.find_enrolment_of(
            session=session, campaign_id=uk.id, member_id=member.id, link_base_url=link_base_url
        )
        if member is not None
        else None
    )
    if existing is not None:
        enrolment = existing
    else:
        enrolment = referrals.enrol(
            session=session,
            campaign_id=uk.id,
            enrolment_in=EnrolmentCreate(member=member_in),
            keys=keys,
            clock=clock,
            link_base_url=link_base_url,
        )
    return DemoIntegration(api_key=secret, enrolment=enrolment)


def run_api(*, settings: Settings, database: Database, host: str, port: int) -> None:
    """Serve the HTTP API with uvicorn until interrupted."""
    # FastAPI and uvicorn load only when serving, so the other commands start quickly.
    import uvicorn

    from parrain.web.app import create_app

    api = create_app(database=database, clock=SystemClock(), settings=settings)
    # No access log: uvicorn's names each client's IP address, which is personal data.
    uvicorn.run(api, host=host, port=port, log_level=settings.log.level.lower(), access_log=False)


def _server_settings(state: CliState, *, database_url: str, host: str, port: int) -> Settings:
    settings = state.settings
    return settings.model_copy(
        update={
            "database": settings.database.model_copy(update={"url": database_url}),
            "server": settings.server.model_copy(update={"host": host, "port": port}),
        }
    )


@reports_errors
def serve(
    ctx: typer.Context,
    host: Annotated[
        str | None,
        typer.Option(help="Address to listen on (default: PARRAIN_SERVER_HOST, else 127.0.0.1)."),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(
            min=1, max=65535, help="Port to listen on (default: PARRAIN_SERVER_PORT, else 8000)."
        ),
    ] = None,
) -> None:
    """Serve the HTTP API on the configured database (migrate it first: parrain db upgrade)."""
    state = state_of(ctx)
    settings = _server_settings(
        state,
        database_url=state.settings.database.url,
        host=host or state.settings.server.host,
        port=port or state.settings.server.port,
    )
    console().print(
        f"Serving {safe_url(settings.database.url)} on "
        f"http://{settings.server.host}:{settings.server.port}/"
    )
    run_api(
        settings=settings,
        database=state.database,
        host=settings.server.host,
        port=settings.server.port,
    )


def _demo_settings(settings: Settings) -> Settings:
    """The demo's links point at its own server, and it runs on the public development keys
    unless real ones are configured (its data is made up)."""
    base = f"http://{settings.server.host}:{settings.server.port}"
    return settings.model_copy(
        update={
            "referrals": settings.referrals.model_copy(update={"link_base_url": base}),
            "crypto": settings.crypto.model_copy(update={"allow_development_keys": True}),
        }
    )


@reports_errors
def demo(
    ctx: typer.Context,
    database: Annotated[Path, typer.Option(help="The demo's SQLite file; made if missing.")] = Path(
        "parrain-demo.sqlite3"
    ),
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8000,
    serve: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Serve the API once seeded.")
    ] = True,
) -> None:
    """Seed two live campaigns (UK in GBP, France in EUR) in a SQLite file and serve the API.

    Running it again finds the campaigns and adds nothing. Ignores --database-url.
    """
    state = state_of(ctx)
    url = f"sqlite:///{database.expanduser().resolve()}"
    settings = _demo_settings(_server_settings(state, database_url=url, host=host, port=port))
    demo_database = open_database(settings.database)
    try:
        migrate.upgrade(demo_database.engine)
        seeded = demo_database.run(
            lambda session: seed_demo(session=session, clock=state.clock, actor=state.actor)
        )
        keys = MemberKeys.from_settings(settings.crypto)
        integration = demo_database.run(
            lambda session: seed_integration(
                session=session,
                clock=state.clock,
                actor=state.actor,
                keys=keys,
                link_base_url=settings.referrals.link_base_url,
            )
        )
        _print_seeded(seeded, database=database, host=host, port=port)
        _print_integration(integration, host=host, port=port)
        if serve:
            run_api(settings=settings, database=demo_database, host=host, port=port)
    finally:
        demo_database.dispose()


def _print_seeded(seeded: list[SeededCampaign], *, database: Path, host: str, port: int) -> None:
    out = console()
    table = Table(title=f"Demo campaigns in {database}")
    table.add_column("Name")
    table.add_column("Market")
    table.add_column("Status")
    table.add_column("Reward", justify="right", no_wrap=True)
    table.add_column("Budget left", justify="right", no_wrap=True)
    table.add_column("Seeded")
    for item in seeded:
        campaign = item.campaign
        table.add_row(
            campaign.name,
            f"{campaign.market} {campaign.currency}",
            campaign.status.value,
            campaign.reward_display,
            campaign.budget.available_display,
            "created" if item.created else "found",
        )
    out.print(table)
    base = f"http://{host}:{port}"
    out.print(f"API:           {base}/v1/campaigns")
    out.print(f"API reference: {base}/docs")


def _print_integration(integration: DemoIntegration, *, host: str, port: int) -> None:
    out = console()
    base = f"http://{host}:{port}"
    enrolment = integration.enrolment
    out.print(f"Sponsorship link of the demo member: {enrolment.link}")
    if integration.api_key is not None:
        out.print(f"Events API key (shown once): {integration.api_key}")
    else:
        out.print(
            f"Events API key: made by the first run ({DEMO_KEY_NAME}); "
            "make another with: parrain --database-url <demo db> apikey create --name N "
            "--scope events"
        )
    out.print(
        f"Their progress: curl -H 'Authorization: Bearer <key>' "
        f"{base}/v1/enrolments/{enrolment.id}/progress"
    )
