"""The member pages in Chromium at a phone's width, without JavaScript of our own: entering
from the app's link, the progress, the consent switches (turned on, saved, withdrawn with
one tap), my data, and the invitation page; axe-core finds no serious violation on any."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from parrain.db.session import Database
from parrain.kit.clock import FrozenClock
from tests.browser.conftest import LiveServer, assert_accessible
from tests.consent import consents
from tests.referrals.programme import friend_names
from tests.web.member.pages import token_for


def test_a_member_walks_through_their_pages(
    page: Page, live_server: LiveServer, database: Database, clock: FrozenClock
) -> None:
    programme = consents.launch(database, clock, friend_welcome_minor=500)
    enrolment = programme.enrol("ann", paypal_receiver="ann@paypal.example")
    programme.invite_many(enrolment, friend_names("ann-friend", 2))

    page.goto(live_server.url(f"/m/enter?token={token_for(clock, 'ann')}"))
    assert page.url == live_server.url("/m")  # the token left the address bar
    expect(page.locator("h1")).to_have_text("Your progress")
    expect(page.get_by_text("2 of 5 friends so far")).to_be_visible()
    assert_accessible(page)

    page.get_by_role("link", name="Your choices").click()
    expect(page.get_by_text("Your reward does not depend on this.", exact=True)).to_be_visible()
    switches = page.get_by_role("switch")
    expect(switches).to_have_count(3)
    for index in range(3):
        expect(switches.nth(index)).not_to_be_checked()
    assert_accessible(page)
    page.get_by_text("Read the detail").click()
    expect(page.get_by_text("IN DETAIL", exact=True)).to_have_count(0)
    switches.nth(1).check()
    page.get_by_role("button", name="Save my choices").click()
    expect(page.get_by_text("Your choices are saved.")).to_be_visible()
    expect(page.get_by_role("switch").nth(1)).to_be_checked()
    assert consents.check(database, clock, enrolment.member_id).decision == "allow"
    page.get_by_role("button", name="Withdraw").click()
    expect(page.get_by_text("Withdrawn. We stop this use now.")).to_be_visible()
    assert consents.check(database, clock, enrolment.member_id).decision == "deny"
    assert_accessible(page)

    page.get_by_role("link", name="My data").click()
    expect(page.get_by_text("ann@paypal.example")).to_be_visible()
    assert_accessible(page)
    page.get_by_role("link", name="Erase my data…").click()
    assert_accessible(page)

    page.goto(live_server.url(f"/r/{enrolment.code}?lang=fr"))
    expect(page.locator("h1")).to_have_text("ann vous invite")
    assert_accessible(page)


def test_a_newcomer_enrols_in_french(
    page: Page, live_server: LiveServer, database: Database, clock: FrozenClock
) -> None:
    consents.launch(database, clock)
    page.goto(live_server.url(f"/m/enter?token={token_for(clock, 'zoe')}&lang=fr"))
    expect(page.locator("h1")).to_have_text("Rejoindre Cash Rewards")
    assert_accessible(page)
    page.get_by_label("Nom d'utilisateur").fill("zoé")
    page.get_by_label("Adresse e-mail PayPal").fill("zoe@paypal.example")
    page.get_by_role("button", name="M'inscrire et obtenir mon lien").click()
    expect(page.locator("h1")).to_have_text("Votre progression")
    expect(page.get_by_text("0 sur 5 amis pour l'instant")).to_be_visible()
    assert_accessible(page)
