"""Consent over HTTP: declare, read, check the policy, read the notices; errors by code."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from parrain.config import ConsentSettings, CryptoSettings, Settings
from parrain.db.session import Database
from parrain.kit.clock import FrozenClock
from parrain.web.app import create_app
from tests.consent.declarations import clause_of_the_case, draft_campaign, honest, programme_items
from tests.web.helpers import error_of, operator_headers


@pytest.fixture
def admin(database: Database, clock: FrozenClock) -> dict[str, str]:
    """An administrator's token: declaring is part of the management API."""
    return operator_headers(database, clock, "admin")


@pytest.fixture
def client(database: Database, clock: FrozenClock, admin: dict[str, str]) -> Iterator[TestClient]:
    settings = Settings(crypto=CryptoSettings(allow_development_keys=True))
    app = create_app(database=database, clock=clock, settings=settings)
    with TestClient(app, headers=admin) as test_client:
        yield test_client


@pytest.fixture
def campaign_id(database: Database, clock: FrozenClock) -> str:
    return str(draft_campaign(database, clock).id)


def body(items: Any) -> dict[str, Any]:
    return {"items": [item.model_dump(mode="json") for item in items]}


def put(client: TestClient, campaign_id: str, payload: dict[str, Any]) -> Any:
    return client.put(f"/v1/campaigns/{campaign_id}/declaration", json=payload)


def test_a_declaration_is_versioned_and_its_notices_are_served_as_stored(
    client: TestClient, campaign_id: str
) -> None:
    first = put(client, campaign_id, body(programme_items()))
    assert first.status_code == 200, first.text
    assert first.json()["version"] == 1
    second = put(client, campaign_id, body(honest().items)).json()
    assert second["version"] == 2
    assert put(client, campaign_id, body(honest().items)).json() == second  # same: no version 3

    latest = client.get(f"/v1/campaigns/{campaign_id}/declaration").json()
    assert latest == second
    assert latest["items"][3]["data_use"] == "marketing.advertising.first_party"
    older = client.get(f"/v1/campaigns/{campaign_id}/declaration", params={"version": 1}).json()
    assert older == first.json()

    for language, formula in (("en", "flesch_reading_ease"), ("fr", "kandel_moles")):
        served = client.get(f"/v1/campaigns/{campaign_id}/notices/{language}").json()
        assert served["version"] == 2
        assert served["language"] == language
        assert served["sha256"] == hashlib.sha256(served["content"].encode()).hexdigest()
        assert served["readability"]["formula"] == formula
        assert served["readability"]["score"] >= 60
        summary = next(n for n in second["notices"] if n["language"] == language)
        assert summary["sha256"] == served["sha256"]
        old = client.get(
            f"/v1/campaigns/{campaign_id}/notices/{language}", params={"version": 1}
        ).json()
        assert old["version"] == 1
        assert old["sha256"] == next(
            n["sha256"] for n in first.json()["notices"] if n["language"] == language
        )
    assert "Example Marketplace Ltd" in served["content"]


def test_the_policy_is_checked_without_launching(client: TestClient, campaign_id: str) -> None:
    missing = client.get(f"/v1/campaigns/{campaign_id}/declaration/policy").json()
    assert missing["version"] is None
    assert missing["passes"] is False
    assert [f["code"] for f in missing["findings"]] == ["declaration_missing"]

    put(client, campaign_id, body(clause_of_the_case().items))
    report = client.get(f"/v1/campaigns/{campaign_id}/declaration/policy").json()
    assert report["version"] == 1
    assert report["passes"] is False
    first = report["findings"][0]
    assert first["code"] == "consent_bundled"
    assert first["article"] == "Art. 7(4)"
    assert first["items"] == [1, 2, 3, 4, 5, 6, 7]
    assert "GDPR Art. 7(4)" in first["message"]
    assert client.get(f"/v1/campaigns/{campaign_id}").json()["status"] == "draft"


def test_the_launch_gate_answers_with_the_consent_findings(
    client: TestClient, campaign_id: str
) -> None:
    refused = error_of(client.post(f"/v1/campaigns/{campaign_id}/launch"), 409)
    assert refused["code"] == "launch_gate_failed"
    assert [f["check"] for f in refused["details"]["findings"]] == [
        "consent_declaration.declaration_missing"
    ]

    put(client, campaign_id, body(honest().items))
    launched = client.post(f"/v1/campaigns/{campaign_id}/launch")
    assert launched.status_code == 200, launched.text

    bad = error_of(put(client, campaign_id, body(clause_of_the_case().items)), 409)
    assert bad["code"] == "declaration_refused"
    assert bad["details"]["findings"][0]["code"] == "consent_bundled"


def test_an_unknown_fideslang_key_is_named_with_a_stable_code(
    client: TestClient, campaign_id: str
) -> None:
    payload = body(programme_items())
    payload["items"][1]["data_category"] = "user.content.selfie"

    error = error_of(put(client, campaign_id, payload), 422)

    assert error["code"] == "unknown_taxonomy_key"
    assert "'user.content.selfie'" in error["message"]
    assert error["details"]["keys"] == [
        {
            "item": 2,
            "field": "data_category",
            "key": "user.content.selfie",
            "problem": "'user.content.selfie' is not a data category of fideslang's default "
            "taxonomy",
        }
    ]
    error_of(client.get(f"/v1/campaigns/{campaign_id}/declaration"), 404)


@pytest.mark.parametrize(
    ("change", "location"),
    [
        ({"items": []}, "body.items"),
        ({"items": [{"data_category": "user.name"}]}, "body.items.0.data_use"),
        ({"surprise": True}, "body.surprise"),
    ],
)
def test_a_malformed_declaration_is_a_422_with_each_problem(
    client: TestClient, campaign_id: str, change: dict[str, Any], location: str
) -> None:
    payload = {"items": body(programme_items())["items"], **change}
    error = error_of(put(client, campaign_id, payload), 422)
    assert error["code"] == "invalid_request"
    assert location in [problem["location"] for problem in error["details"]["problems"]]


def test_out_of_range_values_are_refused(client: TestClient, campaign_id: str) -> None:
    payload = body(programme_items())
    payload["items"][0]["max_days"] = 0
    payload["items"][1]["legal_basis"] = "legitimate_interest"
    error = error_of(put(client, campaign_id, payload), 422)
    locations = [problem["location"] for problem in error["details"]["problems"]]
    assert "body.items.0.max_days" in locations
    assert "body.items.1.legal_basis" in locations


def test_twice_the_same_category_and_use_is_refused(client: TestClient, campaign_id: str) -> None:
    payload = body(programme_items())
    payload["items"].append(dict(payload["items"][2]))
    error = error_of(put(client, campaign_id, payload), 422)
    assert "declared twice" in error["message"]


def test_what_does_not_exist_is_404_by_kind(client: TestClient, campaign_id: str) -> None:
    unknown = str(uuid.uuid4())
    assert error_of(put(client, unknown, body(honest().items)), 404)["code"] == (
        "campaign_not_found"
    )
    assert error_of(client.get(f"/v1/campaigns/{unknown}/notices/en"), 404)["code"] == (
        "campaign_not_found"
    )
    assert error_of(client.get(f"/v1/campaigns/{campaign_id}/notices/en"), 404)["code"] == (
        "declaration_not_found"
    )
    put(client, campaign_id, body(honest().items))
    missing = client.get(f"/v1/campaigns/{campaign_id}/notices/fr", params={"version": 9})
    assert error_of(missing, 404)["code"] == "declaration_not_found"
    wrong = error_of(client.get(f"/v1/campaigns/{campaign_id}/notices/de"), 422)
    assert wrong["details"]["problems"][0]["location"] == "path.language"


def test_the_app_s_limits_apply_to_its_policy_report(
    database: Database, clock: FrozenClock, campaign_id: str, admin: dict[str, str]
) -> None:
    settings = Settings(
        crypto=CryptoSettings(allow_development_keys=True),
        consent=ConsentSettings(max_advertising_days=30),
    )
    app = create_app(database=database, clock=clock, settings=settings)
    with TestClient(app, headers=admin) as client:
        put(client, campaign_id, body(honest().items))
        report = client.get(f"/v1/campaigns/{campaign_id}/declaration/policy").json()
    assert [f["code"] for f in report["findings"]] == ["duration_too_long"]
