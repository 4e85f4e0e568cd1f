"""``/m/enter``: a valid token opens a session and leaves the address bar at once; every
other token is refused with its reason and opens nothing; the session cookie is sealed."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from parrain.config import DEVELOPMENT_MEMBER_TOKEN_SECRET, CryptoSettings, Settings
from parrain.db.session import Database
from parrain.kit.clock import FrozenClock
from parrain.web.app import create_app
from parrain.web.pages.member.session import COOKIE
from tests.referrals.programme import Programme
from tests.web.member.pages import enter, text_of, token_for


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _hand_signed(clock: FrozenClock, **claims: object) -> str:
    issued = int(clock.now().timestamp())
    body = {
        "aud": "parrain-member",
        "sub": "user-ann",
        "market": "GB",
        "iat": issued,
        "exp": issued + 300,
        "nonce": "abcdefghijklmnopqrstuv",
        **claims,
    }
    head = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = _b64(json.dumps(body).encode())
    signature = hmac.new(
        DEVELOPMENT_MEMBER_TOKEN_SECRET, f"{head}.{payload}".encode(), hashlib.sha256
    ).digest()
    return f"{head}.{payload}.{_b64(signature)}"


def test_an_enrolled_member_enters_to_their_progress(
    client: TestClient, clock: FrozenClock, programme: Programme
) -> None:
    programme.enrol("ann")
    entered = enter(client, clock, "ann")
    assert entered.status_code == 303
    assert entered.headers["location"] == "/m"
    assert entered.headers["referrer-policy"] == "no-referrer"
    cookie = entered.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Path=/m" in cookie
    assert "Max-Age=3600" in cookie
    assert "Secure" not in cookie  # the tests' settings turn it off, as the demo does
    assert "user-ann" not in cookie  # sealed, not merely signed
    assert client.get("/m").status_code == 200


def test_cookies_are_secure_unless_turned_off(
    database: Database, clock: FrozenClock, programme: Programme
) -> None:
    settings = Settings(crypto=CryptoSettings(allow_development_keys=True))  # the default
    app = create_app(database=database, clock=clock, settings=settings)
    with TestClient(app, base_url="https://testserver") as client:
        assert "Secure" in enter(client, clock, "ann").headers["set-cookie"]


def test_someone_not_enrolled_enters_to_the_enrolment_page(
    client: TestClient, clock: FrozenClock, programme: Programme
) -> None:
    entered = enter(client, clock, "zoe")
    assert entered.status_code == 303
    assert entered.headers["location"] == "/m/enrol"
    assert "Join Cash Rewards" in text_of(client.get("/m/enrol"))


def test_the_language_choice_survives_the_entry(
    client: TestClient, clock: FrozenClock, programme: Programme
) -> None:
    token = token_for(clock, "zoe")
    entered = client.get("/m/enter", params={"token": token, "lang": "fr"}, follow_redirects=False)
    assert entered.headers["location"] == "/m/enrol?lang=fr"


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (lambda c: token_for(c, "ann", now=c.now() - timedelta(minutes=7)), "member_token_expired"),
        (
            lambda c: token_for(c, "ann", now=c.now() + timedelta(minutes=5)),
            "member_token_not_yet_valid",
        ),
        (lambda c: _hand_signed(c, aud="parrain-console"), "member_token_wrong_audience"),
        (lambda c: _hand_signed(c)[:-3] + "AAA", "member_token_bad_signature"),
        (
            lambda c: _hand_signed(c, exp=int(c.now().timestamp()) + 3600),
            "member_token_too_long_lived",
        ),
        (lambda c: "not-a-token", "member_token_malformed"),
        (lambda c: "", "member_token_malformed"),
        (lambda c: _hand_signed(c) * 20, "member_token_malformed"),
    ],
    ids=[
        "expired",
        "not-yet-valid",
        "audience",
        "tampered",
        "too-long-lived",
        "malformed",
        "missing",
        "oversized",
    ],
)
def test_a_bad_token_opens_nothing(
    client: TestClient,
    clock: FrozenClock,
    programme: Programme,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    make: object,
    code: str,
) -> None:
    programme.enrol("ann")
    token = make(clock)  # type: ignore[operator]
    with caplog.at_level(logging.DEBUG):
        entered = client.get("/m/enter", params={"token": token}, follow_redirects=False)
    assert entered.status_code == 303  # the token leaves the address bar at once
    assert entered.headers["location"] == f"/m/refused?reason={code}"
    assert "set-cookie" not in entered.headers
    refused = client.get(entered.headers["location"])
    assert refused.status_code == 401
    assert refused.headers["content-type"].startswith("text/html")
    assert "set-cookie" not in refused.headers
    assert code in refused.text
    assert "This link no longer works" in text_of(refused)
    if token:
        assert token not in refused.text
        # The test client itself logs the URL it asks for; the server logs nothing of it.
        server_lines = [r.getMessage() for r in caplog.records if r.name != "httpx"]
        assert not any(token in line for line in server_lines)
        captured = capsys.readouterr()
        assert token not in captured.out + captured.err
    assert client.get("/m").status_code == 401


def test_a_refused_token_is_explained_in_french(
    client: TestClient, clock: FrozenClock, programme: Programme
) -> None:
    old = token_for(clock, "ann", now=clock.now() - timedelta(hours=1))
    refused = client.get("/m/enter", params={"token": old, "lang": "fr"})
    assert refused.status_code == 401
    assert "Ce lien ne fonctionne plus" in text_of(refused)


def test_without_a_session_every_page_says_to_open_it_from_the_app(
    client: TestClient, programme: Programme
) -> None:
    for path in ("/m", "/m/enrol", "/m/consent", "/m/data", "/m/data/export.json", "/m/data/erase"):
        page = client.get(path)
        assert page.status_code == 401, path
        assert "Open this page from the app" in text_of(page)
    assert "Ouvrez cette page depuis l'application" in text_of(client.get("/m?lang=fr"))


def test_a_tampered_or_foreign_session_cookie_is_refused(
    client: TestClient, clock: FrozenClock, programme: Programme
) -> None:
    programme.enrol("ann")
    enter(client, clock, "ann")
    sealed = client.cookies[COOKIE]
    flipped = sealed[:20] + ("A" if sealed[20] != "A" else "B") + sealed[21:]
    client.cookies.set(COOKIE, flipped, path="/m")
    assert client.get("/m").status_code == 401
    client.cookies.set(COOKIE, "garbage", path="/m")
    assert client.get("/m").status_code == 401
    client.cookies.set(COOKIE, sealed, path="/m")
    assert client.get("/m").status_code == 200


def test_the_session_ends_after_an_hour(
    client: TestClient, clock: FrozenClock, programme: Programme
) -> None:
    programme.enrol("ann")
    enter(client, clock, "ann")
    clock.advance(timedelta(minutes=59))
    assert client.get("/m").status_code == 200
    clock.advance(timedelta(minutes=2))
    assert client.get("/m").status_code == 401
