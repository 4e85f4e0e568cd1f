"""Health of the API, for load balancers, orchestrators and ``parrain demo``.

* ``GET /health/live`` is the liveness probe: the process answers HTTP. It touches nothing
  else (no database, no key, no clock), so a slow or unreachable database never gets a
  live process restarted; it is also the trivial endpoint ``benchmarks/events.py`` compares
  the events API with.
* ``GET /health`` is the readiness probe: it answers ``ok`` only after a trivial read of the
  database succeeded.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy.exc import SQLAlchemyError

from parrain.logging import get_logger
from parrain.web.deps import DatabaseDep
from parrain.web.errors import DatabaseUnavailable, error_responses

_log = get_logger(__name__)

router = APIRouter(tags=["health"])


class LiveRead(BaseModel):
    status: Literal["ok"]


class HealthRead(BaseModel):
    status: Literal["ok"]
    database: str


@router.get("/health/live")
async def health_live() -> LiveRead:
    """Liveness probe: answers ``ok`` while the process serves HTTP. No database, no I/O."""
    return LiveRead(status="ok")


@router.get("/health", responses=error_responses(500, 503))
def health(database: DatabaseDep) -> HealthRead:
    """Answer ``ok`` once a trivial read of the database succeeded."""
    try:
        database.ping()
    except SQLAlchemyError as error:
        _log.warning("health_database_unreachable", error_type=type(error).__qualname__)
        raise DatabaseUnavailable("the database cannot be reached") from None
    return HealthRead(status="ok", database=database.dialect)
