"""Liveness of the API and its database, for load balancers and ``parrain demo``."""

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


class HealthRead(BaseModel):
    status: Literal["ok"]
    database: str


@router.get("/health", responses=error_responses(500, 503))
def health(database: DatabaseDep) -> HealthRead:
    """Answer ``ok`` once a trivial read of the database succeeded."""
    try:
        database.ping()
    except SQLAlchemyError as error:
        _log.warning("health_database_unreachable", error_type=type(error).__qualname__)
        raise DatabaseUnavailable("the database cannot be reached") from None
    return HealthRead(status="ok", database=database.dialect)
