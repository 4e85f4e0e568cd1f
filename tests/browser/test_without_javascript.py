"""The pages work with JavaScript turned off: a member says yes then takes it back, an
operator signs in and pauses a campaign — forms and links only. No page ships a script."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from parrain.campaigns.schemas import CampaignStatus
from parrain.db.session import Database
from parrain.kit.clock import FrozenClock
from parrain.operators.roles import Role
from tests.browser.conftest import OUTPUT, PHONE, LiveServer
from tests.browser.helpers import enter_as_member
from tests.consent import consents
from tests.operators.helpers import PASSWORD, create_operator
from tests.web.console.helpers import draft_campaign, status_of


@pytest.fixture
def no_js(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    context = browser.new_context(viewport=PHONE, locale="en-GB", java_script_enabled=False)
    opened = context.new_page()
    opened.set_default_timeout(15_000)
    try:
        yield opened
    finally:
        folder = OUTPUT / "screenshots"
        folder.mkdir(parents=True, exist_ok=True)
        opened.screenshot(path=folder / f"{request.node.name}.png", full_page=True)
        context.close()


def _no_script(page: Page) -> None:
    assert "<script" not in page.content().lower(), page.url


def test_a_member_says_yes_then_no_without_javascript(
    no_js: Page, live_server: LiveServer, database: Database, clock: FrozenClock
) -> None:
    programme = consents.launch(database, clock)
    ann = programme.enrol("ann")
    enter_as_member(no_js, live_server, clock, "ann")
    expect(no_js.locator("h1")).to_have_text("Your progress")
    _no_script(no_js)
    no_js.get_by_role("link", name="Your choices").click()
    _no_script(no_js)
    no_js.get_by_role("switch", name="social").check()
    no_js.get_by_role("button", name="Save my choices").click()
    expect(no_js.get_by_text("Your choices are saved.")).to_be_visible()
    assert consents.check(database, clock, ann.member_id, channel="social").decision == "allow"
    no_js.get_by_role("button", name="Withdraw").click()
    expect(no_js.get_by_text("Withdrawn. We stop this use now.")).to_be_visible()
    assert consents.check(database, clock, ann.member_id, channel="social").decision == "deny"
    no_js.get_by_role("link", name="My data").click()
    expect(no_js.locator("h1")).to_have_text("My data")
    _no_script(no_js)


def test_an_operator_pauses_a_campaign_without_javascript(
    no_js: Page, console_server: LiveServer, database: Database, clock: FrozenClock
) -> None:
    campaign = draft_campaign(database, clock, status=CampaignStatus.LIVE)
    create_operator(database, clock, "mia", Role.MARKETER)
    # The sign-in form as a person fills it (axe needs JavaScript: the journeys check it).
    no_js.goto(console_server.url(f"/console/campaigns/{campaign.id}"))
    _no_script(no_js)
    no_js.get_by_label("Username").fill("mia")
    no_js.get_by_label("Password").fill(PASSWORD)
    no_js.get_by_role("button", name="Sign in").click()
    expect(no_js.get_by_text("Signed in as mia")).to_be_visible()
    _no_script(no_js)
    no_js.get_by_role("button", name="Pause").click()
    expect(no_js.get_by_role("status")).to_be_visible()
    assert status_of(database, campaign) is CampaignStatus.PAUSED
    _no_script(no_js)
