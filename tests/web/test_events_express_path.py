"""``POST /v1/events`` served before the app's middleware stack and routing (ADR 29): the
events it can take are answered there, with the same answers and errors as the route; a
body it cannot take goes on to the app, which answers as it always did."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.types import Receive, Scope, Send

from parrain.config import CryptoSettings, ReferralSettings, ServerSettings, Settings
from parrain.db.session import Database
from parrain.kit.clock import FrozenClock
from parrain.web.api import referrals
from tests.web.helpers import api_key_headers, error_of
from tests.web.test_queued_events_api import ASYNC, _queued, _signup, _with

LIMIT = 4096


@pytest.fixture
def settings() -> Settings:
    return Settings(
        server=ServerSettings(max_body_bytes=LIMIT),
        crypto=CryptoSettings(allow_development_keys=True),
        referrals=ReferralSettings(drain_in_api=False),
    )


@pytest.fixture
def key(database: Database, clock: FrozenClock) -> dict[str, str]:
    return api_key_headers(database, clock, "events")


@pytest.fixture
def stack_calls(app: FastAPI) -> list[str]:
    """``METHOD path`` of each HTTP request that enters the app's Starlette middleware stack
    (from now on)."""
    calls: list[str] = []
    stack = app.build_middleware_stack()

    async def counting(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            calls.append(f"{scope['method']} {scope['path']}")
        await stack(scope, receive, send)

    app.middleware_stack = counting
    return calls


@pytest.fixture
def routed(app: FastAPI) -> TestClient:
    """A client of the same app without the express path: every request goes through
    FastAPI's own ``__call__`` (its middleware and routing), as before ADR 29."""

    async def through_routing(scope: Scope, receive: Receive, send: Send) -> None:
        await FastAPI.__call__(app, scope, receive, send)

    return TestClient(through_routing)


def _outcome_status(client: TestClient, key: dict[str, str], event_id: str) -> int:
    status: int = client.get(f"/v1/events/{event_id}", headers=key).status_code
    return status


def test_valid_events_are_answered_without_entering_the_middleware_stack(
    client: TestClient, key: dict[str, str], clock: FrozenClock, stack_calls: list[str]
) -> None:
    at = clock.now().isoformat()

    single = client.post("/v1/events", json=_signup("signup-bob", "bob", at), headers=key)
    assert single.status_code == 200, single.text
    assert single.json()["event_id"] == "signup-bob"
    assert single.json()["status"] == "accepted"
    batch = [_signup("signup-cat", "cat", at), _signup("signup-dan", "dan", at)]
    batched = client.post("/v1/events", json={"events": batch}, headers=key)
    assert batched.status_code == 200, batched.text
    body = batched.json()
    assert [r["event_id"] for r in body["results"]] == ["signup-cat", "signup-dan"]
    assert [r["status"] for r in body["results"]] == ["accepted", "accepted"]
    assert (body["accepted"], body["ignored"], body["queued"], body["refused"]) == (2, 0, 0, 0)
    queued = client.post(
        "/v1/events", json=_signup("signup-eve", "eve", at), headers=_with(key, ASYNC)
    )
    assert queued.status_code == 202, queued.text
    assert queued.headers["preference-applied"] == "respond-async"
    assert queued.json() == _queued("signup-eve")
    assert stack_calls == []

    # Another route of the API goes through the stack: the count works.
    stored = client.get("/v1/events/signup-bob", headers=key)
    assert stored.json() == single.json()
    assert stack_calls == ["GET /v1/events/signup-bob"]


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b"{not json", "application/json"),
        (json.dumps({"id": "signup-bob", "type": "teleport", "at": "2026-03-01T09:00:00Z"}), None),
        (json.dumps(_signup("signup-bob", "bob", "2026-03-01T09:00:00+00:00")), "text/plain"),
    ],
    ids=["not-json", "not-an-event", "text-plain"],
)
def test_a_body_the_express_path_cannot_take_gets_the_routes_own_422(
    client: TestClient,
    routed: TestClient,
    key: dict[str, str],
    stack_calls: list[str],
    content: bytes | str,
    content_type: str | None,
) -> None:
    headers = _with(key, {"content-type": content_type or "application/json"})

    refused = client.post("/v1/events", content=content, headers=headers)

    assert error_of(refused, 422)["code"] == "invalid_request"
    assert stack_calls == ["POST /v1/events"]
    as_routed = routed.post("/v1/events", content=content, headers=headers)
    assert refused.json() == as_routed.json()
    assert _outcome_status(client, key, "signup-bob") == 404


def test_a_request_without_an_events_key_is_refused_as_other_routes_refuse_it(
    app: FastAPI,
    database: Database,
    clock: FrozenClock,
    stack_calls: list[str],
) -> None:
    signup = _signup("signup-bob", "bob", clock.now().isoformat())
    anonymous = TestClient(app)
    keyless_get = anonymous.get("/v1/events/some-id")
    assert error_of(keyless_get, 401)["code"] == "invalid_api_key"
    stack_calls.clear()

    for content in (signup, {"id": "e1", "type": "teleport"}):  # the key comes first
        for headers in ({}, ASYNC):
            keyless = anonymous.post("/v1/events", json=content, headers=headers)
            assert keyless.status_code == 401
            assert keyless.json() == keyless_get.json()
            assert keyless.headers["www-authenticate"] == "Bearer"
            assert keyless.headers["www-authenticate"] == keyless_get.headers["www-authenticate"]
    consent_only = api_key_headers(database, clock, "consent")
    denied = anonymous.post("/v1/events", json=signup, headers=consent_only)
    assert error_of(denied, 403)["code"] == "api_key_scope_denied"
    assert stack_calls == []
    denied_get = anonymous.get("/v1/events/some-id", headers=consent_only)
    assert denied.json() == denied_get.json()
    assert _outcome_status(anonymous, api_key_headers(database, clock, "events"), "signup-bob") == (
        404
    )


def test_an_event_id_sent_again_with_another_body_is_a_409(
    client: TestClient, key: dict[str, str], clock: FrozenClock, stack_calls: list[str]
) -> None:
    signup = _signup("signup-bob", "bob", clock.now().isoformat())
    assert client.post("/v1/events", json=signup, headers=key).status_code == 200
    changed = {**signup, "email": "someone.else@example.org"}

    for headers in (key, _with(key, ASYNC)):
        conflict = client.post("/v1/events", json=changed, headers=headers)
        assert error_of(conflict, 409)["code"] == "event_id_reused"
        assert "someone.else" not in conflict.text
    assert stack_calls == []


def test_an_unexpected_error_on_the_express_path_is_a_bare_500_logged_without_its_message(
    client: TestClient,
    key: dict[str, str],
    clock: FrozenClock,
    stack_calls: list[str],
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def broken(body: Any, request: Any) -> None:
        raise RuntimeError("cannot store jane.doe@example.com")

    monkeypatch.setattr(referrals, "post_events", broken)
    capfd.readouterr()

    response = client.post(
        "/v1/events", json=_signup("signup-bob", "bob", clock.now().isoformat()), headers=key
    )

    error = error_of(response, 500)
    assert error["code"] == "internal_error"
    assert error["message"] == "an unexpected error occurred"
    assert set(error["details"]) == {"error_id"}
    assert "jane" not in response.text
    assert stack_calls == []
    logged = capfd.readouterr()
    log = logged.out + logged.err
    assert "unexpected_error" in log
    assert error["details"]["error_id"] in log
    assert "RuntimeError" in log
    assert "jane" not in log
    assert "example.com" not in log
    # The app answers normally afterwards.
    monkeypatch.undo()
    retried = client.post(
        "/v1/events", json=_signup("signup-bob", "bob", clock.now().isoformat()), headers=key
    )
    assert retried.status_code == 200, retried.text


def _padded(body: dict[str, Any], size: int) -> bytes:
    """``body`` as JSON padded with trailing spaces to exactly ``size`` bytes."""
    encoded = json.dumps(body).encode()
    assert len(encoded) <= size
    return encoded + b" " * (size - len(encoded))


def test_a_body_over_the_limit_is_refused_on_the_express_path_and_nothing_is_stored(
    client: TestClient, key: dict[str, str], clock: FrozenClock, stack_calls: list[str]
) -> None:
    signup = _signup("signup-bob", "bob", clock.now().isoformat())
    json_key = _with(key, {"content-type": "application/json"})

    declared = client.post("/v1/events", content=_padded(signup, LIMIT + 1), headers=json_key)

    assert declared.request.headers["content-length"] == str(LIMIT + 1)
    error = error_of(declared, 413)
    assert error["code"] == "request_too_large"
    assert error["details"] == {"max_body_bytes": LIMIT}
    assert declared.headers["connection"] == "close"

    def chunks() -> Iterator[bytes]:
        yield _padded(signup, LIMIT + 1)

    streamed = client.post("/v1/events", content=chunks(), headers=_with(json_key, ASYNC))
    assert "content-length" not in streamed.request.headers
    assert error_of(streamed, 413)["code"] == "request_too_large"
    assert stack_calls == []
    assert error_of(client.get("/v1/events/signup-bob", headers=key), 404)["code"] == (
        "event_not_found"
    )
    # At the limit, the same event is taken.
    at_limit = client.post("/v1/events", content=_padded(signup, LIMIT), headers=json_key)
    assert at_limit.status_code == 200, at_limit.text
