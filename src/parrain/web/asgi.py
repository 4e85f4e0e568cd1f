"""The HTTP API built from the environment alone, for an ASGI server's ``--factory``.

``parrain serve`` builds the app in its own process and hands it to uvicorn; a server that
starts several worker processes (``--workers N``) cannot be handed an object, only an import
path, and each worker builds its own app. This is that import path::

    uvicorn parrain.web.asgi:create_app_from_environment --factory --workers 2 \\
        --host 127.0.0.1 --port 8000 --no-access-log

Each worker reads the usual ``PARRAIN_*`` variables (``PARRAIN_DATABASE_URL``, the
``PARRAIN_CRYPTO_*`` keys, ``PARRAIN_LOG_*``; see ``parrain.config``), configures logging,
opens its own connection pool and reads time from the system clock. The pool is closed
when the worker shuts down. Leave uvicorn's access log off (``--no-access-log``, as
``parrain serve`` does): it names each client's IP address, which is personal data.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from parrain.config import Settings
from parrain.db.session import Database
from parrain.kit.clock import SystemClock
from parrain.logging import configure_logging
from parrain.web.app import create_app

#: The garbage collector's thresholds in an API worker (generation 0, 1, 2).
COLLECTOR_THRESHOLDS = (50_000, 20, 50)


def create_app_from_environment() -> FastAPI:
    """The API over the database ``PARRAIN_DATABASE_URL`` names, with the keys the
    environment configures (``KeysNotConfigured`` when there are none and development keys
    are not allowed, so a worker fails at start-up rather than on its first request)."""
    settings = Settings()
    configure_logging(settings.log)
    database = Database(settings.database)
    try:
        app = create_app(database=database, clock=SystemClock(), settings=settings)
    except BaseException:
        database.dispose()
        raise
    _dispose_on_shutdown(app, database)
    _prepare_routes(app)
    # Everything built so far (modules, the app, the catalogues) lives as long as the
    # worker: moved out of the collector's generations, a full collection no longer walks
    # it, which took tens of milliseconds out of a request now and then. And the youngest
    # generation is collected every 50,000 allocations rather than 700: a request makes
    # thousands of short-lived objects that reference counting frees anyway (batches of
    # events ran 6 to 24 % faster, consent checks lost their slowest stalls; ADR 27).
    gc.collect()
    gc.freeze()
    gc.set_threshold(*COLLECTOR_THRESHOLDS)
    return app


def _prepare_routes(app: FastAPI) -> None:
    """Let every route try a path none answers, so that what the router builds on first use
    (FastAPI builds each included router's routes lazily, about 0.1 s for this app) is
    built while the worker starts rather than during its first request."""
    scope: dict[str, Any] = {
        "type": "http",
        "method": "GET",
        "path": "/\x00",
        "root_path": "",
        "headers": [],
        "query_string": b"",
    }
    for route in app.router.routes:
        route.matches(dict(scope))


def _dispose_on_shutdown(app: FastAPI, database: Database) -> None:
    """Close the connection pool after the app's own lifespan has ended."""
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(asgi_app: Any) -> AsyncIterator[Any]:
        try:
            async with inner(asgi_app) as state:
                yield state
        finally:
            database.dispose()

    app.router.lifespan_context = lifespan
