"""The console over the test database: plain-HTTP cookies, a cheap argon2id hasher."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from parrain.config import ConsoleSettings, CryptoSettings, Settings, WebSettings
from parrain.db.session import Database
from parrain.kit.clock import FrozenClock
from parrain.web.app import create_app
from tests.operators.helpers import CHEAP_HASHER


@pytest.fixture
def settings() -> Settings:
    return Settings(
        crypto=CryptoSettings(allow_development_keys=True),
        web=WebSettings(cookie_secure=False),
        console=ConsoleSettings(lockout_threshold=3, lockout_minutes=15),
    )


@pytest.fixture
def app(database: Database, clock: FrozenClock, settings: Settings) -> FastAPI:
    app = create_app(database=database, clock=clock, settings=settings)
    app.state.password_hasher = CHEAP_HASHER
    return app


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, follow_redirects=False) as test_client:
        yield test_client
