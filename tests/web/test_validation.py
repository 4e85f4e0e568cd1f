"""Bad input: 422 ``invalid_request`` naming each problem, input never echoed, nothing written."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.web.helpers import (
    assert_nothing_written,
    audit_actions,
    create_campaign,
    error_of,
    uk_campaign_body,
)

TOO_BIG = 2**63


def problems_of(error: dict[str, Any]) -> list[tuple[str, str]]:
    return [(p["location"], p["type"]) for p in error["details"]["problems"]]


@pytest.mark.parametrize(
    ("overrides", "location", "kind"),
    [
        ({"reward_cash_minor": 10.5}, "body.reward_cash_minor", "int_type"),
        ({"reward_cash_minor": 500.0}, "body.reward_cash_minor", "int_type"),
        ({"reward_cash_minor": "500"}, "body.reward_cash_minor", "int_type"),
        ({"reward_cash_minor": True}, "body.reward_cash_minor", "int_type"),
        ({"reward_cash_minor": -1}, "body.reward_cash_minor", "greater_than_equal"),
        ({"reward_cash_minor": TOO_BIG}, "body.reward_cash_minor", "less_than_equal"),
        ({"friend_welcome_minor": TOO_BIG}, "body.friend_welcome_minor", "less_than_equal"),
        ({"currency": "XXQ"}, "body.currency", "value_error"),
        ({"market": "QQ"}, "body.market", "value_error"),
        ({"languages": ["xx"]}, "body.languages.0", "value_error"),
        ({"starts_at": "2026-03-01T00:00:00"}, "body.starts_at", "timezone_aware"),
        ({"photo_in_ads": True}, "body.photo_in_ads", "extra_forbidden"),
        ({"name": ""}, "body.name", "string_too_short"),
    ],
)
def test_a_bad_campaign_is_refused_with_the_field_named(
    client: TestClient, overrides: dict[str, Any], location: str, kind: str
) -> None:
    response = client.post("/v1/campaigns", json=uk_campaign_body(**overrides))

    error = error_of(response, 422)
    assert error["code"] == "invalid_request"
    assert problems_of(error) == [(location, kind)]
    assert error["message"].startswith(f"the request is not valid: {location}: ")
    assert_nothing_written(client)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"ends_at": "2026-02-01T00:00:00Z"}, "the campaign must end after it starts"),
        ({"ends_at": "2026-03-01T00:00:00Z"}, "the campaign must end after it starts"),
        (
            {"reward_cash_minor": 0, "reward_coupon_minor": 0},
            "the reward must be greater than zero",
        ),
        (
            {"reward_cash_minor": 2**62, "reward_coupon_minor": 2**62},
            "the reward exceeds 2^63-1 minor units",
        ),
    ],
)
def test_an_inconsistent_campaign_is_refused_with_the_reason(
    client: TestClient, overrides: dict[str, Any], message: str
) -> None:
    response = client.post("/v1/campaigns", json=uk_campaign_body(**overrides))

    error = error_of(response, 422)
    assert error["code"] == "invalid_request"
    assert error["details"]["problems"] == [
        {"location": "body", "message": message, "type": "value_error"}
    ]
    assert_nothing_written(client)


@pytest.mark.parametrize(
    ("funding", "location", "kind"),
    [
        ({"amount_minor": 10.5, "currency": "GBP"}, "body.amount_minor", "int_type"),
        ({"amount_minor": "1000", "currency": "GBP"}, "body.amount_minor", "int_type"),
        ({"amount_minor": 0, "currency": "GBP"}, "body.amount_minor", "greater_than"),
        ({"amount_minor": -500, "currency": "GBP"}, "body.amount_minor", "greater_than"),
        ({"amount_minor": TOO_BIG, "currency": "GBP"}, "body.amount_minor", "less_than_equal"),
        ({"amount_minor": 1000, "currency": "XXQ"}, "body.currency", "value_error"),
        ({"amount_minor": 1000}, "body.currency", "missing"),
        ({"amount_minor": 1000, "currency": "GBP", "memo": "x"}, "body.memo", "extra_forbidden"),
        (
            {"amount_minor": 1000, "currency": "GBP", "funding_id": "abc"},
            "body.funding_id",
            "uuid_parsing",
        ),
    ],
)
def test_bad_funding_is_refused_and_moves_no_money(
    client: TestClient, funding: dict[str, Any], location: str, kind: str
) -> None:
    campaign_id = create_campaign(client)["id"]

    response = client.post(f"/v1/campaigns/{campaign_id}/funding", json=funding)

    error = error_of(response, 422)
    assert error["code"] == "invalid_request"
    assert problems_of(error) == [(location, kind)]
    assert client.get(f"/v1/campaigns/{campaign_id}").json()["budget"]["funded_minor"] == 0
    assert client.get("/v1/ledger/accounts", params={"kind": "operator_funding"}).json() == []
    assert audit_actions(client) == ["campaign.created"]


def test_a_body_that_is_not_json_is_refused(client: TestClient) -> None:
    response = client.post(
        "/v1/campaigns", content=b'{"name": ', headers={"content-type": "application/json"}
    )

    error = error_of(response, 422)
    assert error["code"] == "invalid_request"
    [problem] = error["details"]["problems"]
    assert problem["location"] == "body"
    assert problem["type"] == "json_invalid"
    assert problem["message"].startswith("the body is not valid JSON (at character 9)")
    assert_nothing_written(client)


def test_huge_input_is_never_echoed_back(client: TestClient) -> None:
    huge_key = "k" * 20_000
    body = uk_campaign_body(name="n" * 50_000, **{huge_key: 1})

    response = client.post("/v1/campaigns", json=body)

    error = error_of(response, 422)
    assert len(response.content) < 2_000
    assert "k" * 100 not in response.text
    assert "n" * 100 not in response.text
    assert problems_of(error) == [
        ("body.name", "string_too_long"),
        ("body." + "k" * 63 + "…", "extra_forbidden"),
    ]
    assert_nothing_written(client)


def test_a_flood_of_problems_is_listed_up_to_a_limit(client: TestClient) -> None:
    body = uk_campaign_body(**{f"unknown_{i}": i for i in range(30)})

    error = error_of(client.post("/v1/campaigns", json=body), 422)

    assert len(error["details"]["problems"]) == 20
    assert error["details"]["problems_omitted"] == 10
    assert error["message"].endswith("(and 29 more)")


@pytest.mark.parametrize(
    ("query", "location"),
    [
        ("limit=0", "query.limit"),
        ("limit=501", "query.limit"),
        ("limit=ten", "query.limit"),
        ("after_seq=-1", "query.after_seq"),
        (f"after_seq={TOO_BIG}", "query.after_seq"),
        ("after_seq=1.5", "query.after_seq"),
    ],
)
def test_bad_audit_paging_is_refused(client: TestClient, query: str, location: str) -> None:
    error = error_of(client.get(f"/v1/audit/entries?{query}"), 422)

    assert error["code"] == "invalid_request"
    assert [p["location"] for p in error["details"]["problems"]] == [location]


def test_an_unknown_currency_filter_is_refused(client: TestClient) -> None:
    unknown = error_of(client.get("/v1/ledger/accounts", params={"currency": "XXQ"}), 422)
    malformed = error_of(client.get("/v1/ledger/accounts", params={"currency": "GBPX"}), 422)

    assert unknown["code"] == "unknown_currency"
    assert malformed["code"] == "invalid_request"


@pytest.mark.parametrize(
    "headers",
    [{}, {"content-type": "application/x-www-form-urlencoded"}, {"content-type": "text/plain"}],
)
def test_a_body_not_sent_as_json_is_refused_with_a_hint(
    client: TestClient, headers: dict[str, str]
) -> None:
    response = client.post("/v1/campaigns", content=json.dumps(uk_campaign_body()), headers=headers)

    error = error_of(response, 422)
    assert error["details"]["problems"] == [
        {
            "location": "body",
            "message": "the body must be a JSON object sent with Content-Type: application/json",
            "type": "model_attributes_type",
        }
    ]
    assert_nothing_written(client)


def test_a_json_body_that_is_not_an_object_is_refused(client: TestClient) -> None:
    error = error_of(client.post("/v1/campaigns", json=[1, 2]), 422)

    assert [(p["location"], p["type"]) for p in error["details"]["problems"]] == [
        ("body", "model_attributes_type")
    ]
    assert error["details"]["problems"][0]["message"].startswith("Input should be")
