"""The authorization matrix: every console route × every role and no session.

What each route needs is written here, once; what each role holds comes from
:mod:`parrain.operators.roles`. A console route the app serves without an entry here fails
the first test, so a new page cannot ship without saying who may open it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from httpx import Response

from parrain.db.session import Database
from parrain.kit.clock import FrozenClock
from parrain.operators.roles import Permission, Role, allows
from tests.web.console.helpers import csrf_of, draft_campaign, signed_in_as

PUBLIC: Final = "public"  # anyone, signed in or not
SIGNED_IN: Final = "signed in"  # any role, but a session is needed

NEEDS: Final[dict[tuple[str, str], Permission | str]] = {
    ("GET", "/console/sign-in"): PUBLIC,
    ("POST", "/console/sign-in"): PUBLIC,
    ("POST", "/console/sign-out"): SIGNED_IN,
    ("GET", "/console"): Permission.CAMPAIGNS_VIEW,
    ("GET", "/console/campaigns/{campaign_id}"): Permission.CAMPAIGNS_VIEW,
    ("GET", "/console/campaigns/new"): Permission.CAMPAIGNS_EDIT,
    ("POST", "/console/campaigns/new"): Permission.CAMPAIGNS_EDIT,
    ("GET", "/console/campaigns/{campaign_id}/edit"): Permission.CAMPAIGNS_EDIT,
    ("POST", "/console/campaigns/{campaign_id}/edit"): Permission.CAMPAIGNS_EDIT,
    ("POST", "/console/campaigns/{campaign_id}/launch"): Permission.CAMPAIGNS_LIFECYCLE,
    ("POST", "/console/campaigns/{campaign_id}/pause"): Permission.CAMPAIGNS_LIFECYCLE,
    ("POST", "/console/campaigns/{campaign_id}/resume"): Permission.CAMPAIGNS_LIFECYCLE,
    ("POST", "/console/campaigns/{campaign_id}/end"): Permission.CAMPAIGNS_LIFECYCLE,
    ("GET", "/console/audit"): Permission.AUDIT_VIEW,
    ("GET", "/console/audit/notices"): Permission.AUDIT_VIEW,
    ("GET", "/console/audit/notices/{declaration_id}/{language}"): Permission.AUDIT_VIEW,
    ("GET", "/console/audit/consent"): Permission.AUDIT_VIEW,
    ("POST", "/console/audit/bundle"): Permission.AUDIT_VIEW,
    ("GET", "/console/payouts"): Permission.PAYOUTS_VIEW,
    ("GET", "/console/payouts/{batch_id}"): Permission.PAYOUTS_VIEW,
    ("POST", "/console/payouts/reconcile"): Permission.PAYOUTS_MANAGE,
    ("GET", "/console/api-keys"): Permission.APIKEYS_MANAGE,
    ("POST", "/console/api-keys"): Permission.APIKEYS_MANAGE,
    ("POST", "/console/api-keys/{key_id}/revoke"): Permission.APIKEYS_MANAGE,
    ("GET", "/console/events"): Permission.EVENTS_MANAGE,
    ("POST", "/console/events/retry"): Permission.EVENTS_MANAGE,
}

WHO: Final[list[Role | None]] = [None, *Role]


def served_routes(app: FastAPI) -> Iterator[tuple[str, set[str]]]:
    """Every path the app serves with its methods, routers included (FastAPI includes a
    router lazily: its routes are reached through the included router's contexts)."""
    for route in app.routes:
        contexts = getattr(route, "effective_route_contexts", None)
        if contexts is not None:
            for context in contexts():
                if isinstance(context.original_route, APIRoute):
                    yield context.path, set(context.original_route.methods)
        elif isinstance(route, APIRoute):
            yield route.path, set(route.methods)


def console_routes(app: FastAPI) -> set[tuple[str, str]]:
    return {
        (method, path)
        for path, methods in served_routes(app)
        if path.startswith("/console")
        for method in methods - {"HEAD"}
    }


def test_the_route_listing_sees_every_router(app: FastAPI) -> None:
    paths = {path for path, _ in served_routes(app)}
    assert {"/v1/campaigns", "/r/{code}", "/docs"} <= paths


def test_every_console_route_has_an_entry(app: FastAPI) -> None:
    served = console_routes(app)
    assert served - set(NEEDS) == set(), "console routes without an authorization entry"
    assert set(NEEDS) - served == set(), "entries for routes the app does not serve"


def test_console_routes_stay_out_of_the_api_schema(app: FastAPI) -> None:
    paths = app.openapi()["paths"]
    assert not [path for path in paths if path.startswith("/console")]


def expected(needs: Permission | str, who: Role | None) -> str:
    if needs == PUBLIC:
        return "allowed"
    if who is None:
        return "sign in"
    if needs == SIGNED_IN:
        return "allowed"
    assert isinstance(needs, Permission)
    return "allowed" if allows(who, needs) else "forbidden"


def outcome(response: Response) -> str:
    assert response.status_code < 500, response.text
    location = response.headers.get("location", "")
    if response.status_code == 303 and location.startswith("/console/sign-in?next="):
        return "sign in"  # signing out also ends there, but asks for nothing next
    if response.status_code == 403:
        assert response.json()["error"]["code"] == "permission_denied", response.text
        return "forbidden"
    return "allowed"


@pytest.mark.parametrize("who", WHO, ids=lambda who: who.value if who else "no-session")
@pytest.mark.parametrize("route", sorted(NEEDS), ids=lambda route: f"{route[0]} {route[1]}")
def test_who_may_use_each_route(
    client: TestClient,
    database: Database,
    clock: FrozenClock,
    route: tuple[str, str],
    who: Role | None,
) -> None:
    method, path = route
    campaign = draft_campaign(database, clock)
    sign_in_form = client.get("/console/sign-in")  # before any session: the form's own token
    data = {"csrf_token": csrf_of(sign_in_form)}
    if who is not None:
        signed_in_as(client, database, clock, who)
        if path != "/console/sign-in":
            data = {"csrf_token": csrf_of(client.get("/console"))}
    if path == "/console/sign-in":
        data |= {"username": "nobody", "password": "not a password here"}
    address = path.format_map(
        {
            "campaign_id": campaign.id,
            "declaration_id": campaign.id,  # no such declaration: a 404 once allowed in
            "language": "en",
            "batch_id": campaign.id,  # no such payout batch: a 404 once allowed in
            "key_id": campaign.id,  # no such API key: a 404 once allowed in
        }
    )
    response = client.get(address) if method == "GET" else client.post(address, data=data)
    assert outcome(response) == expected(NEEDS[route], who), response.text
