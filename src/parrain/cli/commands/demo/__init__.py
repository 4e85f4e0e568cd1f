"""``parrain serve`` runs the HTTP API; ``parrain demo`` runs the whole service on a SQLite
file with nothing else to start: two live campaigns (UK in GBP, France in EUR), an admin and
an auditor, UK members at different stages, the PayPal fake on a loopback port and the
worker's rounds in a thread, all in one process that stops cleanly on Ctrl-C or SIGTERM.

- :mod:`.campaigns`: the campaigns; :mod:`.people`: operators, API key and members;
  :mod:`.seeding`: all of it, in order; :mod:`.printing`: what the command prints;
- :mod:`.running`: the PayPal fake and the worker beside the API.
"""

from __future__ import annotations

import signal
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer

from parrain.cli.commands.demo.campaigns import (
    DEMO_CAMPAIGNS,
    DemoCampaign,
    SeededCampaign,
    seed_demo,
)
from parrain.cli.commands.demo.people import (
    DEMO_KEY_NAME,
    DEMO_MEMBERS,
    DEMO_OPERATORS,
    DEMO_TOKEN_LIFETIME,
    DemoMember,
)
from parrain.cli.commands.demo.printing import print_seed
from parrain.cli.commands.demo.running import DemoWorker, start_fake_paypal, with_fake_paypal
from parrain.cli.commands.demo.seeding import DemoSeed, seed_everything
from parrain.cli.output import console, fail, reports_errors
from parrain.cli.state import CliState, open_database, safe_url, state_of
from parrain.config import Settings
from parrain.db import migrate
from parrain.db.session import Database
from parrain.kit.clock import SystemClock
from parrain.members.service import MemberKeys
from parrain.payouts.providers.fake import FakePayPal

if TYPE_CHECKING:
    import uvicorn

__all__ = [
    "DEMO_CAMPAIGNS",
    "DEMO_KEY_NAME",
    "DEMO_MEMBERS",
    "DEMO_OPERATORS",
    "DEMO_TOKEN_LIFETIME",
    "DemoCampaign",
    "DemoMember",
    "DemoSeed",
    "SeededCampaign",
    "demo",
    "run_api",
    "seed_demo",
    "seed_everything",
    "serve",
]


def _api_server(*, settings: Settings, database: Database, host: str, port: int) -> uvicorn.Server:
    # FastAPI and uvicorn load only when serving, so the other commands start quickly.
    import uvicorn

    from parrain.web.app import create_app

    api = create_app(database=database, clock=SystemClock(), settings=settings)
    # No access log: uvicorn's names each client's IP address, which is personal data.
    config = uvicorn.Config(
        api, host=host, port=port, log_level=settings.log.level.lower(), access_log=False
    )
    return uvicorn.Server(config)


def run_api(*, settings: Settings, database: Database, host: str, port: int) -> None:
    """Serve the HTTP API with uvicorn until interrupted."""
    _api_server(settings=settings, database=database, host=host, port=port).run()


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
            # Served over plain HTTP on a loopback address: cookies cannot be Secure.
            "web": settings.web.model_copy(update={"cookie_secure": False}),
        }
    )


class _Stopper:
    """SIGINT and SIGTERM handler while serving: tells uvicorn to finish. Uvicorn handles
    them itself while it serves and hands them back here when done (harmless then)."""

    def __init__(self, server: uvicorn.Server) -> None:
        self.server = server

    def __call__(self, _signum: int, _frame: FrameType | None) -> None:
        self.server.should_exit = True


@reports_errors
def demo(
    ctx: typer.Context,
    database: Annotated[Path, typer.Option(help="The demo's SQLite file; made if missing.")] = Path(
        "parrain-demo.sqlite3"
    ),
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8000,
    serve: Annotated[
        bool,
        typer.Option(
            "--serve/--no-serve", help="Serve the API, the PayPal fake and the worker once seeded."
        ),
    ] = True,
    paypal_port: Annotated[
        int,
        typer.Option(
            "--paypal-port", min=0, max=65535, help="The PayPal fake's port (0: any free one)."
        ),
    ] = 0,
    worker_interval: Annotated[
        float,
        typer.Option(
            "--worker-interval", min=0.2, max=3600.0, help="Seconds between the worker's rounds."
        ),
    ] = 5.0,
    settle_seconds: Annotated[
        float,
        typer.Option(
            "--paypal-settle-seconds", min=0.0, max=3600.0, help="Seconds a payout stays PENDING."
        ),
    ] = 3.0,
) -> None:
    """Run the whole service on a SQLite file: seeded campaigns, operators and members, the
    API and pages, the PayPal fake and the worker, until Ctrl-C or SIGTERM.

    Running it again finds everything and adds nothing (but a new API token). Ignores
    --database-url.
    """
    state = state_of(ctx)
    url = f"sqlite:///{database.expanduser().resolve()}"
    settings = _demo_settings(_server_settings(state, database_url=url, host=host, port=port))
    demo_database = open_database(settings.database)
    fake: FakePayPal | None = None
    worker: DemoWorker | None = None
    try:
        migrate.upgrade(demo_database.engine)
        seed = seed_everything(
            database=demo_database, settings=settings, clock=state.clock, actor=state.actor
        )
        base = settings.referrals.link_base_url
        if serve:
            try:
                fake = start_fake_paypal(
                    host="127.0.0.1",
                    port=paypal_port,
                    api_base_url=base,
                    settle_seconds=settle_seconds,
                )
            except OSError as error:
                fail(
                    "address_unavailable",
                    f"the PayPal fake cannot listen on 127.0.0.1:{paypal_port}: {error.strerror}",
                )
            settings = with_fake_paypal(settings, fake)
        print_seed(seed, settings, database=database, now=state.clock.now(), fake=fake)
        if not serve:
            return
        server = _api_server(settings=settings, database=demo_database, host=host, port=port)
        stopper = _Stopper(server)
        previous = {sig: signal.signal(sig, stopper) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            worker = DemoWorker(
                database=demo_database,
                clock=state.clock,
                settings=settings,
                keys=MemberKeys.from_settings(settings.crypto),
                interval=worker_interval,
                report=lambda line: console().print(f"worker: {line}", highlight=False),
            ).start()
            console().print(f"worker: a round every {worker_interval:g} s", highlight=False)
            server.run()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    finally:
        if worker is not None:
            worker.stop()
        if fake is not None:
            fake.stop()
        demo_database.dispose()
    console().print("parrain demo stopped.")
