"""An administrator's API-key journey in Chromium: create a key for the marketplace (its
secret shown once), then revoke it; each page checked by axe-core, in English and French."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from parrain.access import service as access
from parrain.db.session import Database
from parrain.kit.clock import FrozenClock
from parrain.operators.roles import Role
from tests.browser.conftest import LiveServer, assert_accessible
from tests.browser.helpers import sign_in
from tests.operators.helpers import create_operator


def test_an_admin_creates_then_revokes_a_key(
    page: Page, console_server: LiveServer, database: Database, clock: FrozenClock
) -> None:
    create_operator(database, clock, "ada", Role.ADMIN)
    sign_in(page, console_server, "ada", start="/console/api-keys")
    expect(page.get_by_role("heading", name="API keys", exact=True)).to_be_visible()
    assert_accessible(page)

    page.get_by_label("Name").fill("marketplace-backend")
    page.get_by_role("button", name="Create the key").click()
    secret = page.get_by_label("The new key").input_value()
    assert secret.startswith("prn_")
    [stored] = database.read(lambda s: access.list_api_keys(session=s))
    assert stored.name == "marketplace-backend"
    assert secret not in stored.model_dump_json()  # only its hash is kept
    assert_accessible(page)

    page.goto(console_server.url("/console/api-keys"))
    expect(page.get_by_text(secret)).to_have_count(0)  # never shown again
    page.get_by_role("button", name="Revoke marketplace-backend for good").click()
    expect(page.get_by_role("status")).to_contain_text("The key is revoked")
    [revoked] = database.read(lambda s: access.list_api_keys(session=s))
    assert revoked.revoked_at is not None
    assert_accessible(page)

    page.goto(console_server.url("/console/api-keys?lang=fr"))
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    assert_accessible(page)
