"""Liveness of the API and its database, for load balancers and ``parrain demo``."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from parrain.logging import get_logger
from parrain.web.deps import DatabaseDep
from parrain.web.errors import DatabaseUnavailable, error_responses

_log = get_logger(__name__)

router = APIRouter(tags=["health"])


class HealthRead(BaseModel):
    status: Literal["ok"]
    database: str


def _ping(session: Session) -> None:
    session.execute(text("SELECT 1"))


@router.get("/health", responses=error_responses(500, 503))
def health(database: DatabaseDep) -> HealthRead:
    """Answer ``ok`` once a trivial read of the database succeeded."""
    try:
        database.read(_ping)
    except SQLAlchemyError as error:
        _log.warning("health_database_unreachable", error_type=type(error).__qualname__)
        raise DatabaseUnavailable("the database cannot be reached") from None
    return HealthRead(status="ok", database=database.dialect)
