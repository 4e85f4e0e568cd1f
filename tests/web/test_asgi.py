"""The app factory for ``uvicorn --factory``: everything from the environment."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import structlog
from fastapi.testclient import TestClient

from parrain.kit.errors import KeysNotConfigured
from parrain.web.asgi import create_app_from_environment

_KEY_VARIABLES = (
    "PARRAIN_CRYPTO_MASTER_KEYS",
    "PARRAIN_CRYPTO_MASTER_KEYS_FILE",
    "PARRAIN_CRYPTO_CURRENT_KID",
    "PARRAIN_CRYPTO_LOOKUP_KEY",
    "PARRAIN_CRYPTO_LOOKUP_KEY_FILE",
)


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch, database_url: str) -> Iterator[pytest.MonkeyPatch]:
    """The environment of a worker: the test database, no configured keys. The factory
    configures logging for the process; the other tests get theirs back afterwards."""
    saved = structlog.get_config()
    for name in _KEY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PARRAIN_DATABASE_URL", database_url)
    monkeypatch.setenv("PARRAIN_LOG_LEVEL", "WARNING")
    yield monkeypatch
    structlog.configure(**saved)


def test_the_app_serves_the_database_the_environment_names(
    environment: pytest.MonkeyPatch, backend: str
) -> None:
    environment.setenv("PARRAIN_CRYPTO_ALLOW_DEVELOPMENT_KEYS", "true")
    app = create_app_from_environment()

    with TestClient(app) as client:
        assert client.get("/health/live").json() == {"status": "ok"}
        response = client.get("/health")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": backend}
    assert app.state.settings.crypto.allow_development_keys is True


def test_the_connection_pool_is_closed_when_the_app_shuts_down(
    environment: pytest.MonkeyPatch,
) -> None:
    environment.setenv("PARRAIN_CRYPTO_ALLOW_DEVELOPMENT_KEYS", "true")
    app = create_app_from_environment()
    database = app.state.database
    disposed: list[bool] = []
    dispose = database.dispose

    def spy() -> None:
        disposed.append(True)
        dispose()

    environment.setattr(database, "dispose", spy)

    with TestClient(app) as client:
        assert client.get("/health").status_code == 200
        assert disposed == []

    assert disposed == [True]


def test_without_keys_a_worker_refuses_to_start(environment: pytest.MonkeyPatch) -> None:
    environment.setenv("PARRAIN_CRYPTO_ALLOW_DEVELOPMENT_KEYS", "false")

    with pytest.raises(KeysNotConfigured):
        create_app_from_environment()
