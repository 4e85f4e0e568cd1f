"""Fixtures of the member pages: the app over plain HTTP (cookies not Secure, as in the
demo), a live programme that also asks one optional use (the member's photo in adverts),
and a way in for a marketplace user."""

from __future__ import annotations

import pytest

from parrain.config import CryptoSettings, Settings, WebSettings
from parrain.db.session import Database
from parrain.kit.clock import FrozenClock
from tests.browser.conftest import (  # noqa: F401 - the browser tests' fixtures, shared
    browser,
    live_server,
    page,
    page_settings,
)
from tests.consent import consents
from tests.referrals.programme import Programme


@pytest.fixture
def settings() -> Settings:
    return Settings(
        crypto=CryptoSettings(allow_development_keys=True), web=WebSettings(cookie_secure=False)
    )


@pytest.fixture
def programme(database: Database, clock: FrozenClock) -> Programme:
    return consents.launch(database, clock)
