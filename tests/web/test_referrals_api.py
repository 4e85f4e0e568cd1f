"""The referral API over HTTP: enrolment, the sponsorship link, events, progress, funnel."""

from __future__ import annotations

import html
import threading
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from parrain.db.session import Database
from parrain.kit.clock import FrozenClock
from tests.web.helpers import api_key_headers, create_campaign, declare_programme, error_of

PHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148"


@pytest.fixture
def key(database: Database, clock: FrozenClock) -> dict[str, str]:
    return api_key_headers(database, clock, "events")


def _live_campaign(client: TestClient, **rules: Any) -> dict[str, Any]:
    campaign = create_campaign(
        client,
        starts_at="2026-02-01T00:00:00Z",
        friends_needed=2,
        reward_cash_minor=2000,
        reward_coupon_minor=3000,
        **rules,
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


def _member(name: str, market: str = "GB") -> dict[str, Any]:
    return {
        "member": {
            "market": market,
            "marketplace_user_id": f"user-{name}",
            "email": f"{name}@example.org",
            "username": name,
        }
    }


def _enrol(client: TestClient, key: dict[str, str], campaign: dict[str, Any]) -> dict[str, Any]:
    response = client.post(
        f"/v1/campaigns/{campaign['id']}/enrolments", json=_member("ann"), headers=key
    )
    assert response.status_code == 201, response.text
    enrolment: dict[str, Any] = response.json()
    return enrolment


def _signup(event_id: str, name: str, device: str, at: str) -> dict[str, Any]:
    return {
        "id": event_id,
        "type": "signup",
        "at": at,
        "market": "GB",
        "marketplace_user_id": f"user-{name}",
        "email": f"{name}@example.org",
        "username": name,
        "device_id": device,
    }


def test_enrolment_needs_an_events_key(
    client: TestClient, database: Database, clock: FrozenClock
) -> None:
    campaign = _live_campaign(client)
    path = f"/v1/campaigns/{campaign['id']}/enrolments"

    missing = client.post(path, json=_member("ann"))
    assert error_of(missing, 401)["code"] == "invalid_api_key"
    assert missing.headers["www-authenticate"] == "Bearer"
    consent_only = api_key_headers(database, clock, "consent")
    denied = client.post(path, json=_member("ann"), headers=consent_only)
    assert error_of(denied, 403)["code"] == "api_key_scope_denied"


def test_a_member_enrols_shares_a_link_and_friends_earn_the_prize(
    client: TestClient, key: dict[str, str], clock: FrozenClock
) -> None:
    campaign = _live_campaign(client, landing_url="https://apps.example.com/app?ref=parrain")
    enrolment = _enrol(client, key, campaign)
    assert enrolment["link"] == f"http://127.0.0.1:8000/r/{enrolment['code']}"
    assert enrolment["deadline_at"].startswith("2026-03-02T09:00:00")

    again = client.post(
        f"/v1/campaigns/{campaign['id']}/enrolments", json=_member("ann"), headers=key
    )
    assert error_of(again, 409)["code"] == "already_enrolled"

    for index, name in enumerate(["bob", "cat"], start=1):
        # The code as a person might type it: lower case, with the display hyphens.
        typed = enrolment["code_display"].lower()
        visit = client.get(  # each friend on their own phone
            f"/r/{typed}", headers={"User-Agent": f"{PHONE} {name}"}, follow_redirects=False
        )
        assert visit.status_code == 302
        location = visit.headers["location"]
        assert location.startswith("https://apps.example.com/app?ref=parrain&parrain_token=")
        token = location.rsplit("=", 1)[1]
        assert "parrain_device" in visit.cookies
        client.cookies.clear()
        install = {
            "id": f"install-{name}",
            "type": "install",
            "at": clock.now().isoformat(),
            "market": "GB",
            "device_id": f"device-{name}",
            "token": token,
        }
        signup = _signup(f"signup-{name}", name, f"device-{name}", clock.now().isoformat())
        batch = client.post("/v1/events", json={"events": [install, signup]}, headers=key)
        assert batch.status_code == 200, batch.text
        assert batch.json()["accepted"] == 2
        progress = client.get(f"/v1/enrolments/{enrolment['id']}/progress", headers=key).json()
        assert progress["friends_counted"] == index

    reward = progress["reward"]
    assert reward["status"] == "held"
    assert reward["cash_minor"] == 2000
    assert reward["coupon_minor"] == 3000
    assert "£50.00" in reward["message"]
    funnel = client.get(f"/v1/campaigns/{campaign['id']}/funnel").json()
    assert {k: funnel[k] for k in ("clicks", "installs", "signups", "qualified", "rewarded")} == {
        "clicks": 2,
        "installs": 2,
        "signups": 2,
        "qualified": 2,
        "rewarded": 1,
    }
    budget = client.get(f"/v1/campaigns/{campaign['id']}").json()["budget"]
    assert budget["held_minor"] == 5000


def test_an_event_id_is_an_idempotency_key(
    client: TestClient, key: dict[str, str], clock: FrozenClock
) -> None:
    campaign = _live_campaign(client)
    enrolment = _enrol(client, key, campaign)
    at = clock.now().isoformat()
    signup = {**_signup("signup-1", "bob", "device-bob", at), "code": enrolment["code"]}

    first = client.post("/v1/events", json=signup, headers=key)
    replay = client.post("/v1/events", json=signup, headers=key)
    assert first.status_code == replay.status_code == 200
    assert first.json() == replay.json()
    assert first.json()["status"] == "accepted"
    assert first.json()["enrolment_id"] == enrolment["id"]

    stored = client.get("/v1/events/signup-1", headers=key)
    assert stored.status_code == 200
    assert stored.json() == first.json()
    assert error_of(client.get("/v1/events/never-sent", headers=key), 404)["code"] == (
        "event_not_found"
    )
    assert client.get("/v1/events/signup-1").status_code == 401

    changed = {**signup, "email": "someone.else@example.org"}
    conflict = client.post("/v1/events", json=changed, headers=key)
    error = error_of(conflict, 409)
    assert error["code"] == "event_id_reused"
    assert "someone.else" not in conflict.text

    mixed = client.post(
        "/v1/events",
        json={"events": [changed, _signup("signup-2", "cat", "device-cat", at)]},
        headers=key,
    )
    body = mixed.json()
    assert (body["accepted"], body["ignored"], body["refused"]) == (1, 0, 1)
    assert body["results"][0]["code"] == "event_id_reused"
    progress = client.get(f"/v1/enrolments/{enrolment['id']}/progress", headers=key).json()
    assert len(progress["friends"]) == 1  # cat typed no code: not attributed


def test_bad_events_are_refused_whole_with_a_clear_error(
    client: TestClient, key: dict[str, str], clock: FrozenClock
) -> None:
    at = clock.now().isoformat()
    unknown_type = client.post(
        "/v1/events", json={"id": "e1", "type": "teleport", "at": at}, headers=key
    )
    assert error_of(unknown_type, 422)["code"] == "invalid_request"
    naive = _signup("e2", "bob", "device-bob", "2026-03-01T10:00:00")
    assert error_of(client.post("/v1/events", json=naive, headers=key), 422)["code"] == (
        "invalid_request"
    )
    duplicate_ids = {"events": [_signup("e3", "a", "d1", at), _signup("e3", "b", "d2", at)]}
    refused = error_of(client.post("/v1/events", json=duplicate_ids, headers=key), 422)
    assert "e3" in refused["message"] or "e3" in str(refused["details"])
    too_many = {"events": [_signup(f"e{i}", f"u{i}", f"d{i}", at) for i in range(1001)]}
    assert error_of(client.post("/v1/events", json=too_many, headers=key), 422)["code"] == (
        "invalid_request"
    )
    bad_email = {**_signup("e4", "bob", "device-bob", at), "email": "not-an-email"}
    response = client.post("/v1/events", json=bad_email, headers=key)
    assert error_of(response, 422)["code"] == "invalid_request"
    assert "not-an-email" not in response.text  # personal input is never echoed


def test_a_mistyped_or_unknown_link_gets_a_friendly_page(
    client: TestClient, key: dict[str, str]
) -> None:
    campaign = _live_campaign(client)
    enrolment = _enrol(client, key, campaign)
    code = enrolment["code"]
    swapped = code[1] + code[0] + code[2:] if code[0] != code[1] else code[:-1] + "0"

    mistyped = client.get(f"/r/{swapped}", headers={"User-Agent": PHONE})
    assert mistyped.status_code == 404
    assert mistyped.headers["content-type"].startswith("text/html")
    assert "mistyped" in mistyped.text
    french = client.get("/r/not-a-code", headers={"Accept-Language": "fr-FR,fr;q=0.9"})
    assert french.status_code == 404
    assert "Ce lien d'invitation ne fonctionne pas" in html.unescape(french.text)
    # Without a landing URL, the link shows the invitation itself, with the code to type.
    invitation = client.get(f"/r/{code}", headers={"User-Agent": PHONE})
    assert invitation.status_code == 200
    assert enrolment["code_display"] in invitation.text


def test_bots_and_repeat_visits_do_not_multiply_clicks(
    client: TestClient, key: dict[str, str], clock: FrozenClock
) -> None:
    campaign = _live_campaign(client, landing_url="https://apps.example.com/app")
    enrolment = _enrol(client, key, campaign)
    link = f"/r/{enrolment['code']}"
    for agent in ("facebookexternalhit/1.1", "Slackbot-LinkExpanding 1.0", "curl/8.5.0"):
        visit = client.get(link, headers={"User-Agent": agent}, follow_redirects=False)
        assert visit.status_code == 302
        assert "parrain_token" not in visit.headers["location"]
    first = client.get(link, headers={"User-Agent": PHONE}, follow_redirects=False)
    clock.advance(timedelta(minutes=5))
    second = client.get(link, headers={"User-Agent": PHONE}, follow_redirects=False)
    assert first.headers["location"] == second.headers["location"]  # the same token
    client.cookies.clear()
    other_device = client.get(
        link, headers={"User-Agent": PHONE + " other"}, follow_redirects=False
    )
    assert other_device.headers["location"] != first.headers["location"]
    funnel = client.get(f"/v1/campaigns/{campaign['id']}/funnel").json()
    assert funnel["clicks"] == 2


def test_progress_of_an_unknown_enrolment_is_a_404(client: TestClient, key: dict[str, str]) -> None:
    response = client.get(
        "/v1/enrolments/0190f0e4-0000-7000-8000-000000000000/progress", headers=key
    )
    assert error_of(response, 404)["code"] == "enrolment_not_found"


def test_enrolment_refusals_say_why(client: TestClient, key: dict[str, str]) -> None:
    campaign = _live_campaign(client)
    other_market = client.post(
        f"/v1/campaigns/{campaign['id']}/enrolments", json=_member("zoe", "FR"), headers=key
    )
    error = error_of(other_market, 409)
    assert error["code"] == "enrolment_refused"
    assert error["details"]["reason"] == "other_market"
    assert client.post(f"/v1/campaigns/{campaign['id']}/pause").status_code == 200
    paused = client.post(
        f"/v1/campaigns/{campaign['id']}/enrolments", json=_member("ann"), headers=key
    )
    assert error_of(paused, 409)["details"]["reason"] == "paused"


def test_single_events_sent_at_once_share_transactions_and_each_gets_its_outcome(
    client: TestClient, key: dict[str, str], clock: FrozenClock
) -> None:
    """Many requests of one event each, at the same time (some sending the same event twice,
    one reusing an id with another body): each answers its own event's outcome, every event
    is applied once, and the process applied several of them per transaction."""
    campaign = _live_campaign(client)
    enrolment = _enrol(client, key, campaign)
    at = clock.now().isoformat()
    friends = [f"friend{i}" for i in range(24)]
    bodies = [
        {**_signup(f"signup-{name}", name, f"device-{name}", at), "code": enrolment["code"]}
        for name in friends
    ]
    sends = [*bodies, *bodies[:6]]  # six sent twice, concurrently with the first copies
    conflicting = {**bodies[7], "email": "other@example.org"}
    answers: list[tuple[dict[str, Any], int, dict[str, Any]]] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def send(part: list[dict[str, Any]]) -> None:
        start.wait()
        for body in part:
            response = client.post("/v1/events", json=body, headers=key)
            with lock:
                answers.append((body, response.status_code, response.json()))

    parts = [sends[i::8] for i in range(8)]
    parts[0].append(conflicting)
    threads = [threading.Thread(target=send, args=(part,)) for part in parts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert len(answers) == len(sends) + 1
    by_id: dict[str, dict[str, Any]] = {}
    for body, status, answer in answers:
        if body is conflicting:
            # Refused if it came after the original, or applied first (and then the
            # original's copy is the one refused): either way one body per id.
            assert status in (200, 409)
            continue
        if status == 409:
            assert body["id"] == conflicting["id"]
            assert answer["error"]["code"] == "event_id_reused"
            continue
        assert status == 200, answer
        assert answer["event_id"] == body["id"]
        assert answer["status"] == "accepted"
        assert by_id.setdefault(body["id"], answer) == answer  # a replay answers the first
    progress = client.get(f"/v1/enrolments/{enrolment['id']}/progress", headers=key).json()
    assert len(progress["friends"]) in (len(friends), len(friends) - 1)  # friend7: one body
    sizes = client.app.state.single_events.group_sizes  # type: ignore[attr-defined]
    assert sum(sizes) >= len(bodies)
    assert max(sizes) > 1, "every event had a transaction of its own"
