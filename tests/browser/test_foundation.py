"""The browser harness itself, and the pages every visitor can reach without signing in."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.browser.conftest import LiveServer, accessibility_violations, assert_accessible


def test_axe_reports_a_real_violation(page: Page) -> None:
    # The checker must be able to fail: an image without a text alternative is critical.
    page.set_content('<html lang="en"><body><main><img src="photo.png"></main></body></html>')
    rules = {violation["id"] for violation in accessibility_violations(page)}
    assert "image-alt" in rules


def test_an_unknown_address_shows_a_page_in_french(page: Page, live_server: LiveServer) -> None:
    answer = page.goto(live_server.url("/nowhere?lang=fr"))
    assert answer is not None
    assert answer.status == 404
    expect(page.locator("h1")).to_have_text("Page introuvable")
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    # The language switch leads back to English, and the choice sticks.
    page.get_by_role("link", name="English").click()
    expect(page.locator("h1")).to_have_text("Page not found")
    page.goto(live_server.url("/elsewhere"))
    expect(page.locator("h1")).to_have_text("Page not found")
    assert_accessible(page)


def test_a_mistyped_invitation_link_is_explained(page: Page, live_server: LiveServer) -> None:
    answer = page.goto(live_server.url("/r/ABCD-EFGH-JK"))
    assert answer is not None
    assert answer.status == 404
    expect(page.locator("h1")).to_be_visible()
    assert "invitation" in page.locator("h1").inner_text().lower()
    assert_accessible(page)
