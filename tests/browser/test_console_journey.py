"""The operator's journeys in Chromium: signing in, pausing and resuming a live campaign
("temporarily remove the programme", then bring it back), and the launch gate refusing the
clause of DESIGN.md §1 with its reasons."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from parrain.campaigns.schemas import CampaignStatus
from parrain.consent import service as consent
from parrain.db.session import Database
from parrain.kit.clock import FrozenClock
from parrain.operators.roles import Role
from tests.browser.conftest import LiveServer, assert_accessible
from tests.browser.helpers import sign_in
from tests.consent.declarations import ACTOR, clause_of_the_case
from tests.consent.declarations import draft_campaign as funded_draft
from tests.operators.helpers import create_operator
from tests.web.console.helpers import draft_campaign, status_of


def test_an_operator_signs_in_pauses_and_resumes_a_live_campaign(
    page: Page, console_server: LiveServer, database: Database, clock: FrozenClock
) -> None:
    create_operator(database, clock, "grace", Role.MARKETER)
    campaign = draft_campaign(database, clock, status=CampaignStatus.LIVE)

    sign_in(page, console_server, "grace")
    expect(page.locator("h1")).to_have_text("Campaigns")
    row = page.get_by_role("row", name=campaign.name)
    expect(row).to_contain_text("Live")
    expect(row).to_contain_text("£100.00")
    assert_accessible(page)

    page.get_by_role("link", name=campaign.name).click()
    expect(page.locator("h1")).to_contain_text(campaign.name)
    expect(page.locator("h1 .state")).to_have_text("Live")
    assert_accessible(page)

    page.get_by_role("button", name="Pause").click()
    expect(page.get_by_role("status")).to_have_text(
        "The campaign is paused: the programme is removed for now, and what members already "
        "earned is honoured."
    )
    expect(page.locator("h1 .state")).to_have_text("Paused")
    expect(page.get_by_role("button", name="Pause")).to_have_count(0)
    assert status_of(database, campaign) is CampaignStatus.PAUSED
    assert_accessible(page)

    page.get_by_role("button", name="Resume").click()
    expect(page.get_by_role("status")).to_have_text("The campaign is live again.")
    expect(page.locator("h1 .state")).to_have_text("Live")
    assert status_of(database, campaign) is CampaignStatus.LIVE
    # The message is shown once: a reload shows the state, not the message again.
    page.reload()
    expect(page.locator("h1 .state")).to_have_text("Live")
    expect(page.get_by_role("status")).to_have_count(0)


def test_the_launch_gate_refuses_the_clause_of_the_case_with_its_reasons(
    page: Page, console_server: LiveServer, database: Database, clock: FrozenClock
) -> None:
    create_operator(database, clock, "grace", Role.MARKETER)
    draft = funded_draft(database, clock)
    database.run(
        lambda s: consent.declare(
            session=s,
            campaign_id=draft.id,
            declaration_in=clause_of_the_case(),
            actor=ACTOR,
            clock=clock,
        )
    )

    # Straight to the draft's page: the sign-in form brings the operator back to it.
    sign_in(page, console_server, "grace", start=f"/console/campaigns/{draft.id}")
    expect(page.locator("h1")).to_contain_text(draft.name)
    expect(page.locator("h1 .state")).to_have_text("Draft")
    gate = page.locator("section[aria-labelledby=gate]")
    expect(gate).to_contain_text("The campaign cannot go live until these problems are fixed:")
    assert_accessible(page)

    page.get_by_role("button", name="Launch").click()
    expect(page.get_by_role("alert")).to_have_text(
        "The campaign was not launched: the launch gate found the problems below."
    )
    expect(page.locator("h1 .state")).to_have_text("Draft")
    reasons = gate.locator("li")
    expect(reasons).to_have_count(7)  # bundled, "Sponsor", any media, worldwide, for ever, x2
    for index in range(7):
        expect(reasons.nth(index).locator("strong")).to_have_text("Data-use declaration")
    for words in ("reward", "Sponsor", "any media", "worldwide", "perpetu"):
        expect(gate).to_contain_text(words)
    assert_accessible(page)
    assert status_of(database, draft) is CampaignStatus.DRAFT
