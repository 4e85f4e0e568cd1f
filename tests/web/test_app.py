"""The app itself: health, OpenAPI and docs, unknown routes and unexpected errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from parrain import __version__
from parrain.campaigns import service as campaigns_service
from parrain.config import CryptoSettings, DatabaseSettings, Settings
from parrain.db.session import Database
from parrain.kit.clock import FrozenClock
from parrain.web.app import create_app
from tests.web.helpers import error_of


def test_health_names_the_database(client: TestClient, backend: str) -> None:
    response = client.get("/health")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": backend}


def test_health_is_503_when_the_database_cannot_be_reached(
    tmp_path: Path, clock: FrozenClock
) -> None:
    unreachable = Database(DatabaseSettings(url=f"sqlite:///{tmp_path}/missing/dir/db.sqlite3"))
    app = create_app(
        database=unreachable,
        clock=clock,
        settings=Settings(crypto=CryptoSettings(allow_development_keys=True)),
    )
    with TestClient(app) as client:
        response = client.get("/health")
    unreachable.dispose()

    error = error_of(response, 503)
    assert error["code"] == "database_unavailable"
    assert "missing" not in response.text


def test_the_openapi_description_lists_every_route(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()

    assert spec["info"] == {
        "title": "parrain",
        "version": __version__,
        "description": spec["info"]["description"],
    }
    assert {path: sorted(ops) for path, ops in spec["paths"].items()} == {
        "/health": ["get"],
        "/health/live": ["get"],
        "/v1/campaigns": ["get", "post"],
        "/v1/campaigns/{campaign_id}": ["get", "patch"],
        "/v1/campaigns/{campaign_id}/funding": ["post"],
        "/v1/campaigns/{campaign_id}/launch": ["post"],
        "/v1/campaigns/{campaign_id}/pause": ["post"],
        "/v1/campaigns/{campaign_id}/resume": ["post"],
        "/v1/campaigns/{campaign_id}/end": ["post"],
        "/v1/campaigns/{campaign_id}/declaration": ["get", "put"],
        "/v1/campaigns/{campaign_id}/declaration/policy": ["get"],
        "/v1/campaigns/{campaign_id}/notices/{language}": ["get"],
        "/v1/members/{member_id}/consents/shown": ["post"],
        "/v1/members/{member_id}/consents/grant": ["post"],
        "/v1/members/{member_id}/consents/refuse": ["post"],
        "/v1/members/{member_id}/consents/withdraw": ["post"],
        "/v1/members/{member_id}/consents": ["get"],
        "/v1/consent/check": ["post"],
        "/v1/consent/check/batch": ["post"],
        "/v1/ledger/accounts/{account_id}": ["get"],
        "/v1/ledger/accounts": ["get"],
        "/v1/ledger/balances": ["get"],
        "/v1/ledger/check": ["get"],
        "/v1/audit/entries": ["get"],
        "/v1/audit/verify": ["get"],
        "/v1/campaigns/{campaign_id}/enrolments": ["post"],
        "/v1/campaigns/{campaign_id}/funnel": ["get"],
        "/v1/enrolments/{enrolment_id}": ["get"],
        "/v1/enrolments/{enrolment_id}/progress": ["get"],
        "/v1/events": ["post"],
        "/v1/events/{event_id}": ["get"],
        "/v1/members/{member_id}/export": ["get"],
        "/v1/members/{member_id}/erasure": ["post"],
        "/v1/coupons/{code}": ["get"],
        "/v1/coupons/{code}/redeem": ["post"],
        "/v1/members/{member_id}/coupons": ["get"],
        "/v1/paypal/webhooks": ["post"],
        "/r/{code}": ["get"],
    }
    operation_ids = [op["operationId"] for ops in spec["paths"].values() for op in ops.values()]
    assert sorted(operation_ids) == [
        "check_consent",
        "check_consents",
        "check_declaration_policy",
        "check_ledger",
        "create_campaign",
        "declare_data_use",
        "end_campaign",
        "enrol_member",
        "erase_member",
        "export_member",
        "follow_link",
        "fund_campaign",
        "get_campaign",
        "get_coupon",
        "get_declaration",
        "get_enrolment",
        "get_event",
        "get_funnel",
        "get_ledger_account",
        "get_notice",
        "get_progress",
        "grant_consent",
        "health",
        "health_live",
        "launch_campaign",
        "ledger_balances",
        "list_audit_entries",
        "list_campaigns",
        "list_ledger_accounts",
        "list_member_coupons",
        "member_consents",
        "pause_campaign",
        "post_events",
        "receive_paypal_webhook",
        "record_notice_shown",
        "redeem_coupon",
        "refuse_consent",
        "resume_campaign",
        "update_campaign",
        "verify_audit_chain",
        "withdraw_consent",
    ]


def test_the_openapi_description_documents_errors_and_integer_amounts(
    client: TestClient,
) -> None:
    spec = client.get("/openapi.json").json()
    launch = spec["paths"]["/v1/campaigns/{campaign_id}/launch"]["post"]
    create = spec["paths"]["/v1/campaigns"]["post"]
    schemas = spec["components"]["schemas"]

    error_ref = {"$ref": "#/components/schemas/ErrorResponse"}
    for operation, status in [(launch, "404"), (launch, "409"), (launch, "422"), (create, "413")]:
        assert operation["responses"][status]["content"]["application/json"]["schema"] == error_ref
    assert "201" in create["responses"]
    amount = schemas["FundingCreate"]["properties"]["amount_minor"]
    assert amount["type"] == "integer"
    assert "HTTPValidationError" not in schemas
    balances = spec["paths"]["/v1/ledger/balances"]["get"]
    assert sorted(balances["responses"]) == ["200", "401", "403", "500"]
    assert balances["security"] == [{"OperatorToken": []}]


def test_the_docs_page_is_html(client: TestClient) -> None:
    response = client.get("/docs")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "/openapi.json" in response.text
    # served from the package, not a CDN: the demo runs without Internet access
    assert "cdn" not in response.text.lower()
    for asset in ("/docs/assets/swagger-ui-bundle.js", "/docs/assets/swagger-ui.css"):
        assert asset in response.text
        served = client.get(asset)
        assert served.status_code == 200
        assert len(served.content) > 10_000


@pytest.mark.parametrize("path", ["/nowhere", "/v1", "/v1/campaigns/x/launch/now", "/v2/campaigns"])
def test_an_unknown_route_is_a_json_404(client: TestClient, path: str) -> None:
    error = error_of(client.get(path), 404)

    assert error == {
        "code": "not_found",
        "message": "there is nothing at this address",
        "details": {},
    }


def test_a_wrong_method_is_a_json_405_with_the_allowed_ones(client: TestClient) -> None:
    response = client.delete("/health")

    assert error_of(response, 405)["code"] == "method_not_allowed"
    assert response.headers["allow"] == "GET"


def test_an_unexpected_error_is_a_bare_500_and_is_logged_without_its_message(
    app: FastAPI, client: TestClient, capfd: pytest.CaptureFixture[str]
) -> None:
    def broken() -> None:
        raise RuntimeError("cannot pay jane.doe@example.com")

    app.add_api_route("/v1/test-only/broken", broken, methods=["POST"])

    response = client.post("/v1/test-only/broken")

    error = error_of(response, 500)
    assert error["code"] == "internal_error"
    assert error["message"] == "an unexpected error occurred"
    assert set(error["details"]) == {"error_id"}
    assert "jane" not in response.text
    assert "RuntimeError" not in response.text
    assert "Traceback" not in response.text
    logged = capfd.readouterr()
    log = logged.out + logged.err
    assert "unexpected_error" in log
    assert error["details"]["error_id"] in log
    assert "RuntimeError" in log
    assert "test_app.py" in log
    assert "broken" in log
    assert "jane" not in log
    # The app answers normally afterwards.
    assert client.get("/health").status_code == 200


def test_a_bug_inside_a_service_is_logged_with_parrain_frames_only(
    client: TestClient, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing_list(**_kwargs: object) -> list[object]:
        raise KeyError("jane.doe@example.com")

    monkeypatch.setattr(campaigns_service, "list_campaigns", failing_list)

    response = client.get("/v1/campaigns")

    assert error_of(response, 500)["code"] == "internal_error"
    logged = capfd.readouterr()
    log = logged.out + logged.err
    assert "KeyError" in log
    assert "list_campaigns" in log
    assert "api/campaigns.py" in log
    assert "db/session.py" in log
    assert "starlette" not in log
    assert "jane" not in log
