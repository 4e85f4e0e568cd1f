"""Events received for later over HTTP (``Prefer: respond-async``, ADR 28): answered 202 and
``queued`` at once, applied by the app's drainer (or ``drain_queued_events``) shortly after,
exactly as if sent without the header."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from parrain.config import CryptoSettings, ReferralSettings, Settings
from parrain.db.session import Database
from parrain.kit.clock import FrozenClock
from parrain.referrals.models import ReferralEvent
from parrain.referrals.queue import open_event, queue_events, seal_events
from parrain.referrals.schemas import SignupEvent
from parrain.web.app import create_app
from parrain.worker.jobs import drain_queued_events
from tests.referrals.programme import EVENT
from tests.web.helpers import api_key_headers, create_campaign, declare_programme, error_of

ASYNC = {"Prefer": "respond-async"}
#: How long a test waits for the app's drainer thread to apply what was queued.
DRAIN_DEADLINE_SECONDS = 5.0

#: For a test that drains by hand: the app runs no drainer thread.
drainer_off = pytest.mark.parametrize("drain_in_api", [False], ids=["drainer-off"])


@pytest.fixture
def drain_in_api() -> bool:
    return True


@pytest.fixture
def settings(drain_in_api: bool) -> Settings:
    return Settings(
        crypto=CryptoSettings(allow_development_keys=True),
        referrals=ReferralSettings(drain_in_api=drain_in_api),
    )


@pytest.fixture
def key(database: Database, clock: FrozenClock) -> dict[str, str]:
    return api_key_headers(database, clock, "events")


def _with(key: dict[str, str], headers: dict[str, str]) -> dict[str, str]:
    return {**key, **headers}


def _live_campaign(client: TestClient) -> dict[str, Any]:
    campaign = create_campaign(
        client,
        starts_at="2026-02-01T00:00:00Z",
        friends_needed=2,
        reward_cash_minor=2000,
        reward_coupon_minor=3000,
    )
    declare_programme(client, campaign["id"])
    funded = client.post(
        f"/v1/campaigns/{campaign['id']}/funding",
        json={"amount_minor": 100_000, "currency": "GBP"},
    )
    assert funded.status_code == 200, funded.text
    launched = client.post(f"/v1/campaigns/{campaign['id']}/launch")
    assert launched.status_code == 200, launched.text
    return campaign


def _enrol(client: TestClient, key: dict[str, str]) -> dict[str, Any]:
    campaign = _live_campaign(client)
    member = {
        "member": {
            "market": "GB",
            "marketplace_user_id": "user-ann",
            "email": "ann@example.org",
            "username": "ann",
        }
    }
    response = client.post(f"/v1/campaigns/{campaign['id']}/enrolments", json=member, headers=key)
    assert response.status_code == 201, response.text
    enrolment: dict[str, Any] = response.json()
    return enrolment


def _signup(event_id: str, name: str, at: str, code: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": event_id,
        "type": "signup",
        "at": at,
        "market": "GB",
        "marketplace_user_id": f"user-{name}",
        "email": f"{name}@example.org",
        "username": name,
        "device_id": f"device-{name}",
    }
    if code is not None:
        body["code"] = code
    return body


def _queued(event_id: str, event_type: str = "signup") -> dict[str, Any]:
    """The whole answer for an event just queued."""
    return {
        "event_id": event_id,
        "type": event_type,
        "status": "queued",
        "reason": None,
        "friend_id": None,
        "enrolment_id": None,
    }


def _outcome(client: TestClient, key: dict[str, str], event_id: str) -> dict[str, Any]:
    response = client.get(f"/v1/events/{event_id}", headers=key)
    assert response.status_code == 200, response.text
    outcome: dict[str, Any] = response.json()
    return outcome


def _outcome_once_applied(client: TestClient, key: dict[str, str], event_id: str) -> dict[str, Any]:
    """The event's outcome as soon as it is no longer ``queued`` (or, past the deadline,
    the ``queued`` one, for the caller's assertion to fail on)."""
    deadline = time.monotonic() + DRAIN_DEADLINE_SECONDS
    while True:
        outcome = _outcome(client, key, event_id)
        if outcome["status"] != "queued" or time.monotonic() >= deadline:
            return outcome
        time.sleep(0.02)


def _progress(client: TestClient, key: dict[str, str], enrolment: dict[str, Any]) -> Any:
    response = client.get(f"/v1/enrolments/{enrolment['id']}/progress", headers=key)
    assert response.status_code == 200, response.text
    return response.json()


def _stored_events(database: Database) -> int:
    return database.read(lambda s: s.scalars(select(func.count()).select_from(ReferralEvent)).one())


def test_a_queued_event_is_answered_202_and_applied_by_the_apps_drainer(
    client: TestClient, key: dict[str, str], clock: FrozenClock
) -> None:
    """With ``Prefer: respond-async`` an event is answered 202 ``queued`` at once; the app's
    drainer applies it within moments, as it would have been applied at once, and
    ``GET /v1/events/{id}`` then tells its real outcome."""
    enrolment = _enrol(client, key)
    signup = _signup("signup-bob", "bob", clock.now().isoformat(), code=enrolment["code"])

    response = client.post("/v1/events", json=signup, headers=_with(key, ASYNC))
    assert response.status_code == 202, response.text
    assert response.headers["preference-applied"] == "respond-async"
    assert response.json() == _queued("signup-bob")

    applied = _outcome_once_applied(client, key, "signup-bob")
    assert applied["status"] == "accepted", applied
    assert applied["enrolment_id"] == enrolment["id"]
    assert applied["friend_id"] is not None
    progress = _progress(client, key, enrolment)
    assert progress["friends_counted"] == 1
    assert [friend["id"] for friend in progress["friends"]] == [applied["friend_id"]]


@drainer_off
def test_without_a_drainer_a_queued_event_waits_until_drained(
    client: TestClient, app: FastAPI, key: dict[str, str], database: Database, clock: FrozenClock
) -> None:
    """Nothing applies a queued event but a drain: until then it reads ``queued`` and counts
    for nobody; ``drain_queued_events`` applies it."""
    assert app.state.event_drainer is None
    enrolment = _enrol(client, key)
    signup = _signup("signup-bob", "bob", clock.now().isoformat(), code=enrolment["code"])
    assert client.post("/v1/events", json=signup, headers=_with(key, ASYNC)).status_code == 202

    assert _outcome(client, key, "signup-bob") == _queued("signup-bob")
    before = _progress(client, key, enrolment)
    assert (before["friends_counted"], before["friends"]) == (0, [])

    report = drain_queued_events(database=database, keys=app.state.member_keys, clock=clock)
    assert (report.applied, report.failed, report.waiting, report.parked) == (1, 0, 0, 0)
    applied = _outcome(client, key, "signup-bob")
    assert applied["status"] == "accepted"
    assert applied["enrolment_id"] == enrolment["id"]
    assert _progress(client, key, enrolment)["friends_counted"] == 1
    again = drain_queued_events(database=database, keys=app.state.member_keys, clock=clock)
    assert again.applied == 0  # applied once


@drainer_off
def test_a_queued_event_id_is_an_idempotency_key(
    client: TestClient, app: FastAPI, key: dict[str, str], database: Database, clock: FrozenClock
) -> None:
    """A queued event sent again with the same body answers its outcome so far (``queued``
    before the drain, its real outcome after), with or without the header; with another
    body it is refused: 409 alone, listed as refused in a batch whose others are queued."""
    enrolment = _enrol(client, key)
    at = clock.now().isoformat()
    signup = _signup("signup-bob", "bob", at, code=enrolment["code"])
    first = client.post("/v1/events", json=signup, headers=_with(key, ASYNC))
    assert first.status_code == 202

    replay = client.post("/v1/events", json=signup, headers=_with(key, ASYNC))
    assert replay.status_code == 202
    assert replay.headers["preference-applied"] == "respond-async"
    assert replay.json() == first.json() == _queued("signup-bob")
    # Without the header the route answers at once, but with the outcome so far: the event
    # is neither applied by it nor queued twice. Still queued, it is a 202 (not asked for:
    # no Preference-Applied).
    sync_replay = client.post("/v1/events", json=signup, headers=key)
    assert sync_replay.status_code == 202
    assert "preference-applied" not in sync_replay.headers
    assert sync_replay.json() == _queued("signup-bob")
    sync_batch = client.post("/v1/events", json={"events": [signup]}, headers=key)
    assert sync_batch.status_code == 202
    assert sync_batch.json()["results"] == [_queued("signup-bob")]
    assert (sync_batch.json()["accepted"], sync_batch.json()["queued"]) == (0, 1)
    assert _progress(client, key, enrolment)["friends_counted"] == 0

    changed = {**signup, "email": "someone.else@example.org"}
    for headers in (_with(key, ASYNC), key):
        conflict = client.post("/v1/events", json=changed, headers=headers)
        assert error_of(conflict, 409)["code"] == "event_id_reused"
        assert "someone.else" not in conflict.text
    mixed = client.post(
        "/v1/events",
        json={"events": [changed, _signup("signup-cat", "cat", at, code=enrolment["code"])]},
        headers=_with(key, ASYNC),
    )
    assert mixed.status_code == 202, mixed.text
    body = mixed.json()
    assert (body["accepted"], body["ignored"], body["queued"], body["refused"]) == (0, 0, 1, 1)
    assert body["results"][0]["event_id"] == "signup-bob"
    assert body["results"][0]["code"] == "event_id_reused"
    assert body["results"][1] == _queued("signup-cat")

    report = drain_queued_events(database=database, keys=app.state.member_keys, clock=clock)
    assert report.applied == 2  # bob's first body and cat: the refused body left no trace
    applied = _outcome(client, key, "signup-bob")
    assert applied["status"] == "accepted"
    # Applied: a 200 whether or not the header asks to respond asynchronously, as nothing
    # of the answer waits any more.
    after = client.post("/v1/events", json=signup, headers=_with(key, ASYNC))
    assert after.status_code == 200
    assert "preference-applied" not in after.headers
    assert after.json() == applied
    sync_after = client.post("/v1/events", json=signup, headers=key)
    assert sync_after.status_code == 200
    assert sync_after.json() == applied
    progress = _progress(client, key, enrolment)
    assert progress["friends_counted"] == 2
    assert error_of(client.post("/v1/events", json=changed, headers=key), 409)["code"] == (
        "event_id_reused"
    )


@drainer_off
def test_a_batch_sent_with_respond_async_is_queued_in_order(
    client: TestClient, app: FastAPI, key: dict[str, str], database: Database, clock: FrozenClock
) -> None:
    """A batch with ``Prefer: respond-async`` answers 202: one result per event, in the order
    sent, each new one ``queued`` (and counted so); an event already applied answers its
    outcome. The drain applies the queued ones."""
    enrolment = _enrol(client, key)
    at = clock.now().isoformat()
    earlier = _signup("signup-dan", "dan", at, code=enrolment["code"])
    assert client.post("/v1/events", json=earlier, headers=key).json()["status"] == "accepted"
    names = ["eve", "fay", "gus"]
    batch = [
        _signup(f"signup-{names[0]}", names[0], at, code=enrolment["code"]),
        earlier,
        *(_signup(f"signup-{name}", name, at, code=enrolment["code"]) for name in names[1:]),
    ]

    response = client.post("/v1/events", json={"events": batch}, headers=_with(key, ASYNC))
    assert response.status_code == 202, response.text
    assert response.headers["preference-applied"] == "respond-async"
    body = response.json()
    assert [result["event_id"] for result in body["results"]] == [e["id"] for e in batch]
    assert [result["status"] for result in body["results"]] == [
        "queued",
        "accepted",
        "queued",
        "queued",
    ]
    assert (body["accepted"], body["ignored"], body["queued"], body["refused"]) == (1, 0, 3, 0)
    assert _progress(client, key, enrolment)["friends_counted"] == 1

    report = drain_queued_events(database=database, keys=app.state.member_keys, clock=clock)
    assert (report.applied, report.waiting) == (3, 0)
    for name in names:
        outcome = _outcome(client, key, f"signup-{name}")
        assert (outcome["status"], outcome["enrolment_id"]) == ("accepted", enrolment["id"])
    assert _progress(client, key, enrolment)["friends_counted"] == 4


@drainer_off
@pytest.mark.parametrize(
    "prefer",
    [
        "respond-async",
        "respond-async, wait=5",
        "wait=5, respond-async",
        "RESPOND-ASYNC",
        "respond-async; foo",
        " Respond-Async ",
    ],
)
def test_a_prefer_header_asking_for_respond_async_queues(
    client: TestClient, key: dict[str, str], clock: FrozenClock, prefer: str
) -> None:
    """``respond-async`` is recognised as RFC 7240 writes preferences: in any case, among
    others, with parameters."""
    signup = _signup("signup-bob", "bob", clock.now().isoformat())
    response = client.post("/v1/events", json=signup, headers=_with(key, {"Prefer": prefer}))
    assert response.status_code == 202, response.text
    assert response.headers["preference-applied"] == "respond-async"
    assert response.json() == _queued("signup-bob")
    assert _outcome(client, key, "signup-bob")["status"] == "queued"


@drainer_off
@pytest.mark.parametrize(
    "prefer", [None, "", "handling=lenient", "return=minimal", "respond-asynchronously"]
)
def test_without_respond_async_the_event_is_applied_at_once(
    client: TestClient, key: dict[str, str], clock: FrozenClock, prefer: str | None
) -> None:
    """No ``Prefer``, or one without ``respond-async``: the event is applied before the
    answer (200), and no preference is said to be applied."""
    signup = _signup("signup-bob", "bob", clock.now().isoformat())
    headers = key if prefer is None else _with(key, {"Prefer": prefer})
    response = client.post("/v1/events", json=signup, headers=headers)
    assert response.status_code == 200, response.text
    assert "preference-applied" not in response.headers
    assert response.json()["status"] == "accepted"
    assert _outcome(client, key, "signup-bob")["status"] == "accepted"


@drainer_off
def test_the_api_key_is_checked_before_the_body(
    client: TestClient, key: dict[str, str], database: Database, clock: FrozenClock
) -> None:
    """The events route admits the caller first: a body it would refuse answers 401 without
    an API key and 403 with a key of another scope; with the right key, a bad body is a
    422 ``invalid_request`` and nothing is queued."""
    at = clock.now().isoformat()
    bad = {"id": "e1", "type": "teleport", "at": at}
    not_json = b"{not json"
    # The client's own credentials are an operator's token, not an API key.
    for content in (bad, not_json):
        for headers in (ASYNC, {}):
            kwargs: dict[str, Any] = (
                {"json": content} if isinstance(content, dict) else {"content": content}
            )
            missing = client.post("/v1/events", headers=headers, **kwargs)
            assert error_of(missing, 401)["code"] == "invalid_api_key"
            assert missing.headers["www-authenticate"] == "Bearer"
    consent_only = api_key_headers(database, clock, "consent")
    denied = client.post("/v1/events", json=bad, headers=_with(consent_only, ASYNC))
    assert error_of(denied, 403)["code"] == "api_key_scope_denied"
    good = _signup("signup-bob", "bob", at)
    assert client.post("/v1/events", json=good, headers=_with(consent_only, ASYNC)).status_code == (
        403
    )

    garbled = client.post("/v1/events", content=not_json, headers=_with(key, ASYNC))
    assert error_of(garbled, 422)["code"] == "invalid_request"
    unknown_type = client.post("/v1/events", json=bad, headers=_with(key, ASYNC))
    assert error_of(unknown_type, 422)["code"] == "invalid_request"
    bad_email = {**_signup("e2", "bob", at), "email": "not-an-email"}
    refused = client.post("/v1/events", json=bad_email, headers=_with(key, ASYNC))
    assert error_of(refused, 422)["code"] == "invalid_request"
    assert "not-an-email" not in refused.text
    one_bad = {"events": [_signup("e3", "cat", at), {**_signup("e4", "dan", at), "at": "soon"}]}
    assert error_of(client.post("/v1/events", json=one_bad, headers=_with(key, ASYNC)), 422)[
        "code"
    ] == ("invalid_request")
    assert _stored_events(database) == 0
    assert error_of(client.get("/v1/events/e3", headers=key), 404)["code"] == "event_not_found"

    # The key may be sent in its own header too.
    presented = key["Authorization"].removeprefix("Bearer ")
    by_header = client.post(
        "/v1/events",
        json=good,
        headers={"Authorization": "", "X-Parrain-Api-Key": presented, **ASYNC},
    )
    assert by_header.status_code == 202, by_header.text
    assert _stored_events(database) == 1


@drainer_off
def test_a_queued_event_keeps_no_personal_data_in_clear(
    client: TestClient, app: FastAPI, key: dict[str, str], database: Database, clock: FrozenClock
) -> None:
    """The answer never echoes the event's personal data, and the stored row keeps it only
    sealed (it opens to the event with the app's keys); applied, the sealed body is gone."""
    email = "bob.private@example.org"
    user = "user-bob-private-7781"
    signup = {**_signup("signup-bob", "bob", clock.now().isoformat()), "email": email}
    signup["marketplace_user_id"] = user
    response = client.post("/v1/events", json=signup, headers=_with(key, ASYNC))
    assert response.status_code == 202
    assert email not in response.text
    assert user not in response.text

    row = database.read(lambda s: s.get(ReferralEvent, "signup-bob"))
    assert row is not None
    assert row.queued_key is not None
    assert row.queued_body is not None
    stored = (
        repr((row.type, row.body_hash, row.outcome)).encode() + row.queued_key + row.queued_body
    )
    for secret in (email, user, "bob@", "device-bob"):
        assert secret.encode() not in stored, secret
    opened = open_event(
        event_id=row.id, key=row.queued_key, body=row.queued_body, keys=app.state.member_keys
    )
    assert opened.model_dump(mode="json", include={"id", "type"}) == {
        "id": "signup-bob",
        "type": "signup",
    }
    assert isinstance(opened, SignupEvent)
    assert opened.email.reveal() == email

    drain_queued_events(database=database, keys=app.state.member_keys, clock=clock)
    applied = database.read(lambda s: s.get(ReferralEvent, "signup-bob"))
    assert applied is not None
    assert applied.outcome["status"] == "accepted"
    assert (applied.queued_key, applied.queued_body) == (None, None)


def test_single_queued_events_sent_at_once_share_transactions(
    client: TestClient, app: FastAPI, key: dict[str, str], database: Database, clock: FrozenClock
) -> None:
    """Many requests of one queued event each, at the same time (some sending the same event
    twice, one reusing an id with another body): each answers its own event, several are
    queued per transaction, and every event is stored and applied once."""
    enrolment = _enrol(client, key)  # the key is checked (and remembered) by now
    at = clock.now().isoformat()
    bodies = [
        _signup(f"signup-friend{i}", f"friend{i}", at, code=enrolment["code"]) for i in range(40)
    ]
    conflicting = {**bodies[7], "email": "other@example.org"}
    sends = [*bodies, *bodies[:5], conflicting]  # five sent twice, all at once

    async def send_all() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            return await asyncio.gather(
                *(http.post("/v1/events", json=body, headers=_with(key, ASYNC)) for body in sends)
            )

    # On a thread of its own: a test run earlier in this process may have left an event
    # loop running on this one.
    with ThreadPoolExecutor(1) as thread:
        responses = thread.submit(asyncio.run, send_all()).result(timeout=60)
    refused: list[dict[str, Any]] = []
    for body, response in zip(sends, responses, strict=True):
        if response.status_code == 409:
            assert error_of(response, 409)["code"] == "event_id_reused"
            refused.append(body)
            continue
        assert response.status_code == 202, response.text
        assert response.json() == _queued(body["id"])
    # One body per id: the conflicting one, or the original if the conflicting one came first.
    assert len(refused) == 1
    assert refused[0]["id"] == conflicting["id"]
    sizes = app.state.queued_events.group_sizes
    assert sum(sizes) == len(sends)
    assert max(sizes) > 1, "every event had a transaction of its own"

    assert _stored_events(database) == len(bodies)
    for body in bodies:
        outcome = _outcome_once_applied(client, key, body["id"])
        assert (outcome["status"], outcome["enrolment_id"]) == ("accepted", enrolment["id"])
    assert _progress(client, key, enrolment)["friends_counted"] == len(bodies)


@drainer_off
def test_respond_async_in_a_second_prefer_field_queues(
    client: TestClient, key: dict[str, str], clock: FrozenClock
) -> None:
    """``Prefer: wait=5`` and ``Prefer: respond-async`` as two fields ask for what
    ``Prefer: wait=5, respond-async`` asks for."""
    signup = _signup("signup-bob", "bob", clock.now().isoformat())
    headers = [*key.items(), ("Prefer", "wait=5"), ("Prefer", "respond-async")]
    response = client.post("/v1/events", json=signup, headers=headers)
    assert response.status_code == 202, response.text
    assert response.json() == _queued("signup-bob")


def test_the_drainer_runs_while_the_app_serves_and_finds_events_queued_elsewhere(
    database: Database, clock: FrozenClock
) -> None:
    """The lifespan starts one drainer thread and stops it with the app; meanwhile the thread
    also applies events that another process queued (no request woke it), within its poll."""
    settings = Settings(
        crypto=CryptoSettings(allow_development_keys=True),
        referrals=ReferralSettings(drain_poll_seconds=0.05),
    )
    app = create_app(database=database, clock=clock, settings=settings)
    key = api_key_headers(database, clock, "events")
    elsewhere = _signup("signup-bob", "bob", clock.now().isoformat())
    sealed = seal_events(events=[EVENT.validate_python(elsewhere)], keys=app.state.member_keys)
    assert app.state.event_drainer is None

    def drainer_threads() -> int:
        return sum(thread.name == "parrain-event-drainer" for thread in threading.enumerate())

    before = drainer_threads()
    with TestClient(app) as client:
        drainer = app.state.event_drainer
        assert drainer is not None
        assert drainer_threads() == before + 1
        database.run(lambda s: queue_events(session=s, events=sealed, clock=clock))
        assert _outcome_once_applied(client, key, "signup-bob")["status"] == "accepted"
    assert app.state.event_drainer is None
    assert drainer_threads() == before
    assert drainer.applied == 1  # its round finished before it stopped


def test_the_openapi_document_describes_respond_async(client: TestClient) -> None:
    """The events route documents its ``Prefer`` header, its 202 answer, the API keys it
    takes (checked by the route itself, not a dependency) and its body."""
    document = client.get("/openapi.json").json()
    operation = document["paths"]["/v1/events"]["post"]

    prefer = [p for p in operation.get("parameters", []) if p["name"] == "Prefer"]
    assert len(prefer) == 1
    assert prefer[0]["in"] == "header"
    assert prefer[0]["required"] is False
    assert "respond-async" in prefer[0]["description"]
    assert {"200", "202", "401", "403", "409", "413", "422"} <= set(operation["responses"])
    accepted_later = operation["responses"]["202"]
    assert "respond-async" in accepted_later["description"]
    schema = accepted_later["content"]["application/json"]["schema"]
    refs = {option.get("$ref") for option in schema["anyOf"]}
    assert {"#/components/schemas/EventOutcome", "#/components/schemas/BatchResult"} <= refs
    assert operation["security"] == [{"ApiKeyBearer": []}, {"ApiKeyHeader": []}]
    schemes = document["components"]["securitySchemes"]
    assert {"ApiKeyBearer", "ApiKeyHeader"} <= set(schemes)
    body = operation["requestBody"]
    assert body["required"] is True
    body_schema = body["content"]["application/json"]["schema"]
    [batch, single] = body_schema["oneOf"]
    assert batch == {"$ref": "#/components/schemas/EventBatch"}
    assert {"#/components/schemas/SignupEvent", "#/components/schemas/InstallEvent"} <= {
        option["$ref"] for option in single["oneOf"]
    }
    assert "BatchResult" in document["components"]["schemas"]
    queued = document["components"]["schemas"]["BatchResult"]["properties"]["queued"]
    assert queued["type"] == "integer"
    statuses = document["components"]["schemas"]["EventOutcome"]["properties"]["status"]
    assert "queued" in statuses["enum"]
