"""Consent events and the check over HTTP, with an integration key granted the ``consent``
scope: shown → grant (receipt) → check allows → withdraw → the very next check denies;
the batch form; the member's state; errors by stable code."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from parrain.config import CryptoSettings, ReferralSettings, Settings
from parrain.consent.receipts import verify_receipt
from parrain.db.session import Database
from parrain.kit.clock import FrozenClock
from parrain.kit.crypto import development_signing_key, verification_keys
from parrain.kit.ids import new_id
from parrain.outbox import service as outbox
from parrain.web.app import create_app
from tests.consent import consents
from tests.consent.consents import ADS, OPERATIONS, PHOTO, USERNAME
from tests.referrals.programme import Programme
from tests.web.helpers import api_key_headers, error_of


@pytest.fixture
def client(database: Database, clock: FrozenClock) -> Iterator[TestClient]:
    settings = Settings(
        crypto=CryptoSettings(allow_development_keys=True),
        referrals=ReferralSettings(link_base_url="https://parrain.example"),
    )
    with TestClient(create_app(database=database, clock=clock, settings=settings)) as test_client:
        yield test_client


@pytest.fixture
def key(database: Database, clock: FrozenClock) -> dict[str, str]:
    return api_key_headers(database, clock, "consent")


@pytest.fixture
def programme(database: Database, clock: FrozenClock) -> Programme:
    return consents.launch(database, clock)


@pytest.fixture
def member_id(programme: Programme) -> UUID:
    return programme.enrol("ann").member_id


def _choice(campaign_id: UUID, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "campaign_id": str(campaign_id),
        "data_category": PHOTO,
        "data_use": ADS,
        "channel": "social",
        "language": "en",
        "method": "switch:ad_photo:on",
    }
    body.update(changes)
    return body


def _check(member_id: UUID, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "member_id": str(member_id),
        "data_category": PHOTO,
        "data_use": ADS,
        "channel": "social",
        "territory": "GB",
    }
    body.update(changes)
    return body


def test_grant_check_withdraw_check_over_http(
    client: TestClient,
    database: Database,
    key: dict[str, str],
    programme: Programme,
    member_id: UUID,
) -> None:
    campaign_id = programme.campaign.id
    base = f"/v1/members/{member_id}/consents"
    shown = client.post(
        f"{base}/shown",
        json={"campaign_id": str(campaign_id), "language": "en", "method": "screen:consents"},
        headers=key,
    )
    assert shown.status_code == 200, shown.text
    notice = shown.json()["notice"]
    assert "Example Marketplace Ltd" in notice["content"]
    assert {e["notice_sha256"] for e in shown.json()["events"]} == {notice["sha256"]}

    granted = client.post(f"{base}/grant", json=_choice(campaign_id), headers=key)
    assert granted.status_code == 200, granted.text
    receipt = granted.json()["receipt"]
    verified = verify_receipt(receipt["jws"], verification_keys(development_signing_key()))
    assert verified.development is True
    assert verified.claims == receipt["receipt"]
    assert verified.claims["policyUrl"] == (
        f"https://parrain.example/v1/campaigns/{campaign_id}/notices/en?version=2"
    )

    allowed = client.post("/v1/consent/check", json=_check(member_id), headers=key).json()
    assert (allowed["decision"], allowed["reason"]) == ("allow", "consent_granted")
    assert allowed["notice_sha256"] == notice["sha256"]
    assert allowed["declaration_version"] == 2

    withdrawn = client.post(
        f"{base}/withdraw",
        json={k: v for k, v in _choice(campaign_id).items() if k != "language"},
        headers=key,
    )
    assert withdrawn.status_code == 200, withdrawn.text
    assert withdrawn.json()["event"]["action"] == "withdrawn"
    assert withdrawn.json()["receipt"]["receipt"]["parrain"]["action"] == "withdrawn"
    denied = client.post("/v1/consent/check", json=_check(member_id), headers=key).json()
    assert (denied["decision"], denied["reason"]) == ("deny", "withdrawn")
    assert database.read(lambda s: outbox.counts(session=s)) == (1, 0)

    state = client.get(base, headers=key).json()
    assert state["member_id"] == str(member_id)
    social = next(i for i in state["items"] if i["channel"] == "social")
    assert (social["status"], social["renewal_due"]) == ("withdrawn", False)
    assert {i["status"] for i in state["items"] if i["channel"] != "social"} == {"not_asked"}


def test_the_batch_form_answers_in_order(
    client: TestClient, key: dict[str, str], member_id: UUID
) -> None:
    checks = [
        _check(member_id),
        _check(member_id, data_category=USERNAME, data_use=OPERATIONS, channel="app"),
        _check(new_id()),
    ]
    response = client.post("/v1/consent/check/batch", json={"checks": checks}, headers=key)
    assert response.status_code == 200, response.text
    assert [r["reason"] for r in response.json()["results"]] == [
        "no_consent",
        "programme_use",
        "member_unknown",
    ]
    too_many = client.post(
        "/v1/consent/check/batch", json={"checks": [checks[0]] * 1001}, headers=key
    )
    assert error_of(too_many, 422)["code"] == "invalid_request"


def test_errors_have_stable_codes(
    client: TestClient,
    database: Database,
    clock: FrozenClock,
    key: dict[str, str],
    programme: Programme,
    member_id: UUID,
) -> None:
    campaign_id = programme.campaign.id
    base = f"/v1/members/{member_id}/consents"
    not_shown = client.post(f"{base}/grant", json=_choice(campaign_id), headers=key)
    assert error_of(not_shown, 409)["code"] == "notice_not_shown"
    programme_use = client.post(
        f"{base}/grant",
        json=_choice(campaign_id, data_category=USERNAME, data_use=OPERATIONS),
        headers=key,
    )
    assert error_of(programme_use, 409)["code"] == "programme_use_not_optional"
    unknown_item = client.post(
        f"{base}/refuse", json=_choice(campaign_id, data_category="user.name"), headers=key
    )
    assert error_of(unknown_item, 404)["code"] == "consent_item_not_found"
    unknown_campaign = client.post(f"{base}/grant", json=_choice(new_id()), headers=key)
    assert error_of(unknown_campaign, 404)["code"] == "campaign_not_found"
    unknown_member = client.post(
        f"/v1/members/{new_id()}/consents/grant", json=_choice(campaign_id), headers=key
    )
    assert error_of(unknown_member, 404)["code"] == "member_not_found"
    nothing = client.post(
        f"{base}/withdraw",
        json={k: v for k, v in _choice(campaign_id).items() if k != "language"},
        headers=key,
    )
    assert error_of(nothing, 409)["code"] == "consent_not_granted"
    naive = client.post(
        "/v1/consent/check", json=_check(member_id, at="2026-03-01T10:00:00"), headers=key
    )
    assert error_of(naive, 422)["code"] == "invalid_request"
    no_key = client.post("/v1/consent/check", json=_check(member_id))
    assert error_of(no_key, 401)["code"] == "invalid_api_key"
    events_key = api_key_headers(database, clock, "events")
    wrong_scope = client.post("/v1/consent/check", json=_check(member_id), headers=events_key)
    assert error_of(wrong_scope, 403)["code"] == "api_key_scope_denied"
