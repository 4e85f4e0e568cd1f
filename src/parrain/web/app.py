"""The application factory: ``create_app`` is what ``parrain serve``, the demo and the tests
call."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.routing import APIRoute

from parrain import __version__
from parrain.config import Settings
from parrain.db.session import Database
from parrain.kit.clock import Clock
from parrain.web.api import audit, campaigns, health, ledger
from parrain.web.errors import install_error_handlers
from parrain.web.middleware import BodySizeLimitMiddleware, UnexpectedErrorMiddleware

API_PREFIX = "/v1"

_DESCRIPTION = (
    "Referral cash-rewards campaigns with consent you can prove. Amounts are integers of "
    "minor units (`amount_minor`: pence, cents), never floats. Every error answers "
    '`{"error": {"code", "message", "details"}}` with a stable `code`.'
)


def _operation_id(route: APIRoute) -> str:
    """Operation ids are the route functions' names: ``fund_campaign``, ``list_audit_entries``."""
    return route.name


def create_app(*, database: Database, clock: Clock, settings: Settings) -> FastAPI:
    """Build the HTTP API over ``database``; every route reads time from ``clock``."""
    app = FastAPI(
        title="parrain",
        version=__version__,
        description=_DESCRIPTION,
        docs_url="/docs",
        redoc_url=None,
        openapi_url="/openapi.json",
        generate_unique_id_function=_operation_id,
    )
    app.state.database = database
    app.state.clock = clock
    app.state.settings = settings
    install_error_handlers(app)
    # The last middleware added runs first: bugs are caught around the size guard too.
    app.add_middleware(BodySizeLimitMiddleware, max_body_bytes=settings.server.max_body_bytes)
    app.add_middleware(UnexpectedErrorMiddleware)
    app.include_router(health.router)
    for module in (campaigns, ledger, audit):
        app.include_router(module.router, prefix=API_PREFIX)
    return app
