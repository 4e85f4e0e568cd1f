"""The ledger and audit views after a real lifecycle: balances, accounts, the chain."""

from __future__ import annotations

import itertools
import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from parrain.db.session import Database
from tests.web.helpers import create_campaign, declare_programme, error_of


@pytest.fixture
def lifecycle(client: TestClient) -> str:
    """A GBP campaign declared, funded with 1,000.00, launched, paused, resumed and ended."""
    campaign_id: str = create_campaign(client)["id"]
    declare_programme(client, campaign_id)
    funded = client.post(
        f"/v1/campaigns/{campaign_id}/funding",
        json={"amount_minor": 100_000, "currency": "GBP"},
    )
    assert funded.status_code == 200
    for action in ("launch", "pause", "resume", "end"):
        assert client.post(f"/v1/campaigns/{campaign_id}/{action}").status_code == 200
    return campaign_id


#: Audit entries of the test's own operator, before everything else.
OPERATOR = 2


def test_the_books_are_sound_and_balanced_after_a_lifecycle(
    client: TestClient, lifecycle: str
) -> None:
    assert client.get("/v1/ledger/check").json() == {"sound": True, "problems": []}
    assert client.get("/v1/ledger/balances").json() == {
        "balanced": True,
        "currencies": [
            {
                "currency": "GBP",
                "debits_pending": 0,
                "debits_posted": 100_000,
                "credits_pending": 0,
                "credits_posted": 100_000,
                "balanced": True,
            }
        ],
    }


def test_accounts_are_listed_and_filtered(client: TestClient, lifecycle: str) -> None:
    everything = client.get("/v1/ledger/accounts").json()
    budgets = client.get("/v1/ledger/accounts", params={"kind": "campaign_budget"}).json()
    in_gbp = client.get("/v1/ledger/accounts", params={"currency": "gbp"}).json()
    in_eur = client.get("/v1/ledger/accounts", params={"currency": "EUR"}).json()

    assert sorted(a["kind"] for a in everything) == [
        "campaign_budget",
        "campaign_cash_payable",
        "campaign_coupon_liability",
        "operator_funding",
    ]
    [budget] = budgets
    assert budget["credits_posted"] == 100_000
    assert budget["debits_must_not_exceed_credits"] is True
    assert len(in_gbp) == 4
    assert in_eur == []


def test_an_account_is_read_by_id(client: TestClient, lifecycle: str) -> None:
    [budget] = client.get("/v1/ledger/accounts", params={"kind": "campaign_budget"}).json()
    unknown = str(uuid.uuid4())

    found = client.get(f"/v1/ledger/accounts/{budget['id']}")
    missing = error_of(client.get(f"/v1/ledger/accounts/{unknown}"), 404)
    malformed = error_of(client.get("/v1/ledger/accounts/42"), 422)

    assert found.json() == budget
    assert missing["code"] == "account_not_found"
    assert missing["details"] == {"account_id": unknown}
    assert malformed["code"] == "invalid_request"


def test_the_audit_log_records_the_lifecycle_and_verifies(
    client: TestClient, lifecycle: str
) -> None:
    everything = client.get("/v1/audit/entries").json()
    # First the test's own administrator: created, then given a token.
    assert [e["action"] for e in everything[:OPERATOR]] == [
        "operator.created",
        "operator.token_issued",
    ]
    entries = everything[OPERATOR:]

    assert [(e["seq"] - OPERATOR, e["action"]) for e in entries] == [
        (1, "campaign.created"),
        (2, "consent.declared"),
        (3, "ledger.account_opened"),
        (4, "campaign.funded"),
        (5, "campaign.launched"),
        (6, "campaign.paused"),
        (7, "campaign.resumed"),
        (8, "campaign.ended"),
    ]
    subject = f"campaign:{lifecycle}"
    assert entries[3]["subject"] == subject
    assert entries[3]["details"]["amount_minor"] == 100_000
    assert entries[4]["details"] == {"from": "draft", "to": "live"}
    assert all(e["prev_hash"] == p["hash"] for p, e in itertools.pairwise(everything))
    assert client.get("/v1/audit/verify").json() == {
        "intact": True,
        "entries": OPERATOR + 8,
        "breaks": [],
    }


def test_audit_entries_are_paged_and_filtered(client: TestClient, lifecycle: str) -> None:
    first = client.get("/v1/audit/entries", params={"limit": 3}).json()
    rest = client.get("/v1/audit/entries", params={"after_seq": first[-1]["seq"]}).json()
    about_campaign = client.get(
        "/v1/audit/entries", params={"subject": f"campaign:{lifecycle}"}
    ).json()

    assert [e["seq"] for e in first] == [1, 2, 3]
    assert [e["seq"] - OPERATOR for e in rest] == [2, 3, 4, 5, 6, 7, 8]
    assert [e["seq"] - OPERATOR for e in about_campaign] == [1, 2, 4, 5, 6, 7, 8]


def test_verify_finds_an_edited_entry(
    client: TestClient, database: Database, lifecycle: str
) -> None:
    with database.transaction() as session:
        session.execute(text("UPDATE audit_entries SET actor = 'mallory' WHERE seq = 5"))

    report = client.get("/v1/audit/verify").json()

    assert report["intact"] is False
    assert report["entries"] == OPERATOR + 8
    assert 5 in [b["seq"] for b in report["breaks"]]
