"""An administrator's journey through the events received for later, in Chromium: from the
console's navigation to the set-aside events, then tried again; each page checked by
axe-core, in English and French."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy.orm import Session

from parrain.config import CryptoSettings, ReferralSettings, Settings, WebSettings
from parrain.db.session import Database
from parrain.kit.clock import FrozenClock
from parrain.operators.roles import Role
from parrain.referrals import queue as event_queue
from parrain.referrals.queue import MAX_ATTEMPTS, QueueCounts
from tests.browser.conftest import LiveServer, assert_accessible
from tests.browser.helpers import sign_in
from tests.operators.helpers import create_operator
from tests.referrals.programme import EVENT, KEYS

EVENT_ID = "evt-stuck-0001"


@pytest.fixture
def page_settings() -> Settings:
    # No drainer in the served app: the retried event stays waiting, as the test checks it.
    return Settings(
        crypto=CryptoSettings(allow_development_keys=True),
        web=WebSettings(cookie_secure=False),
        referrals=ReferralSettings(drain_in_api=False),
    )


def park_one_event(database: Database, clock: FrozenClock) -> None:
    body = {
        "id": EVENT_ID,
        "type": "signup",
        "at": clock.now().isoformat(),
        "market": "GB",
        "marketplace_user_id": "user-zoe",
        "email": "zoe.private@example.org",
        "username": "zoe",
        "device_id": "device-zoe",
    }
    sealed = event_queue.seal_events(events=[EVENT.validate_python(body)], keys=KEYS)

    def work(session: Session) -> None:
        event_queue.queue_events(session=session, events=sealed, clock=clock)
        for _ in range(MAX_ATTEMPTS):
            event_queue.record_failure(session=session, event_id=EVENT_ID)

    database.run(work)


def test_an_admin_finds_a_set_aside_event_and_tries_it_again(
    page: Page, console_server: LiveServer, database: Database, clock: FrozenClock
) -> None:
    park_one_event(database, clock)
    create_operator(database, clock, "ada", Role.ADMIN)
    sign_in(page, console_server, "ada")

    page.get_by_role("navigation", name="Console").get_by_role("link", name="Queued events").click()
    expect(page.get_by_role("heading", name="Events received for later")).to_be_visible()
    expect(page.locator("#count-parked")).to_have_text("1")
    row = page.get_by_role("row").filter(has_text=EVENT_ID)
    expect(row).to_contain_text("signup")
    expect(row).to_contain_text(str(MAX_ATTEMPTS))
    expect(page.get_by_text("zoe.private@example.org")).to_have_count(0)
    assert_accessible(page)

    page.get_by_role("button", name="Try the set-aside events again").click()
    expect(page.get_by_role("status")).to_contain_text(
        "1 set-aside event will be tried again by the next drain."
    )
    expect(page.locator("#count-parked")).to_have_text("0")
    expect(page.locator("#count-waiting")).to_have_text("1")
    expect(page.get_by_text("No event is set aside")).to_be_visible()
    counts = database.read(lambda s: event_queue.queue_counts(session=s))
    assert counts == QueueCounts(waiting=1, parked=0)
    assert_accessible(page)

    page.goto(console_server.url("/console/events?lang=fr"))
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    expect(page.get_by_role("heading", name="Événements reçus pour plus tard")).to_be_visible()
    assert_accessible(page)
