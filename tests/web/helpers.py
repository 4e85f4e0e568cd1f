"""Request bodies and checks shared by the API tests."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from httpx import Response

from parrain.access import service as access
from parrain.access.schemas import ApiKeyCreate
from parrain.consent.service import programme_declaration
from parrain.db.session import Database
from parrain.kit.clock import FrozenClock
from parrain.kit.ids import new_id
from parrain.operators import service as operators
from parrain.operators.schemas import SessionKind
from tests.operators.helpers import POLICY, create_operator


def api_key_headers(database: Database, clock: FrozenClock, *scopes: str) -> dict[str, str]:
    """A new integration key granted ``scopes``, as the request header that presents it."""
    created = database.run(
        lambda s: access.create_api_key(
            session=s,
            key_in=ApiKeyCreate(name=f"marketplace-{'-'.join(scopes)}", scopes=list(scopes)),
            actor="operator:test",
            clock=clock,
        )
    )
    return {"Authorization": f"Bearer {created.key}"}


def operator_headers(database: Database, clock: FrozenClock, role: str) -> dict[str, str]:
    """A live token of a new operator of ``role``, as the header the management API reads."""
    operator = create_operator(database, clock, f"{role}-{new_id().hex[-8:]}", role)
    started = database.run(
        lambda s: operators.start_session(
            session=s,
            operator_id=operator.id,
            policy=POLICY,
            clock=clock,
            kind=SessionKind.API,
            lifetime=operators.MAX_API_TOKEN_LIFETIME,
        )
    )
    return {"Authorization": f"Bearer {started.token}"}


def admin_token(database: Database, clock: FrozenClock) -> str:
    return operator_headers(database, clock, "admin")["Authorization"].removeprefix("Bearer ")


#: One prize of the UK campaign: 5.00 GBP cash + 5.00 GBP in coupons.
PRIZE_MINOR = 1000


def uk_campaign_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Cash Rewards UK",
        "market": "GB",
        "currency": "GBP",
        "languages": ["en"],
        "starts_at": "2026-03-01T00:00:00Z",
        "ends_at": "2026-06-01T00:00:00Z",
        "friends_needed": 3,
        "reward_cash_minor": 500,
        "reward_coupon_minor": 500,
    }
    body.update(overrides)
    return body


def create_campaign(client: TestClient, **overrides: Any) -> dict[str, Any]:
    response = client.post("/v1/campaigns", json=uk_campaign_body(**overrides))
    assert response.status_code == 201, response.text
    campaign: dict[str, Any] = response.json()
    return campaign


def declare_programme(client: TestClient, campaign_id: str, market: str = "GB") -> dict[str, Any]:
    """Give the campaign the programme's data-use declaration (the launch gate needs one)."""
    body = programme_declaration(
        controller="Example Marketplace Ltd", territories=[market]
    ).model_dump(mode="json")
    response = client.put(f"/v1/campaigns/{campaign_id}/declaration", json=body)
    assert response.status_code == 200, response.text
    declaration: dict[str, Any] = response.json()
    return declaration


def error_of(response: Response, status: int) -> dict[str, Any]:
    """The ``error`` object of a JSON error response, after checking its status and shape."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    error: dict[str, Any] = body["error"]
    return error


def audit_actions(client: TestClient) -> list[str]:
    """The actions of the audit chain, but for the test's own operator (created, signed in)."""
    response = client.get("/v1/audit/entries")
    assert response.status_code == 200
    return [
        entry["action"] for entry in response.json() if not entry["subject"].startswith("operator:")
    ]


def assert_nothing_written(client: TestClient) -> None:
    """No campaign, no ledger account and no audit entry exist (but the test's operator's)."""
    assert client.get("/v1/campaigns").json() == []
    assert client.get("/v1/ledger/accounts").json() == []
    assert audit_actions(client) == []
