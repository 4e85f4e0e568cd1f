from __future__ import annotations

import html
from typing import Any

import pytest
from fastapi.testclient import TestClient

from parrain.audit import service as audit
from parrain.campaigns import service as campaigns
from parrain.campaigns.schemas import CampaignRead, CampaignStatus
from parrain.db.session import Database
from parrain.kit.clock import FrozenClock
from parrain.operators.roles import Role
from tests.web.console.helpers import csrf_of, draft_campaign, signed_in_as


def form_fields(**changes: str) -> dict[str, str]:
    fields = {
        "name": "Cash Rewards France",
        "market": "fr",
        "currency": "eur",
        "languages": "fr, en",
        "starts_at": "2026-03-02T00:00",
        "ends_at": "2026-04-30T23:59",
        "friends_needed": "5",
        "enrolment_window_hours": "48",
        "reward_cash": "60.00",
        "reward_coupon": "40.5",
        "friend_welcome": "5",
        "holding_days": "14",
        "coupon_min_spend": "25.00",
        "coupon_valid_days": "90",
        "attribution_model": "first_click",
        "attribution_window_hours": "168",
        "new_customer_days": "365",
        "qualifying_action": "first_order",
        "min_order": "15.00",
        "landing_url": "https://apps.example/parrain",
    }
    fields.update(changes)
    return fields


def every_campaign(database: Database) -> list[CampaignRead]:
    return database.read(lambda s: campaigns.list_campaigns(session=s))


def post_new(client: TestClient, **changes: str) -> Any:
    form = client.get("/console/campaigns/new")
    assert form.status_code == 200, form.text
    return client.post(
        "/console/campaigns/new", data={**form_fields(**changes), "csrf_token": csrf_of(form)}
    )


def test_a_marketer_creates_a_draft_from_the_form(
    client: TestClient, database: Database, clock: FrozenClock
) -> None:
    signed_in_as(client, database, clock, Role.MARKETER)
    listing = client.get("/console")
    assert 'href="/console/campaigns/new"' in listing.text
    form = client.get("/console/campaigns/new")
    assert '<label for="reward_cash">Cash to PayPal</label>' in form.text
    assert 'value="2026-03-01T09:00"' in form.text  # starts now by default
    response = post_new(client)
    assert response.status_code == 303
    [created] = every_campaign(database)
    assert response.headers["location"] == f"/console/campaigns/{created.id}"
    assert (created.name, created.market, created.currency) == ("Cash Rewards France", "FR", "EUR")
    assert created.languages == ["fr", "en"]
    assert created.status is CampaignStatus.DRAFT
    assert (created.reward_cash_minor, created.reward_coupon_minor) == (6000, 4050)
    assert (created.friend_welcome_minor, created.min_order_minor) == (500, 1500)
    assert created.coupon_min_spend_minor == 2500
    assert (created.friends_needed, created.enrolment_window_hours) == (5, 48)
    assert created.starts_at.isoformat() == "2026-03-02T00:00:00+00:00"
    assert (created.attribution_model, created.qualifying_action) == ("first_click", "first_order")
    assert created.landing_url == "https://apps.example/parrain"
    page = client.get(response.headers["location"])
    assert "The draft is saved. Fund it, then launch it." in page.text


def test_refused_fields_are_named_and_what_was_typed_is_kept(
    client: TestClient, database: Database, clock: FrozenClock
) -> None:
    signed_in_as(client, database, clock, Role.ADMIN)
    response = post_new(
        client,
        market="XX",
        reward_cash="5.001",
        friends_needed="0",
        ends_at="2026-03-01T00:00",
        landing_url="ftp://nowhere",
        enrolment_window_hours="many",
    )
    assert response.status_code == 422
    text = html.unescape(response.text)
    assert "Some fields need a change:" in text
    assert "Enter a two-letter country code such as GB or FR." in text
    assert "Enter an amount such as 5.00, with no more decimals than the currency has." in text
    assert "Enter a whole number from 1 to 100." in text
    assert "Enter a whole number." in text
    assert "Enter an address that starts with https:// or http://." in text
    assert 'id="reward_cash" name="reward_cash" value="5.001" aria-invalid="true"' in text
    assert 'value="Cash Rewards France"' in text
    assert every_campaign(database) == []


def test_the_model_rules_are_explained_on_their_fields(
    client: TestClient, database: Database, clock: FrozenClock
) -> None:
    signed_in_as(client, database, clock, Role.ADMIN)
    response = post_new(client, ends_at="2026-03-01T00:00", reward_cash="0", reward_coupon="0")
    assert response.status_code == 422
    assert "The campaign must end after it starts." in response.text
    assert "The reward must be greater than zero." in response.text
    assert every_campaign(database) == []


def test_a_name_in_use_is_refused(
    client: TestClient, database: Database, clock: FrozenClock
) -> None:
    signed_in_as(client, database, clock, Role.MARKETER)
    assert post_new(client).status_code == 303
    again = post_new(client)
    assert again.status_code == 409
    assert "Another campaign already has this name." in again.text
    assert len(every_campaign(database)) == 1


def test_the_form_in_french(client: TestClient, database: Database, clock: FrozenClock) -> None:
    signed_in_as(client, database, clock, Role.MARKETER)
    client.cookies.set("parrain_lang", "fr")
    response = post_new(client, friends_needed="")
    assert response.status_code == 422
    assert "Renseignez ce champ." in response.text
    assert "Argent versé sur PayPal" in response.text


def test_a_draft_is_changed_from_its_form(
    client: TestClient, database: Database, clock: FrozenClock
) -> None:
    username = signed_in_as(client, database, clock, Role.MARKETER)
    draft = draft_campaign(database, clock)
    page = client.get(f"/console/campaigns/{draft.id}")
    assert f'href="/console/campaigns/{draft.id}/edit"' in page.text
    form = client.get(f"/console/campaigns/{draft.id}/edit")
    assert form.status_code == 200
    assert 'id="reward_cash" name="reward_cash" value="5.00"' in form.text
    assert 'name="market"' not in form.text  # fixed once the draft exists
    fields = form_fields(name="Renamed", reward_cash="7.50", market="US", currency="USD")
    response = client.post(
        f"/console/campaigns/{draft.id}/edit", data={**fields, "csrf_token": csrf_of(form)}
    )
    assert response.status_code == 303
    changed = database.read(lambda s: campaigns.get(session=s, campaign_id=draft.id))
    assert (changed.name, changed.reward_cash_minor) == ("Renamed", 750)
    assert (changed.market, changed.currency) == ("GB", "GBP")
    assert "The changes are saved." in client.get(response.headers["location"]).text
    entries = database.read(lambda s: audit.list_entries(session=s, limit=100))
    assert (f"operator:{username}", "campaign.updated") in [(e.actor, e.action) for e in entries]


@pytest.mark.parametrize("status", [CampaignStatus.LIVE, CampaignStatus.ENDED])
def test_only_a_draft_can_be_changed(
    client: TestClient, database: Database, clock: FrozenClock, status: CampaignStatus
) -> None:
    signed_in_as(client, database, clock, Role.ADMIN)
    campaign = draft_campaign(database, clock, status=status)
    assert "/edit" not in client.get(f"/console/campaigns/{campaign.id}").text
    form = client.get(f"/console/campaigns/{campaign.id}/edit")
    assert form.status_code == 303
    token = csrf_of(client.get("/console"))
    response = client.post(
        f"/console/campaigns/{campaign.id}/edit",
        data={**form_fields(name="Sneaky"), "csrf_token": token},
    )
    assert response.status_code == 303
    after = client.get(response.headers["location"])
    assert "Only a draft can be changed" in html.unescape(after.text)
    unchanged = database.read(lambda s: campaigns.get(session=s, campaign_id=campaign.id))
    assert unchanged.name == campaign.name


@pytest.mark.parametrize("role", [Role.REVIEWER, Role.FINANCE, Role.AUDITOR])
def test_roles_without_the_permission_cannot_create_or_change(
    client: TestClient, database: Database, clock: FrozenClock, role: Role
) -> None:
    signed_in_as(client, database, clock, role)
    draft = draft_campaign(database, clock)
    assert "/console/campaigns/new" not in client.get("/console").text
    assert "/edit" not in client.get(f"/console/campaigns/{draft.id}").text
    token = csrf_of(client.get("/console"))
    created = client.post("/console/campaigns/new", data={**form_fields(), "csrf_token": token})
    changed = client.post(
        f"/console/campaigns/{draft.id}/edit",
        data={**form_fields(name="Changed"), "csrf_token": token},
    )
    assert created.status_code == changed.status_code == 403
    assert [c.name for c in every_campaign(database)] == [draft.name]


def test_the_forms_need_the_sessions_csrf_token(
    client: TestClient, database: Database, clock: FrozenClock
) -> None:
    signed_in_as(client, database, clock, Role.ADMIN)
    draft = draft_campaign(database, clock)
    created = client.post("/console/campaigns/new", data=form_fields())
    changed = client.post(
        f"/console/campaigns/{draft.id}/edit",
        data={**form_fields(name="Changed"), "csrf_token": "forged"},
    )
    for response in (created, changed):
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "csrf_failed"
    assert [c.name for c in every_campaign(database)] == [draft.name]


def test_an_unknown_currency_is_the_only_refusal_of_the_amounts(
    client: TestClient, database: Database, clock: FrozenClock
) -> None:
    signed_in_as(client, database, clock, Role.ADMIN)
    response = post_new(client, currency="ZZZ", friends_needed="")
    assert response.status_code == 422
    text = response.text
    assert "Enter a three-letter currency code such as GBP or EUR." in text
    assert text.count("Fill this in.") == 2  # friends needed: in the summary and on the field
    summary = text.split('role="alert"')[1].split("</ul>")[0]
    assert summary.index("currency code") < summary.index("Fill this in.")  # the form's order
