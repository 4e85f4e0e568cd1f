"""Campaigns over HTTP: the lifecycle, its refusals, drafts, funding and the actor header."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from parrain.db.session import Database
from parrain.kit.clock import FrozenClock
from tests.web.helpers import (
    PRIZE_MINOR,
    assert_nothing_written,
    audit_actions,
    create_campaign,
    declare_programme,
    error_of,
    operator_headers,
    uk_campaign_body,
)


def fund(
    client: TestClient, campaign_id: str, amount_minor: int, **extra: object
) -> dict[str, Any]:
    response = client.post(
        f"/v1/campaigns/{campaign_id}/funding",
        json={"amount_minor": amount_minor, "currency": "GBP", **extra},
    )
    assert response.status_code == 200, response.text
    campaign: dict[str, Any] = response.json()
    return campaign


def live_campaign(client: TestClient) -> str:
    campaign_id: str = create_campaign(client)["id"]
    declare_programme(client, campaign_id)
    fund(client, campaign_id, 100_000)
    assert client.post(f"/v1/campaigns/{campaign_id}/launch").status_code == 200
    return campaign_id


def status_of(client: TestClient, campaign_id: str) -> str:
    response = client.get(f"/v1/campaigns/{campaign_id}")
    assert response.status_code == 200
    status: str = response.json()["status"]
    return status


def test_a_campaign_goes_through_its_whole_lifecycle(
    client: TestClient, clock: FrozenClock
) -> None:
    created = create_campaign(client)
    campaign_id = created["id"]
    assert created["status"] == "draft"
    assert created["market"] == "GB"
    assert created["reward_minor"] == PRIZE_MINOR
    assert created["reward_display"] == "£10.00"
    assert created["budget"]["funded_minor"] == 0
    assert created["created_at"] == "2026-03-01T09:00:00Z"
    declare_programme(client, campaign_id)

    refused = client.post(f"/v1/campaigns/{campaign_id}/launch")
    error = error_of(refused, 409)
    assert error["code"] == "launch_gate_failed"
    assert error["details"]["findings"] == [
        {
            "check": "budget_funded",
            "message": "the prize budget holds £0.00, less than one prize (£10.00)",
        }
    ]
    assert status_of(client, campaign_id) == "draft"

    funded = fund(client, campaign_id, 100_000)
    assert funded["budget"] == {
        "currency": "GBP",
        "funded_minor": 100_000,
        "held_minor": 0,
        "spent_minor": 0,
        "available_minor": 100_000,
        "available_display": "£1,000.00",
    }

    for action, expected in [
        ("launch", "live"),
        ("pause", "paused"),
        ("resume", "live"),
        ("end", "ended"),
    ]:
        clock.advance(timedelta(hours=1))
        response = client.post(f"/v1/campaigns/{campaign_id}/{action}")
        assert response.status_code == 200, response.text
        assert response.json()["status"] == expected
    final = client.get(f"/v1/campaigns/{campaign_id}").json()
    assert final["status"] == "ended"
    assert final["launched_at"] == "2026-03-01T10:00:00Z"
    assert final["ended_at"] == "2026-03-01T13:00:00Z"
    assert audit_actions(client) == [
        "campaign.created",
        "consent.declared",
        "ledger.account_opened",
        "campaign.funded",
        "campaign.launched",
        "campaign.paused",
        "campaign.resumed",
        "campaign.ended",
    ]


@pytest.mark.parametrize(
    ("steps", "action", "status", "allowed_from"),
    [
        ([], "resume", "live", ["paused"]),
        ([], "launch", "live", ["draft"]),
        (["pause"], "pause", "paused", ["live"]),
        (["end"], "launch", "ended", ["draft"]),
        (["end"], "resume", "ended", ["paused"]),
        (["end"], "end", "ended", ["live", "paused"]),
    ],
)
def test_an_illegal_transition_is_refused_and_changes_nothing(
    client: TestClient, steps: list[str], action: str, status: str, allowed_from: list[str]
) -> None:
    campaign_id = live_campaign(client)
    for step in steps:
        assert client.post(f"/v1/campaigns/{campaign_id}/{step}").status_code == 200
    entries_before = audit_actions(client)

    error = error_of(client.post(f"/v1/campaigns/{campaign_id}/{action}"), 409)

    assert error["code"] == "illegal_transition"
    assert error["message"] == f"cannot {action} a campaign that is {status}"
    assert error["details"] == {"action": action, "status": status, "allowed_from": allowed_from}
    assert status_of(client, campaign_id) == status
    assert audit_actions(client) == entries_before


@pytest.mark.parametrize("action", ["pause", "end"])
def test_a_draft_cannot_be_paused_or_ended(client: TestClient, action: str) -> None:
    campaign_id = create_campaign(client)["id"]
    error = error_of(client.post(f"/v1/campaigns/{campaign_id}/{action}"), 409)
    assert error["code"] == "illegal_transition"
    assert status_of(client, campaign_id) == "draft"


def test_a_draft_can_be_changed(client: TestClient) -> None:
    campaign_id = create_campaign(client)["id"]

    response = client.patch(
        f"/v1/campaigns/{campaign_id}",
        json={"name": "Cash Rewards UK (spring)", "reward_cash_minor": 700},
    )

    assert response.status_code == 200, response.text
    changed = response.json()
    assert changed["name"] == "Cash Rewards UK (spring)"
    assert changed["reward_cash_minor"] == 700
    assert changed["reward_coupon_minor"] == 500
    assert changed["reward_minor"] == 1200
    assert changed["friends_needed"] == 3
    entries = client.get("/v1/audit/entries").json()
    assert entries[-1]["action"] == "campaign.updated"
    assert entries[-1]["details"] == {"fields": ["name", "reward_cash_minor"]}


def test_a_live_campaign_cannot_be_changed(client: TestClient) -> None:
    campaign_id = live_campaign(client)

    response = client.patch(f"/v1/campaigns/{campaign_id}", json={"reward_cash_minor": 1})

    error = error_of(response, 409)
    assert error["code"] == "campaign_not_editable"
    assert error["details"] == {"status": "live"}
    assert client.get(f"/v1/campaigns/{campaign_id}").json()["reward_cash_minor"] == 500


def test_a_change_that_makes_the_window_end_before_it_starts_is_refused(
    client: TestClient,
) -> None:
    campaign_id = create_campaign(client)["id"]

    response = client.patch(
        f"/v1/campaigns/{campaign_id}", json={"ends_at": "2026-02-01T00:00:00Z"}
    )

    error = error_of(response, 422)
    assert error["code"] == "invalid_campaign"
    assert error["details"] == {"field": "ends_at"}
    assert client.get(f"/v1/campaigns/{campaign_id}").json()["ends_at"] == "2026-06-01T00:00:00Z"
    assert audit_actions(client) == ["campaign.created"]


def test_a_second_campaign_with_the_same_name_is_refused(client: TestClient) -> None:
    create_campaign(client)

    response = client.post("/v1/campaigns", json=uk_campaign_body(market="IE", currency="EUR"))

    error = error_of(response, 409)
    assert error["code"] == "campaign_name_taken"
    assert len(client.get("/v1/campaigns").json()) == 1


def test_funding_twice_with_the_same_funding_id_funds_once(client: TestClient) -> None:
    campaign_id = create_campaign(client)["id"]
    funding_id = str(uuid.uuid4())

    first = fund(client, campaign_id, 25_000, funding_id=funding_id)
    second = fund(client, campaign_id, 25_000, funding_id=funding_id)

    assert first["budget"]["funded_minor"] == 25_000
    assert second["budget"]["funded_minor"] == 25_000
    assert audit_actions(client).count("campaign.funded") == 1
    [source] = client.get("/v1/ledger/accounts", params={"kind": "operator_funding"}).json()
    assert source["debits_posted"] == 25_000


def test_reusing_a_funding_id_for_another_amount_is_refused(client: TestClient) -> None:
    campaign_id = create_campaign(client)["id"]
    funding_id = str(uuid.uuid4())
    fund(client, campaign_id, 25_000, funding_id=funding_id)

    response = client.post(
        f"/v1/campaigns/{campaign_id}/funding",
        json={"amount_minor": 30_000, "currency": "GBP", "funding_id": funding_id},
    )

    error = error_of(response, 409)
    assert error["code"] == "transfer_exists_with_different_field"
    assert client.get(f"/v1/campaigns/{campaign_id}").json()["budget"]["funded_minor"] == 25_000


def test_funding_in_another_currency_is_refused_and_writes_nothing(client: TestClient) -> None:
    campaign_id = create_campaign(client)["id"]

    response = client.post(
        f"/v1/campaigns/{campaign_id}/funding", json={"amount_minor": 10_000, "currency": "EUR"}
    )

    error = error_of(response, 422)
    assert error["code"] == "invalid_campaign"
    assert error["details"] == {"field": "currency", "campaign_currency": "GBP"}
    assert client.get(f"/v1/campaigns/{campaign_id}").json()["budget"]["funded_minor"] == 0
    assert client.get("/v1/ledger/accounts", params={"kind": "operator_funding"}).json() == []
    assert audit_actions(client) == ["campaign.created"]


def test_an_ended_campaign_cannot_be_funded(client: TestClient) -> None:
    campaign_id = live_campaign(client)
    assert client.post(f"/v1/campaigns/{campaign_id}/end").status_code == 200

    response = client.post(
        f"/v1/campaigns/{campaign_id}/funding", json={"amount_minor": 1, "currency": "GBP"}
    )

    assert error_of(response, 409)["code"] == "campaign_ended"
    assert client.get(f"/v1/campaigns/{campaign_id}").json()["budget"]["funded_minor"] == 100_000


def test_campaigns_are_listed_by_status(client: TestClient) -> None:
    live_id = live_campaign(client)
    draft_id = create_campaign(client, name="Cash Rewards FR", market="FR", currency="EUR")["id"]

    everything = client.get("/v1/campaigns").json()
    live = client.get("/v1/campaigns", params={"status": "live"}).json()
    drafts = client.get("/v1/campaigns", params={"status": "draft"}).json()
    ended = client.get("/v1/campaigns", params={"status": "ended"}).json()

    assert {c["id"] for c in everything} == {live_id, draft_id}
    assert [c["id"] for c in live] == [live_id]
    assert [(c["id"], c["currency"]) for c in drafts] == [(draft_id, "EUR")]
    assert ended == []
    bad = error_of(client.get("/v1/campaigns", params={"status": "running"}), 422)
    assert bad["code"] == "invalid_request"
    assert bad["details"]["problems"][0]["location"] == "query.status"


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("GET", "", None),
        ("PATCH", "", {"name": "Renamed"}),
        ("POST", "/funding", {"amount_minor": 100, "currency": "GBP"}),
        ("POST", "/launch", None),
        ("POST", "/end", None),
    ],
)
def test_an_unknown_campaign_is_404_and_a_malformed_id_is_422(
    client: TestClient, method: str, suffix: str, body: dict[str, Any] | None
) -> None:
    unknown = str(uuid.uuid4())

    missing = error_of(client.request(method, f"/v1/campaigns/{unknown}{suffix}", json=body), 404)
    malformed = error_of(
        client.request(method, f"/v1/campaigns/not-a-uuid{suffix}", json=body), 422
    )

    assert missing["code"] == "campaign_not_found"
    assert missing["details"] == {"campaign_id": unknown}
    assert malformed["code"] == "invalid_request"
    assert [p["location"] for p in malformed["details"]["problems"]] == ["path.campaign_id"]
    assert_nothing_written(client)


def test_the_audit_log_names_the_operator_whose_token_was_sent(
    client: TestClient, database: Database, clock: FrozenClock
) -> None:
    marketer = operator_headers(database, clock, "marketer")
    response = client.post(
        "/v1/campaigns",
        json=uk_campaign_body(),
        # Who acts is the token's operator: a header claiming someone else changes nothing.
        headers={**marketer, "X-Parrain-Actor": "operator:alice"},
    )
    assert response.status_code == 201
    create_campaign(client, name="By the admin")

    entries = [
        (entry["action"], entry["actor"].split("-")[0])
        for entry in client.get("/v1/audit/entries").json()
        if entry["action"] == "campaign.created"
    ]
    assert entries == [
        ("campaign.created", "operator:marketer"),
        ("campaign.created", "operator:admin"),
    ]
