"""The API's authorization matrix: every route of the app outside the pages × no
credential, an operator token of each role, and an integration key of each scope.

What each route needs is written here once; what each role holds comes from
:mod:`parrain.operators.roles`. A route the app serves without an entry fails the first test,
so an endpoint cannot ship without saying who may call it. (Console pages have their own
matrix in ``tests/web/console/test_authorization.py``; member pages take a member's token,
``tests/web/member/``.)
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Final

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from parrain.access.schemas import ApiKeyScope
from parrain.db.session import Database
from parrain.kit.clock import FrozenClock
from parrain.operators import service as operators
from parrain.operators.roles import Permission, Role, allows
from parrain.operators.schemas import SessionKind
from parrain.web.pages.console.session import SESSION_COOKIE
from tests.operators.helpers import POLICY, create_operator
from tests.web.console.test_authorization import served_routes
from tests.web.helpers import api_key_headers, operator_headers

PUBLIC: Final = "public"
#: Routes of pages, documentation and static files: not part of this matrix.
PAGES: Final = ("/console", "/m", "/static", "/docs")

V, E, L = Permission.CAMPAIGNS_VIEW, Permission.CAMPAIGNS_EDIT, Permission.CAMPAIGNS_LIFECYCLE
EVENTS, CONSENT, PRIVACY = ApiKeyScope.EVENTS, ApiKeyScope.CONSENT, ApiKeyScope.PRIVACY

NEEDS: Final[dict[tuple[str, str], Permission | ApiKeyScope | str]] = {
    ("GET", "/health"): PUBLIC,
    ("GET", "/health/live"): PUBLIC,
    ("GET", "/r/{code}"): PUBLIC,
    # PayPal calls it; every event is verified with PayPal itself (ADR 19).
    ("POST", "/v1/paypal/webhooks"): PUBLIC,
    # Members and regulators follow a receipt's link to the notice it rests on.
    ("GET", "/v1/campaigns/{campaign_id}/notices/{language}"): PUBLIC,
    ("POST", "/v1/campaigns"): E,
    ("GET", "/v1/campaigns"): V,
    ("GET", "/v1/campaigns/{campaign_id}"): V,
    ("PATCH", "/v1/campaigns/{campaign_id}"): E,
    ("POST", "/v1/campaigns/{campaign_id}/funding"): E,
    ("POST", "/v1/campaigns/{campaign_id}/launch"): L,
    ("POST", "/v1/campaigns/{campaign_id}/pause"): L,
    ("POST", "/v1/campaigns/{campaign_id}/resume"): L,
    ("POST", "/v1/campaigns/{campaign_id}/end"): L,
    ("GET", "/v1/campaigns/{campaign_id}/funnel"): V,
    ("PUT", "/v1/campaigns/{campaign_id}/declaration"): E,
    ("GET", "/v1/campaigns/{campaign_id}/declaration"): V,
    ("GET", "/v1/campaigns/{campaign_id}/declaration/policy"): V,
    ("GET", "/v1/ledger/accounts"): Permission.PAYOUTS_VIEW,
    ("GET", "/v1/ledger/accounts/{account_id}"): Permission.PAYOUTS_VIEW,
    ("GET", "/v1/ledger/balances"): Permission.PAYOUTS_VIEW,
    ("GET", "/v1/ledger/check"): Permission.PAYOUTS_VIEW,
    ("GET", "/v1/audit/entries"): Permission.AUDIT_VIEW,
    ("GET", "/v1/audit/verify"): Permission.AUDIT_VIEW,
    ("POST", "/v1/campaigns/{campaign_id}/enrolments"): EVENTS,
    ("GET", "/v1/enrolments/{enrolment_id}"): EVENTS,
    ("GET", "/v1/enrolments/{enrolment_id}/progress"): EVENTS,
    ("POST", "/v1/events"): EVENTS,
    ("GET", "/v1/events/{event_id}"): EVENTS,
    ("GET", "/v1/coupons/{code}"): EVENTS,
    ("POST", "/v1/coupons/{code}/redeem"): EVENTS,
    ("GET", "/v1/members/{member_id}/coupons"): EVENTS,
    ("POST", "/v1/members/{member_id}/consents/shown"): CONSENT,
    ("POST", "/v1/members/{member_id}/consents/grant"): CONSENT,
    ("POST", "/v1/members/{member_id}/consents/refuse"): CONSENT,
    ("POST", "/v1/members/{member_id}/consents/withdraw"): CONSENT,
    ("GET", "/v1/members/{member_id}/consents"): CONSENT,
    ("POST", "/v1/consent/check"): CONSENT,
    ("POST", "/v1/consent/check/batch"): CONSENT,
    ("GET", "/v1/members/{member_id}/export"): PRIVACY,
    ("POST", "/v1/members/{member_id}/erasure"): PRIVACY,
}

Who = Role | ApiKeyScope | None
WHO: Final[list[Who]] = [None, *Role, *ApiKeyScope]


def api_routes(app: FastAPI) -> set[tuple[str, str]]:
    return {
        (method, path)
        for path, methods in served_routes(app)
        if not path.startswith(PAGES)
        for method in methods - {"HEAD"}
    }


def test_every_route_has_an_entry(app: FastAPI) -> None:
    served = api_routes(app)
    assert served - set(NEEDS) == set(), "routes without an authorization entry"
    assert set(NEEDS) - served == set(), "entries for routes the app does not serve"


def _fill(path: str) -> str:
    """A concrete address: unknown ids (the answer may be 404, never a crash)."""
    return (
        path.replace("{code}", "ABCD-EFGH-JK")
        .replace("{language}", "en")
        .format_map(
            {
                name: uuid.uuid4()
                for name in ("campaign_id", "member_id", "account_id", "enrolment_id", "event_id")
            }
        )
    )


def _allowed(need: Permission | ApiKeyScope | str, who: Who) -> bool:
    if need == PUBLIC:
        return True
    if isinstance(need, Permission):
        return isinstance(who, Role) and allows(who, need)
    return who == need


@pytest.fixture
def credentials(database: Database, clock: FrozenClock) -> dict[Who, dict[str, str]]:
    found: dict[Who, dict[str, str]] = {None: {}}
    for role in Role:
        found[role] = operator_headers(database, clock, role.value)
    for scope in ApiKeyScope:
        found[scope] = api_key_headers(database, clock, scope.value)
    return found


def test_each_route_admits_exactly_who_it_should(
    app: FastAPI, credentials: dict[Who, dict[str, str]]
) -> None:
    wrong: list[str] = []
    with TestClient(app) as anonymous:  # no default credential
        for (method, path), need in sorted(NEEDS.items(), key=str):
            address = _fill(path)
            for who in WHO:
                answer = anonymous.request(
                    method, address, headers=credentials[who], json={} if method != "GET" else None
                )
                refused = answer.status_code in (401, 403)
                if refused == _allowed(need, who):
                    wrong.append(f"{method} {path} as {who}: {answer.status_code}")
                if who is None and not _allowed(need, who):
                    assert answer.status_code == 401, (method, path, answer.text)
                    assert answer.headers.get("www-authenticate") == "Bearer"
    assert not wrong, "\n".join(wrong)


def _api_token(database: Database, clock: FrozenClock, operator_id: uuid.UUID) -> str:
    started = database.run(
        lambda s: operators.start_session(
            session=s,
            operator_id=operator_id,
            policy=POLICY,
            clock=clock,
            kind=SessionKind.API,
            lifetime=timedelta(hours=1),
        )
    )
    return started.token


def test_an_expired_revoked_or_console_token_is_refused(
    app: FastAPI, database: Database, clock: FrozenClock
) -> None:
    operator = create_operator(database, clock, "finance-short", Role.FINANCE)

    def balances(client: TestClient, token: str) -> int:
        answer = client.get("/v1/ledger/balances", headers={"Authorization": f"Bearer {token}"})
        if answer.status_code == 401:
            assert answer.json()["error"]["code"] == "operator_unauthenticated"
        return answer.status_code

    with TestClient(app) as client:
        expiring = _api_token(database, clock, operator.id)
        revoked = _api_token(database, clock, operator.id)
        assert balances(client, expiring) == balances(client, revoked) == 200
        database.run(lambda s: operators.end_session(session=s, token=revoked, clock=clock))
        assert balances(client, revoked) == 401
        clock.advance(timedelta(hours=1))
        assert balances(client, expiring) == 401
        # A console session (a browser's cookie) does not open the API, nor the reverse.
        console = database.run(
            lambda s: operators.start_session(
                session=s, operator_id=operator.id, policy=POLICY, clock=clock
            )
        )
        assert balances(client, console.token) == 401
        fresh = _api_token(database, clock, operator.id)
        client.cookies.set(SESSION_COOKIE, fresh)
        signed_in = client.get("/console", headers={"accept": "text/html"}, follow_redirects=False)
        assert signed_in.status_code == 303  # to the sign-in page
