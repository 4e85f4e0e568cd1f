"""Fixtures of the HTTP API tests: the real app over the test database, and a client."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from parrain.config import CryptoSettings, Settings
from parrain.db.session import Database
from parrain.kit.clock import FrozenClock
from parrain.web.app import create_app
from tests.web.helpers import admin_token


@pytest.fixture
def settings() -> Settings:
    return Settings(crypto=CryptoSettings(allow_development_keys=True))


@pytest.fixture
def app(database: Database, clock: FrozenClock, settings: Settings) -> FastAPI:
    return create_app(database=database, clock=clock, settings=settings)


@pytest.fixture
def operator_token(database: Database, clock: FrozenClock) -> str:
    """A live token of an administrator, for the management API."""
    return admin_token(database, clock)


@pytest.fixture
def client(app: FastAPI, operator_token: str) -> Iterator[TestClient]:
    """A client of the API signed in as an administrator (integration keys are added per
    request where a route needs one)."""
    with TestClient(app, headers={"Authorization": f"Bearer {operator_token}"}) as test_client:
        yield test_client
