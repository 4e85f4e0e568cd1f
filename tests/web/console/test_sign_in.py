from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient

from parrain.audit import service as audit
from parrain.config import ConsoleSettings, CryptoSettings, Settings, WebSettings
from parrain.db.session import Database
from parrain.kit.clock import FrozenClock
from parrain.operators import service as operators
from parrain.operators.roles import Role
from parrain.operators.schemas import SignInPolicy
from parrain.web.app import create_app
from parrain.web.pages.console.session import SESSION_COOKIE, SIGN_IN_COOKIE
from tests.operators.helpers import CHEAP_HASHER, PASSWORD, create_operator
from tests.web.console.helpers import csrf_of, sign_in, signed_in_as


def audit_actions(database: Database) -> list[str]:
    return [e.action for e in database.read(lambda s: audit.list_entries(session=s, limit=500))]


def test_the_sign_in_page_is_a_labelled_form_with_a_csrf_token(client: TestClient) -> None:
    page = client.get("/console/sign-in")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["cache-control"] == "no-store"
    assert '<label for="username">Username</label>' in page.text
    assert '<label for="password">Password</label>' in page.text
    assert 'autocomplete="current-password"' in page.text
    assert len(csrf_of(page)) >= 40
    cookie = page.headers["set-cookie"]
    assert cookie.startswith(f"{SIGN_IN_COOKIE}=")
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie or "samesite=strict" in cookie.lower()


def test_signing_in_opens_a_session_in_a_strict_http_only_cookie(
    client: TestClient, database: Database, clock: FrozenClock
) -> None:
    create_operator(database, clock, "alice", Role.MARKETER)
    response = sign_in(client, "ALICE")
    assert response.status_code == 303
    assert response.headers["location"] == "/console"
    cookies = response.headers.get_list("set-cookie")
    session_cookie = next(c for c in cookies if c.startswith(f"{SESSION_COOKIE}="))
    assert "HttpOnly" in session_cookie
    assert "samesite=strict" in session_cookie.lower()
    assert "Max-Age=43200" in session_cookie  # 12 hours, the default lifetime
    assert "Path=/" in session_cookie
    assert "Secure" not in session_cookie  # this test app serves plain HTTP
    assert any(c.startswith(f'{SIGN_IN_COOKIE}=""') for c in cookies)  # forgotten
    home = client.get("/console")
    assert home.status_code == 200
    assert "Signed in as alice (Marketer)" in home.text
    assert audit_actions(database)[-1] == "operator.signed_in"


def test_signing_in_goes_back_to_the_page_asked_for(
    client: TestClient, database: Database, clock: FrozenClock
) -> None:
    create_operator(database, clock, "alice", Role.AUDITOR)
    asked = client.get("/console/campaigns/0190f0a0-0000-7000-8000-000000000000")
    assert asked.status_code == 303
    target = asked.headers["location"]
    assert target == (
        "/console/sign-in?next=/console/campaigns/0190f0a0-0000-7000-8000-000000000000"
    )
    form = client.get(target)
    assert 'name="next" value="/console/campaigns/0190f0a0' in form.text
    response = client.post(
        "/console/sign-in",
        data={
            "username": "alice",
            "password": PASSWORD,
            "csrf_token": csrf_of(form),
            "next": "/console/campaigns/0190f0a0-0000-7000-8000-000000000000",
        },
    )
    assert response.headers["location"].startswith("/console/campaigns/0190f0a0")


def test_signing_in_never_sends_elsewhere(
    client: TestClient, database: Database, clock: FrozenClock
) -> None:
    create_operator(database, clock, "alice", Role.AUDITOR)
    form = client.get("/console/sign-in")
    response = client.post(
        "/console/sign-in",
        data={
            "username": "alice",
            "password": PASSWORD,
            "csrf_token": csrf_of(form),
            "next": "//evil.example/console",
        },
    )
    assert response.headers["location"] == "/console"


def test_a_wrong_password_shows_one_message_for_unknown_and_known_users(
    client: TestClient, database: Database, clock: FrozenClock
) -> None:
    create_operator(database, clock, "alice")
    wrong = sign_in(client, "alice", "not my password at all")
    unknown = sign_in(client, "nobody", "not my password at all")
    for response in (wrong, unknown):
        assert response.status_code == 400
        assert "The username or password is not right." in response.text
        assert "not my password" not in response.text
        assert SESSION_COOKIE not in response.headers.get("set-cookie", "")
    assert 'value="alice"' in wrong.text  # the username is kept, the password is not
    assert client.get("/console").status_code == 303


def test_the_lockout_message_says_until_when(
    client: TestClient, database: Database, clock: FrozenClock
) -> None:
    create_operator(database, clock, "alice")
    sign_in(client, "alice", "wrong password one")
    sign_in(client, "alice", "wrong password two")
    locked = sign_in(client, "alice", "wrong password three")
    assert locked.status_code == 423
    assert "This account is locked after too many wrong passwords." in locked.text
    assert "Try again after 1 Mar 2026, 09:15:00 UTC." in locked.text
    right_but_locked = sign_in(client, "alice")
    assert right_but_locked.status_code == 423
    clock.advance(timedelta(minutes=15))
    assert sign_in(client, "alice").status_code == 303
    assert "operator.locked_out" in audit_actions(database)


def test_the_lockout_message_in_french(
    client: TestClient, database: Database, clock: FrozenClock
) -> None:
    create_operator(database, clock, "alice")
    for attempt in range(3):
        response = sign_in(client, "alice", f"wrong password {attempt}")
    client.cookies.set("parrain_lang", "fr")
    response = sign_in(client, "alice")
    assert response.status_code == 423
    assert response.headers["content-language"] == "fr"
    assert "Ce compte est bloqué" in response.text


def test_a_disabled_account_is_told_so_only_with_the_right_password(
    client: TestClient, database: Database, clock: FrozenClock
) -> None:
    alice = create_operator(database, clock, "alice")
    database.run(
        lambda s: operators.set_disabled(
            session=s, operator_id=alice.id, disabled=True, actor="operator:test", clock=clock
        )
    )
    assert "This account is disabled." in sign_in(client, "alice").text
    assert "This account is disabled." not in sign_in(client, "alice", "a wrong password").text


def test_the_sign_in_form_without_or_with_a_forged_csrf_token_is_refused(
    client: TestClient, database: Database, clock: FrozenClock
) -> None:
    create_operator(database, clock, "alice")
    form = client.get("/console/sign-in")
    fields = {"username": "alice", "password": PASSWORD}
    missing = client.post("/console/sign-in", data=fields)
    forged = client.post("/console/sign-in", data={**fields, "csrf_token": "forged-token"})
    client.cookies.clear()  # a cross-site form: the right token shape, no cookie of ours
    no_cookie = client.post("/console/sign-in", data={**fields, "csrf_token": csrf_of(form)})
    for response in (missing, forged, no_cookie):
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "csrf_failed"
        assert SESSION_COOKIE not in response.headers.get("set-cookie", "")
    assert "operator.signed_in" not in audit_actions(database)


def test_signing_out_ends_the_session_on_the_server(
    client: TestClient, database: Database, clock: FrozenClock
) -> None:
    create_operator(database, clock, "alice")
    sign_in(client, "alice")
    token = client.cookies[SESSION_COOKIE]
    home = client.get("/console")
    response = client.post("/console/sign-out", data={"csrf_token": csrf_of(home)})
    assert response.status_code == 303
    assert response.headers["location"] == "/console/sign-in"
    assert f'{SESSION_COOKIE}=""' in response.headers["set-cookie"]
    assert "You are signed out." in client.get("/console/sign-in").text
    # The old cookie, replayed, opens nothing: the session was revoked, not only forgotten.
    client.cookies.set(SESSION_COOKIE, token)
    assert client.get("/console").status_code == 303
    assert (
        database.run(
            lambda s: operators.resume_session(
                session=s, token=token, policy=SignInPolicy(), clock=clock
            )
        )
        is None
    )
    assert audit_actions(database)[-1] == "operator.signed_out"


def test_signing_out_needs_the_session_csrf_token(
    client: TestClient, database: Database, clock: FrozenClock
) -> None:
    signed_in_as(client, database, clock, Role.AUDITOR)
    response = client.post("/console/sign-out", data={"csrf_token": "forged"})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "csrf_failed"
    assert client.get("/console").status_code == 200  # still signed in


def test_an_expired_session_sends_back_to_sign_in(
    client: TestClient, database: Database, clock: FrozenClock
) -> None:
    signed_in_as(client, database, clock, Role.MARKETER)
    assert client.get("/console").status_code == 200
    clock.advance(timedelta(minutes=31))  # idle past the 30 minutes
    response = client.get("/console")
    assert response.status_code == 303
    assert response.headers["location"] == "/console/sign-in?next=/console"
    assert f'{SESSION_COOKIE}=""' in " ".join(response.headers.get_list("set-cookie"))
    page = client.get(response.headers["location"])
    assert "Your session has ended: sign in again to go on." in page.text


def test_a_session_expires_after_its_lifetime_even_when_active(
    client: TestClient, database: Database, clock: FrozenClock
) -> None:
    signed_in_as(client, database, clock, Role.MARKETER)
    for _ in range(12 * 3 - 1):
        clock.advance(timedelta(minutes=20))
        assert client.get("/console").status_code == 200
    clock.advance(timedelta(minutes=20))  # 12 hours after the sign-in
    assert client.get("/console").status_code == 303


def test_on_https_the_cookies_are_secure_and_host_only(
    database: Database, clock: FrozenClock
) -> None:
    settings = Settings(
        crypto=CryptoSettings(allow_development_keys=True),
        web=WebSettings(cookie_secure=True),
        console=ConsoleSettings(),
    )
    app = create_app(database=database, clock=clock, settings=settings)
    app.state.password_hasher = CHEAP_HASHER
    create_operator(database, clock, "alice")
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        form = client.get("/console/sign-in")
        assert form.headers["set-cookie"].startswith(f"__Host-{SIGN_IN_COOKIE}=")
        assert "Secure" in form.headers["set-cookie"]
        response = client.post(
            "/console/sign-in",
            data={"username": "alice", "password": PASSWORD, "csrf_token": csrf_of(form)},
        )
        assert response.status_code == 303
        session_cookie = next(
            c
            for c in response.headers.get_list("set-cookie")
            if c.startswith(f"__Host-{SESSION_COOKIE}=")
        )
        assert "Secure" in session_cookie
        assert "Domain" not in session_cookie
        assert client.get("/console").status_code == 200
