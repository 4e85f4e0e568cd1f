from __future__ import annotations

import html
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from parrain.audit import service as audit
from parrain.campaigns import gate
from parrain.campaigns.gate import GateFinding
from parrain.campaigns.schemas import CampaignStatus
from parrain.db.session import Database
from parrain.kit.clock import FrozenClock
from parrain.operators.roles import Role
from tests.web.console.helpers import csrf_of, draft_campaign, signed_in_as, status_of


def audit_log(database: Database) -> list[tuple[str, str]]:
    entries = database.read(lambda s: audit.list_entries(session=s, limit=500))
    return [(entry.actor, entry.action) for entry in entries]


def test_the_list_shows_each_campaign_with_its_state_and_budget_left(
    client: TestClient, database: Database, clock: FrozenClock
) -> None:
    signed_in_as(client, database, clock, Role.REVIEWER)
    assert "There are no campaigns yet." in client.get("/console").text
    draft = draft_campaign(database, clock, funded=False)
    live = draft_campaign(database, clock, status=CampaignStatus.LIVE)
    page = client.get("/console")
    assert page.status_code == 200
    assert '<a href="/console" aria-current="page">Campaigns</a>' in page.text
    assert f'<a href="/console/campaigns/{draft.id}">{draft.name}</a>' in page.text
    assert f'<a href="/console/campaigns/{live.id}">{live.name}</a>' in page.text
    rows = page.text.split("<tr>")[2:]
    assert "Draft" in rows[0]
    assert "£0.00" in rows[0]
    assert "Live" in rows[1]
    assert "£100.00" in rows[1]
    assert "GB" in rows[1]
    assert "GBP" in rows[1]


def test_the_list_in_french(client: TestClient, database: Database, clock: FrozenClock) -> None:
    signed_in_as(client, database, clock, Role.MARKETER)
    draft_campaign(database, clock, status=CampaignStatus.PAUSED)
    page = client.get("/console?lang=fr")
    assert '<html lang="fr">' in page.text
    assert "Budget restant" in page.text
    assert "Suspendue" in page.text
    assert "100,00\xa0£GB" in page.text or "100,00 £GB" in page.text


def test_a_draft_shows_the_gates_reasons_in_sentences(
    client: TestClient, database: Database, clock: FrozenClock
) -> None:
    signed_in_as(client, database, clock, Role.AUDITOR)
    draft = draft_campaign(database, clock, funded=False, declared=False)
    page = client.get(f"/console/campaigns/{draft.id}")
    assert page.status_code == 200
    assert "The campaign cannot go live until these problems are fixed:" in page.text
    assert "<strong>Prize budget</strong>: <span>The prize budget holds £0.00, less than one" in (
        page.text
    )
    assert "<strong>Data-use declaration</strong>: <span>The campaign has no data-use" in (
        page.text
    )
    # An auditor reads it all but gets no buttons.
    assert "can see this campaign but not change its state" in page.text
    assert "/launch" not in page.text


def test_the_gates_reasons_in_french_where_the_page_knows_the_check(
    client: TestClient, database: Database, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The budget's finding is said in French with French amounts, the missing declaration
    too; a finding the page does not know keeps its English sentence, marked as English."""
    monkeypatch.setitem(
        gate._checks,
        "zz_unknown",
        lambda _s, _c, _k: [GateFinding("zz_unknown", "an English sentence from elsewhere")],
    )
    signed_in_as(client, database, clock, Role.AUDITOR)
    draft = draft_campaign(database, clock, funded=False, declared=False)
    page = html.unescape(client.get(f"/console/campaigns/{draft.id}?lang=fr").text)
    budget = "Le budget des prix contient 0,00\xa0£GB, moins qu'un prix (10,00\xa0£GB)."
    assert f"<span>{budget}</span>" in page
    assert "<span>La campagne n'a pas de déclaration d'utilisation des données" in page
    assert '<span lang="en">An English sentence from elsewhere.</span>' in page
    clock.advance(timedelta(days=400))  # past the campaign's window
    signed_in_as(client, database, clock, Role.AUDITOR)  # the first session has idled out
    later = html.unescape(client.get(f"/console/campaigns/{draft.id}?lang=fr").text)
    assert "<span>La période de la campagne est déjà terminée.</span>" in later


def test_a_ready_draft_passes_the_gate_and_offers_launch(
    client: TestClient, database: Database, clock: FrozenClock
) -> None:
    signed_in_as(client, database, clock, Role.MARKETER)
    draft = draft_campaign(database, clock)
    page = client.get(f"/console/campaigns/{draft.id}")
    assert "The campaign passes the launch gate: it can go live." in page.text
    assert f'action="/console/campaigns/{draft.id}/launch"' in page.text
    assert "/pause" not in page.text
    assert "£5.00 in cash to PayPal and £5.00 in coupons" in page.text


@pytest.mark.parametrize("role", [Role.ADMIN, Role.MARKETER])
def test_the_lifecycle_by_an_allowed_role(
    client: TestClient, database: Database, clock: FrozenClock, role: Role
) -> None:
    username = signed_in_as(client, database, clock, role)
    campaign = draft_campaign(database, clock)
    steps = [
        ("launch", CampaignStatus.LIVE, "The campaign is live: members can enrol."),
        ("pause", CampaignStatus.PAUSED, "The campaign is paused: the programme is removed"),
        ("resume", CampaignStatus.LIVE, "The campaign is live again."),
        ("end", CampaignStatus.ENDED, "The campaign has ended."),
    ]
    for action, status, message in steps:
        page = client.get(f"/console/campaigns/{campaign.id}")
        response = client.post(
            f"/console/campaigns/{campaign.id}/{action}", data={"csrf_token": csrf_of(page)}
        )
        assert response.status_code == 303
        assert response.headers["location"] == f"/console/campaigns/{campaign.id}"
        assert status_of(database, campaign) is status
        after = client.get(response.headers["location"])
        assert message in after.text
        assert message not in client.get(response.headers["location"]).text  # shown once
    assert "An ended campaign cannot change state." in after.text
    actor = f"operator:{username}"
    assert [a for who, a in audit_log(database) if who == actor and a.startswith("campaign.")] == [
        "campaign.launched",
        "campaign.paused",
        "campaign.resumed",
        "campaign.ended",
    ]


def test_a_refused_launch_comes_back_with_the_reasons(
    client: TestClient, database: Database, clock: FrozenClock
) -> None:
    username = signed_in_as(client, database, clock, Role.MARKETER)
    draft = draft_campaign(database, clock, funded=False)
    page = client.get(f"/console/campaigns/{draft.id}")
    response = client.post(
        f"/console/campaigns/{draft.id}/launch", data={"csrf_token": csrf_of(page)}
    )
    assert response.status_code == 303
    assert status_of(database, draft) is CampaignStatus.DRAFT
    after = client.get(response.headers["location"])
    assert "The campaign was not launched: the launch gate found the problems below." in (
        after.text
    )
    assert 'role="alert"' in after.text
    assert "The prize budget holds £0.00, less than one prize (£10.00)." in after.text
    assert (f"operator:{username}", "campaign.action_refused") in audit_log(database)


def test_an_action_the_state_does_not_allow_changes_nothing(
    client: TestClient, database: Database, clock: FrozenClock
) -> None:
    signed_in_as(client, database, clock, Role.ADMIN)
    draft = draft_campaign(database, clock)
    page = client.get(f"/console/campaigns/{draft.id}")
    response = client.post(
        f"/console/campaigns/{draft.id}/resume", data={"csrf_token": csrf_of(page)}
    )
    assert response.status_code == 303
    assert status_of(database, draft) is CampaignStatus.DRAFT
    after = client.get(response.headers["location"])
    assert "This action is not possible in the campaign's current state." in html.unescape(
        after.text
    )


@pytest.mark.parametrize("role", [Role.REVIEWER, Role.FINANCE, Role.AUDITOR])
@pytest.mark.parametrize(
    ("start", "action"),
    [
        (CampaignStatus.DRAFT, "launch"),
        (CampaignStatus.LIVE, "pause"),
        (CampaignStatus.PAUSED, "resume"),
        (CampaignStatus.LIVE, "end"),
    ],
)
def test_a_role_without_the_permission_gets_403_and_changes_nothing(
    client: TestClient,
    database: Database,
    clock: FrozenClock,
    role: Role,
    start: CampaignStatus,
    action: str,
) -> None:
    signed_in_as(client, database, clock, role)
    campaign = draft_campaign(database, clock, status=start)
    page = client.get(f"/console/campaigns/{campaign.id}")
    assert page.status_code == 200
    response = client.post(
        f"/console/campaigns/{campaign.id}/{action}", data={"csrf_token": csrf_of(page)}
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert status_of(database, campaign) is start


def test_the_403_is_a_page_for_a_browser(
    client: TestClient, database: Database, clock: FrozenClock
) -> None:
    signed_in_as(client, database, clock, Role.FINANCE)
    campaign = draft_campaign(database, clock)
    page = client.get(f"/console/campaigns/{campaign.id}")
    response = client.post(
        f"/console/campaigns/{campaign.id}/launch",
        data={"csrf_token": csrf_of(page)},
        headers={"Accept": "text/html"},
    )
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("text/html")
    assert "Your role (Finance) does not allow this." in response.text


@pytest.mark.parametrize("token", [None, "forged", "from-another-session"])
def test_a_lifecycle_form_without_this_sessions_csrf_token_is_refused(
    client: TestClient, database: Database, clock: FrozenClock, token: str | None
) -> None:
    campaign = draft_campaign(database, clock)
    if token == "from-another-session":
        signed_in_as(client, database, clock, Role.ADMIN)
        token = csrf_of(client.get("/console"))
    signed_in_as(client, database, clock, Role.MARKETER)
    response = client.post(
        f"/console/campaigns/{campaign.id}/launch",
        data={} if token is None else {"csrf_token": token},
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "csrf_failed"
    assert status_of(database, campaign) is CampaignStatus.DRAFT


def test_an_unknown_campaign_is_a_404(
    client: TestClient, database: Database, clock: FrozenClock
) -> None:
    signed_in_as(client, database, clock, Role.ADMIN)
    response = client.get("/console/campaigns/0190f0a0-0000-7000-8000-000000000000")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "campaign_not_found"
