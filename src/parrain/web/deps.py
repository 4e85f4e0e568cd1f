"""Dependencies of the routes, as ``Annotated`` aliases: ``database: DatabaseDep``.

``create_app`` stores the database, clock and settings on ``app.state``; these read them
back, so a test or the CLI decides what a route works with.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from parrain.config import Settings
from parrain.db.session import Database
from parrain.kit.clock import Clock

ACTOR_HEADER = "X-Parrain-Actor"
#: Who the audit log names when a request does not say (until operators log in).
DEFAULT_ACTOR = "api"
ACTOR_PATTERN = r"^[A-Za-z0-9:._@-]+$"


def get_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


def get_clock(request: Request) -> Clock:
    clock: Clock = request.app.state.clock
    return clock


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_actor(
    actor: Annotated[
        str | None,
        Header(
            alias=ACTOR_HEADER,
            min_length=1,
            max_length=120,
            pattern=ACTOR_PATTERN,
            description=(
                "Who the audit log names for this request: 1 to 120 characters of "
                "A-Z a-z 0-9 : . _ @ -. Defaults to 'api'."
            ),
        ),
    ] = None,
) -> str:
    return actor if actor is not None else DEFAULT_ACTOR


DatabaseDep = Annotated[Database, Depends(get_database)]
ClockDep = Annotated[Clock, Depends(get_clock)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
ActorDep = Annotated[str, Depends(get_actor)]
