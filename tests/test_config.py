"""Settings document themselves and read the PARRAIN_ environment."""

from __future__ import annotations

import pytest
from pydantic_settings import BaseSettings

from parrain.config import CryptoSettings, DatabaseSettings, LogSettings, ServerSettings, Settings


@pytest.mark.parametrize(
    "section", [Settings, DatabaseSettings, ServerSettings, LogSettings, CryptoSettings]
)
def test_every_setting_is_described(section: type[BaseSettings]) -> None:
    missing = [name for name, field in section.model_fields.items() if not field.description]
    assert missing == []


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARRAIN_DATABASE_URL", "postgresql+psycopg://app@db:5432/parrain")
    monkeypatch.setenv("PARRAIN_SERVER_PORT", "9000")
    monkeypatch.setenv("PARRAIN_LOG_LEVEL", "WARNING")
    settings = Settings()
    assert settings.database.url == "postgresql+psycopg://app@db:5432/parrain"
    assert settings.server.port == 9000
    assert settings.log.level == "WARNING"


def test_bad_settings_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARRAIN_SERVER_PORT", "70000")
    with pytest.raises(ValueError, match="less than or equal to 65535"):
        ServerSettings()
