"""The application factory: ``create_app`` is what ``parrain serve``, the demo and the tests
call."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import swagger_ui_bundle
from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from parrain import __version__
from parrain.config import Settings
from parrain.consent import service as consent_service
from parrain.db.session import Database
from parrain.errors import ParrainError
from parrain.kit.clock import Clock
from parrain.members.service import MemberKeys
from parrain.web.api import (
    audit,
    campaigns,
    consent,
    coupons,
    health,
    ledger,
    payouts,
    privacy,
    referrals,
)
from parrain.web.errors import install_error_handlers, parrain_error_response
from parrain.web.middleware import (
    BodySizeLimitMiddleware,
    UnexpectedErrorMiddleware,
    replaying,
)
from parrain.web.pages import console, links, member
from parrain.web.ratelimit import RateLimiter
from parrain.web.templating import STATIC
from parrain.worker.drainer import EventDrainer

API_PREFIX = "/v1"
#: The busiest route, served before the app's routing (:class:`_API`, ADR 29).
EVENTS_PATH = f"{API_PREFIX}/events"

_DESCRIPTION = (
    "Referral cash-rewards campaigns with consent you can prove. Amounts are integers of "
    "minor units (`amount_minor`: pence, cents), never floats. Every error answers "
    '`{"error": {"code", "message", "details"}}` with a stable `code`.'
)


def _without_telemetry() -> dict[str, Any]:
    """``FastAPI(...)`` options that turn off its native OpenTelemetry (FastAPI versions that
    have it): its spans, metrics and logs would record each request's path and client
    address (personal data, as the access log would), and asking on every request whether a
    provider is configured costs CPU."""
    if "telemetry" not in inspect.signature(FastAPI.__init__).parameters:
        return {}
    off = {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}
    return {"telemetry": off}


def _operation_id(route: APIRoute) -> str:
    """Operation ids are the route functions' names: ``fund_campaign``, ``list_audit_entries``."""
    return route.name


class _API(FastAPI):
    """The app, with ``POST /v1/events`` served before FastAPI's own middleware and routing
    (ADR 29): by the same function as the route (:func:`~parrain.web.api.referrals.
    receive_events`), inside the app's two middlewares (the last line against bugs around
    the size guard), its errors answered by the app's handler. A body that is not valid
    JSON of events goes on to the app as usual, which answers why. For a queued event,
    the layers passed over (Starlette's and FastAPI's middleware, the router's matching,
    the route's wrappers) cost a quarter of the request."""

    def __init__(self, *, max_body_bytes: int, **options: Any) -> None:
        super().__init__(**options)
        # Nested as the app nests them: bugs are caught around the size guard too.
        self._events: ASGIApp = UnexpectedErrorMiddleware(
            BodySizeLimitMiddleware(self._receive_events, max_body_bytes=max_body_bytes)
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == EVENTS_PATH and scope["method"] == "POST":
            await self._events(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)

    async def _receive_events(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["app"] = self  # as Starlette sets it: what request.app reads
        request = Request(scope, receive)
        try:
            response = await referrals.receive_events(request)
        except ParrainError as error:
            response = await parrain_error_response(request, error)
        if response is None:  # not valid: the app answers why, from the same body
            await super().__call__(scope, replaying(await request.body(), receive), send)
            return
        await response(scope, receive, send)


def create_app(
    *, database: Database, clock: Clock, settings: Settings, member_keys: MemberKeys | None = None
) -> FastAPI:
    """Build the HTTP API over ``database``; every route reads time from ``clock``.

    ``member_keys`` default to the ones ``settings.crypto`` configures; without any, this
    raises :class:`~parrain.kit.errors.KeysNotConfigured` before serving a request.
    """

    @asynccontextmanager
    async def lifespan(served: FastAPI) -> AsyncIterator[None]:
        """Drain the events received for later while the app serves (ADR 28), if asked."""
        if not settings.referrals.drain_in_api:
            yield
            return
        drainer = EventDrainer(
            database=database,
            keys=served.state.member_keys,
            clock=clock,
            batch_size=settings.referrals.drain_batch_size,
            poll_seconds=settings.referrals.drain_poll_seconds,
        )
        drainer.start()
        served.state.event_drainer = drainer
        try:
            yield
        finally:
            served.state.event_drainer = None
            drainer.stop()

    app = _API(
        max_body_bytes=settings.server.max_body_bytes,
        lifespan=lifespan,
        title="parrain",
        version=__version__,
        description=_DESCRIPTION,
        docs_url=None,  # served below from packaged assets: the docs work offline
        redoc_url=None,
        openapi_url="/openapi.json",
        generate_unique_id_function=_operation_id,
        **_without_telemetry(),
    )
    app.state.database = database
    app.state.clock = clock
    app.state.settings = settings
    app.state.member_keys = member_keys or MemberKeys.from_settings(settings.crypto)
    app.state.event_drainer = None  # started by the lifespan, if the settings ask for one
    app.state.rate_limits = {
        "links": RateLimiter(
            per_minute=settings.web.link_rate_per_minute, burst=settings.web.link_burst
        ),
        "sign_in": RateLimiter(
            per_minute=settings.web.sign_in_rate_per_minute, burst=settings.web.sign_in_burst
        ),
        "member_enter": RateLimiter(
            per_minute=settings.web.member_enter_rate_per_minute,
            burst=settings.web.member_enter_burst,
        ),
    }
    # The consent checks' cache holds as many members as the settings say (ADR 25).
    consent_service.configure_check_cache(members=settings.consent.check_cache_members)
    install_error_handlers(app)
    # The last middleware added runs first: bugs are caught around the size guard too.
    app.add_middleware(BodySizeLimitMiddleware, max_body_bytes=settings.server.max_body_bytes)
    app.add_middleware(UnexpectedErrorMiddleware)
    app.include_router(health.router)
    # The marketplace's routes first: the router tries routes in order, and the events
    # route is the busiest (each router passed over costs it microseconds).
    for router in (
        referrals.integration,
        campaigns.router,
        consent.router,
        ledger.router,
        audit.router,
        referrals.router,
        privacy.router,
        coupons.router,
        payouts.router,
    ):
        app.include_router(router, prefix=API_PREFIX)
    app.include_router(links.router)
    app.include_router(member.router)
    app.include_router(console.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    _serve_docs(app)
    return app


def _serve_docs(app: FastAPI) -> None:
    """Swagger UI at /docs with its JavaScript and CSS from the swagger-ui-bundle package,
    not from a CDN: the demo runs on machines without Internet access."""
    app.mount(
        "/docs/assets",
        StaticFiles(directory=swagger_ui_bundle.swagger_ui_path),
        name="docs-assets",
    )

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="parrain API",
            swagger_js_url="/docs/assets/swagger-ui-bundle.js",
            swagger_css_url="/docs/assets/swagger-ui.css",
            swagger_favicon_url="/docs/assets/favicon-32x32.png",
        )
