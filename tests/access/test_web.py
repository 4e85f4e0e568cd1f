"""The API key dependency, mounted on a test-only route of the real app."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from unittest import mock

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from httpx import Response

from parrain.access import service
from parrain.access.schemas import ApiKeyCreate, CreatedApiKey
from parrain.config import CryptoSettings, Settings
from parrain.db.session import Database
from parrain.kit.clock import FrozenClock
from parrain.web.app import create_app
from parrain.web.deps import (
    API_KEY_CACHE_TTL_SECONDS,
    API_KEY_HEADER,
    ApiKeyCache,
    ConsentKeyDep,
    EventsKeyDep,
    require_api_key,
)

ACTOR = "operator:test"

router = APIRouter(prefix="/test")


@router.get("/events")
def events_route(api_key: EventsKeyDep) -> dict[str, Any]:
    return {"id": str(api_key.id), "prefix": api_key.prefix, "actor": api_key.actor}


@router.get("/consent")
def consent_route(api_key: ConsentKeyDep) -> dict[str, Any]:
    return {"id": str(api_key.id)}


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def monotonic() -> FakeMonotonic:
    return FakeMonotonic()


@pytest.fixture
def app(database: Database, clock: FrozenClock, monotonic: FakeMonotonic) -> FastAPI:
    settings = Settings(crypto=CryptoSettings(allow_development_keys=True))
    app = create_app(database=database, clock=clock, settings=settings)
    app.include_router(router)
    app.state.api_key_cache = ApiKeyCache(monotonic=monotonic)
    return app


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


def create(
    database: Database, clock: FrozenClock, *scopes: str, name: str = "backend"
) -> CreatedApiKey:
    key_in = ApiKeyCreate.model_validate({"name": name, "scopes": list(scopes or ["events"])})
    return database.run(
        lambda s: service.create_api_key(session=s, key_in=key_in, actor=ACTOR, clock=clock)
    )


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def refused(response: Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code
    if status == 401:
        assert response.headers["WWW-Authenticate"] == "Bearer"
    else:
        assert "WWW-Authenticate" not in response.headers
    return error


def test_a_request_without_a_key_is_401_with_a_bearer_challenge(client: TestClient) -> None:
    error = refused(client.get("/test/events"), 401, "invalid_api_key")
    assert "Authorization: Bearer" in error["message"]
    # Another scheme is no API key either.
    refused(client.get("/test/events", headers={"Authorization": "Basic dXNlcjpwdw=="}), 401,
            "invalid_api_key")  # fmt: skip
    refused(client.get("/test/events", headers={"Authorization": "Bearer"}), 401, "invalid_api_key")


@pytest.mark.parametrize(
    "presented", ["nope", "prn_abcdefgh_" + "A" * 43, "prn_abcdefgh_" + "A" * 5000]
)
def test_a_bad_key_is_401(
    presented: str, client: TestClient, database: Database, clock: FrozenClock
) -> None:
    create(database, clock)
    error = refused(client.get("/test/events", headers=bearer(presented)), 401, "invalid_api_key")
    assert presented not in error["message"]


def test_a_key_without_the_scope_is_403(
    client: TestClient, database: Database, clock: FrozenClock
) -> None:
    created = create(database, clock, "consent")
    error = refused(
        client.get("/test/events", headers=bearer(created.key)), 403, "api_key_scope_denied"
    )
    assert error["details"] == {"scope": "events", "granted": ["consent"]}
    assert client.get("/test/consent", headers=bearer(created.key)).status_code == 200
    # The same cached key is still checked for scope on every request.
    refused(client.get("/test/events", headers=bearer(created.key)), 403, "api_key_scope_denied")


def test_the_right_key_is_admitted_by_either_header(
    client: TestClient, database: Database, clock: FrozenClock
) -> None:
    created = create(database, clock, "events", "consent")
    for headers in (bearer(created.key), {API_KEY_HEADER: created.key}):
        response = client.get("/test/events", headers=headers)
        assert response.status_code == 200, response.text
        assert response.json() == {
            "id": str(created.api_key.id),
            "prefix": created.api_key.prefix,
            "actor": f"api_key:{created.api_key.prefix}",
        }
    lower = client.get("/test/events", headers={"Authorization": f"bearer {created.key}"})
    assert lower.status_code == 200


def test_a_cached_key_skips_the_database_and_a_revocation_lands_after_the_ttl(
    client: TestClient, database: Database, clock: FrozenClock, monotonic: FakeMonotonic
) -> None:
    created = create(database, clock)
    assert client.get("/test/events", headers=bearer(created.key)).status_code == 200

    with mock.patch.object(
        service, "identify_api_key", side_effect=AssertionError("database asked")
    ):
        for _ in range(20):
            assert client.get("/test/events", headers=bearer(created.key)).status_code == 200

    database.run(
        lambda s: service.revoke_api_key(
            session=s, key_id=created.api_key.id, actor=ACTOR, clock=clock
        )
    )
    monotonic.now += API_KEY_CACHE_TTL_SECONDS - 0.5
    # Within the TTL this process still trusts the key (documented revocation delay).
    assert client.get("/test/events", headers=bearer(created.key)).status_code == 200
    monotonic.now += 0.5
    error = refused(client.get("/test/events", headers=bearer(created.key)), 401, "invalid_api_key")
    assert "revoked" in error["message"]
    # A refused key is not cached: it stays refused.
    refused(client.get("/test/events", headers=bearer(created.key)), 401, "invalid_api_key")


def test_last_use_is_written_at_most_once_a_minute(
    client: TestClient, database: Database, clock: FrozenClock
) -> None:
    created = create(database, clock)

    def last_used() -> Any:
        return database.read(
            lambda s: service.get_api_key(session=s, key_id=created.api_key.id)
        ).last_used_at

    first = clock.advance(timedelta(minutes=5))
    assert client.get("/test/events", headers=bearer(created.key)).status_code == 200
    assert last_used() == first
    with mock.patch.object(
        service, "record_api_key_use", side_effect=AssertionError("written again")
    ):
        clock.advance(timedelta(seconds=30))
        for _ in range(5):
            assert client.get("/test/events", headers=bearer(created.key)).status_code == 200
    later = clock.advance(timedelta(seconds=30))
    assert client.get("/test/events", headers=bearer(created.key)).status_code == 200
    assert last_used() == later


def test_the_cache_is_bounded_and_forgets_the_oldest_first() -> None:
    monotonic = FakeMonotonic()
    cache = ApiKeyCache(ttl_seconds=5, max_entries=2, monotonic=monotonic)
    keys = [
        mock.sentinel.first,
        mock.sentinel.second,
        mock.sentinel.third,
    ]
    for index, key in enumerate(keys):
        cache.remember(bytes([index]), key)
    assert len(cache) == 2
    assert cache.get(b"\x00") is None
    assert cache.get(b"\x01") is mock.sentinel.second
    assert cache.get(b"\x02") is mock.sentinel.third
    monotonic.now += 5
    assert cache.get(b"\x02") is None


def test_an_unknown_scope_fails_when_the_route_is_declared() -> None:
    with pytest.raises(ValueError, match="payouts"):
        require_api_key("payouts")


def test_the_openapi_document_names_both_ways_to_send_a_key(app: FastAPI) -> None:
    schemes = app.openapi()["components"]["securitySchemes"]
    assert schemes["ApiKeyBearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schemes["ApiKeyBearer"]["description"],
    }
    assert schemes["ApiKeyHeader"]["name"] == API_KEY_HEADER
