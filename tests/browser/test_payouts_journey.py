"""Finance's payout journey in Chromium: the batches with their totals, one batch's items by
pseudonym, and a reconciliation with PayPal (the spec-checked fake), each page checked by
axe-core."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from parrain.config import CryptoSettings, Settings, WebSettings
from parrain.db.session import Database
from parrain.kit.clock import FrozenClock
from parrain.operators.roles import Role
from parrain.payouts import repository
from parrain.payouts.providers.fake import FakePayPal
from parrain.payouts.providers.paypal import PayPalClient, RetryPolicy
from tests.browser.conftest import LiveServer, assert_accessible
from tests.browser.helpers import sign_in
from tests.operators.helpers import create_operator
from tests.payouts.test_worker_support import drain, receiver, settings_for, winners


@pytest.fixture
def fake(clock: FrozenClock) -> Iterator[FakePayPal]:
    with FakePayPal(clock=clock) as paypal:
        yield paypal


@pytest.fixture
def page_settings(fake: FakePayPal) -> Settings:
    return Settings(
        crypto=CryptoSettings(allow_development_keys=True),
        web=WebSettings(cookie_secure=False),
        payouts=settings_for(fake),
    )


def test_finance_reads_the_batches_and_reconciles(
    page: Page,
    console_server: LiveServer,
    database: Database,
    clock: FrozenClock,
    fake: FakePayPal,
) -> None:
    people = winners(database, clock, 2)
    with PayPalClient(
        base_url=fake.base_url,
        client_id="fake-client-id",
        client_secret="fake-client-secret",
        clock=clock,
        sleep=lambda _: None,
        retry=RetryPolicy(max_attempts=2, base_delay=0.1),
    ) as client:
        drain(database, clock, client, settings_for(fake))
    [batch] = database.read(lambda s: repository.list_batches(s))
    create_operator(database, clock, "fiona", Role.FINANCE)

    sign_in(page, console_server, "fiona", start="/console/payouts")
    expect(page.locator("h1")).to_have_text("Payouts")
    row = page.get_by_role("row").filter(has_text=str(batch.id))
    expect(row).to_contain_text("£40.00")
    expect(row).to_contain_text("Settled")
    assert_accessible(page)

    row.get_by_role("link").click()
    expect(page.get_by_role("table", name="Items of the batch")).to_be_visible()
    for person in people:
        expect(page.get_by_role("row").filter(has_text=str(person.member_id))).to_have_count(1)
        expect(page.get_by_text(receiver(person.name))).to_have_count(0)
    assert_accessible(page)

    page.get_by_role("link", name="All payout batches").click()
    page.get_by_role("button", name="Reconcile with PayPal").click()
    expect(page.get_by_role("status")).to_contain_text("Clean: 1 batches and 2 items checked")
    expect(page.get_by_role("table", name="Totals per currency")).to_contain_text("£40.00")
    assert_accessible(page)
