"""The member's and the friend's journeys in Chromium: a friend arrives from the sponsorship
link and signs up in the marketplace's app, and the member's progress moves; a member says no
to every optional use and is rewarded all the same; a yes taken back with one tap; the export
downloaded from "my data"."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import httpx
from playwright.sync_api import Browser, Page, expect

from parrain.db.session import Database
from parrain.kit.clock import FrozenClock
from tests.browser.conftest import LiveServer, assert_accessible
from tests.browser.helpers import another_phone, enter_as_member
from tests.consent import consents
from tests.referrals.programme import Programme, friend_names
from tests.web.helpers import api_key_headers


def test_a_friend_follows_the_link_signs_up_and_the_members_progress_moves(
    page: Page, browser: Browser, live_server: LiveServer, database: Database, clock: FrozenClock
) -> None:
    programme = Programme.launch(database, clock, friend_welcome_minor=500)
    enrolment = programme.enrol("ann")
    programme.invite(enrolment, "ann-friend1")
    marketplace = api_key_headers(database, clock, "events")

    enter_as_member(page, live_server, clock, "ann")
    expect(page.locator("h1")).to_have_text("Your progress")
    expect(page.get_by_text("1 of 5 friends so far")).to_be_visible()
    expect(page.get_by_text("4 more friends to go.")).to_be_visible()
    assert_accessible(page)

    with another_phone(browser, "test_a_friend_follows_the_link-friend") as friend:
        friend.goto(live_server.url(f"/r/{enrolment.code}"))
        expect(friend.locator("h1")).to_have_text("ann invites you")
        expect(
            friend.get_by_text(
                "Join the marketplace through this invitation and get a welcome reward of £5.00."
            )
        ).to_be_visible()
        expect(friend.get_by_text("Sign up by")).to_be_visible()
        expect(friend.get_by_text(enrolment.code_display, exact=True)).to_be_visible()
        assert_accessible(friend)
        # The marketplace's app picks the deferred deep-link token up from the visit.
        token = friend.locator("[data-parrain-token]").get_attribute("data-parrain-token")
    assert token

    # The friend installs and signs up in the marketplace's app; its backend tells us.
    device = "device-bea"
    sent = httpx.post(
        live_server.url("/v1/events"),
        json={
            "events": [
                programme.install(device, token=token),
                programme.signup("bea", device),
            ]
        },
        headers=marketplace,
    )
    assert sent.status_code == 200, sent.text
    outcomes = sent.json()
    assert (outcomes["accepted"], outcomes["refused"]) == (2, 0), outcomes
    assert outcomes["results"][1]["enrolment_id"] == str(enrolment.id)  # credited to Ann
    assert programme.funnel().clicks == 2  # the friend's visit counted, with the first one

    page.reload()
    expect(page.get_by_text("2 of 5 friends so far")).to_be_visible()
    expect(page.get_by_text("3 more friends to go.")).to_be_visible()
    expect(page.get_by_role("progressbar")).to_have_attribute("value", "2")
    assert programme.progress(enrolment).friends_counted == 2


def _reward_card(page: Page) -> str:
    return page.locator("section[aria-labelledby=reward-title]").inner_text()


def test_a_member_who_says_no_to_everything_gets_the_same_reward(
    page: Page, live_server: LiveServer, database: Database, clock: FrozenClock
) -> None:
    programme = consents.launch(database, clock)
    ann = programme.enrol("ann", paypal_receiver="ann@paypal.example")
    bob = programme.enrol("bob", paypal_receiver="bob@paypal.example")
    # Bob says yes to every optional use (through the marketplace's app).
    consents.show(database, clock, bob.member_id, programme.campaign.id)
    for channel in ("app", "web", "social"):
        consents.grant(database, clock, bob.member_id, programme.campaign.id, channel=channel)

    enter_as_member(page, live_server, clock, "ann")
    page.get_by_role("link", name="Your choices").click()
    expect(page.locator("h1")).to_have_text("Your choices")
    expect(page.get_by_text("Your reward does not depend on this.", exact=True)).to_be_visible()
    switches = page.get_by_role("switch")
    expect(switches).to_have_count(3)
    page.get_by_role("button", name="Save my choices").click()  # every switch left off
    expect(page.get_by_text("Your choices are saved.")).to_be_visible()
    for index in range(3):
        expect(switches.nth(index)).not_to_be_checked()
    assert_accessible(page)
    refused = consents.check(database, clock, ann.member_id)
    assert (refused.decision, refused.reason) == ("deny", "refused")

    programme.invite_many(ann, friend_names("ann-friend", 5))
    programme.invite_many(bob, friend_names("bob-friend", 5))

    enter_as_member(page, live_server, clock, "bob")
    expect(page.get_by_text("5 of 5 friends so far")).to_be_visible()
    granted_view = _reward_card(page)

    enter_as_member(page, live_server, clock, "ann")
    expect(page.get_by_text("5 of 5 friends so far")).to_be_visible()
    expect(
        page.get_by_text("Prize: £20.00 in cash to your PayPal account and £30.00 in coupons.")
    ).to_be_visible()
    expect(page.get_by_text("Held until")).to_be_visible()
    assert _reward_card(page) == granted_view
    assert_accessible(page)
    rewards = [programme.progress(enrolment).reward for enrolment in (ann, bob)]
    assert [(r.status, r.cash_minor, r.coupon_minor) for r in rewards if r] == [
        ("held", 2000, 3000),
        ("held", 2000, 3000),
    ]

    # My data keeps her three answers: no, no and no.
    page.get_by_role("link", name="My data").click()
    answers = page.locator("section[aria-labelledby=consents-title] tbody tr td:last-child")
    expect(answers).to_have_text(["No", "No", "No"])
    assert_accessible(page)

    # The holding period over, the prize is hers, as it is his: cash and coupons.
    clock.advance(timedelta(days=8))
    assert programme.release_due() == 2
    enter_as_member(page, live_server, clock, "bob")
    granted_state = page.locator("section[aria-labelledby=reward-title] .state").inner_text()
    enter_as_member(page, live_server, clock, "ann")
    reward = page.locator("section[aria-labelledby=reward-title]")
    expect(reward.locator(".state")).to_have_text(
        "Yours: the cash will be sent to your PayPal account in the next payment run."
    )
    assert reward.locator(".state").inner_text() == granted_state
    expect(reward.get_by_role("cell", name="Ready to use")).not_to_have_count(0)
    assert_accessible(page)


def test_a_yes_is_taken_back_with_one_tap(
    page: Page, live_server: LiveServer, database: Database, clock: FrozenClock
) -> None:
    programme = consents.launch(database, clock)
    ann = programme.enrol("ann")

    enter_as_member(page, live_server, clock, "ann")
    expect(page.locator("h1")).to_have_text("Your progress")
    assert_accessible(page)
    page.get_by_role("link", name="Your choices").click()
    social = page.get_by_role("switch", name="social")
    social.check()
    page.get_by_role("button", name="Save my choices").click()
    expect(page.get_by_text("Your choices are saved.")).to_be_visible()
    expect(page.get_by_role("switch", name="social")).to_be_checked()
    granted = consents.check(database, clock, ann.member_id, channel="social")
    assert (granted.decision, granted.reason) == ("allow", "consent_granted")

    withdraw = page.get_by_role("button", name="Withdraw")
    expect(withdraw).to_have_count(1)  # one yes, one button to take it back
    withdraw.click()
    expect(page.get_by_text("Withdrawn. We stop this use now.")).to_be_visible()
    expect(page.get_by_role("switch", name="social")).not_to_be_checked()
    expect(page.get_by_role("button", name="Withdraw")).to_have_count(0)
    assert_accessible(page)
    denied = consents.check(database, clock, ann.member_id, channel="social")
    assert (denied.decision, denied.reason) == ("deny", "withdrawn")


def test_a_member_downloads_their_export(
    page: Page, live_server: LiveServer, database: Database, clock: FrozenClock
) -> None:
    programme = consents.launch(database, clock)
    ann = programme.enrol("ann", paypal_receiver="ann@paypal.example")
    programme.enrol("bob", paypal_receiver="bob@paypal.example")
    programme.invite_many(ann, friend_names("ann-friend", 2))

    enter_as_member(page, live_server, clock, "ann")
    expect(page.get_by_text("2 of 5 friends so far")).to_be_visible()
    assert_accessible(page)
    page.get_by_role("link", name="My data").click()
    expect(page.locator("h1")).to_have_text("My data")
    expect(page.get_by_text("ann@paypal.example")).to_be_visible()
    assert_accessible(page)

    with page.expect_download() as downloading:
        page.get_by_role("link", name="Download all of it (JSON)").click()
    download = downloading.value
    assert download.suggested_filename.endswith(".json")
    saved = Path(download.path())
    exported = json.loads(saved.read_text(encoding="utf-8"))
    personal = exported["personal_data"]
    assert personal["username"] == "ann"
    assert personal["email"] == "ann@example.org"
    assert personal["paypal_receiver"] == "ann@paypal.example"
    assert personal["marketplace_user_id"] == "user-ann"
    [enrolment] = exported["enrolments"]
    assert enrolment["campaign_name"] == programme.campaign.name
    assert len(enrolment["friends"]) == 2
    # Nobody else's data: not Bob's, and not the friends' own details.
    text = saved.read_text(encoding="utf-8")
    for foreign in ("bob@", "user-bob", "ann-friend"):
        assert foreign not in text
