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

from parrain.campaigns import service as campaigns
from parrain.campaigns.schemas import CampaignCreate, CampaignRead, CampaignStatus, FundingCreate
from parrain.cli.output import console, reports_errors
from parrain.cli.state import CliState, open_database, safe_url, state_of
from parrain.config import Settings
from parrain.db import migrate
from parrain.db.session import Database
from parrain.kit.clock import Clock, SystemClock
from parrain.kit.ids import derived_id
from parrain.kit.money import Money


@dataclass(frozen=True, slots=True)
class DemoCampaign:
    """One seeded campaign: £50 (or 50 €) = 20 cash + 30 coupons once 5 friends join within
    24 hours, held 7 days, funded with 5,000."""

    name: str
    market: str
    currency: str
    languages: tuple[str, ...]
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
    DemoCampaign(name="Cash Rewards UK", market="GB", currency="GBP", languages=("en",)),
    DemoCampaign(name="Cash Rewards France", market="FR", currency="EUR", languages=("fr", "en")),
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
        campaign = campaigns.launch(
            session=session, campaign_id=campaign.id, actor=actor, clock=clock
        )
    return SeededCampaign(campaign=campaign, created=existing is None)


def seed_demo(*, session: Session, clock: Clock, actor: str) -> list[SeededCampaign]:
    """Create, fund and launch the demo campaigns. One found by name is left as it is, unless
    it is still a draft: then it is funded (with the fixed funding id) and launched. Run it
    in one transaction: seeding twice changes nothing."""
    return [_seed_one(session, spec, clock=clock, actor=actor) for spec in DEMO_CAMPAIGNS]


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
        _print_seeded(seeded, database=database, host=host, port=port)
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
