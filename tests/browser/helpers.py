"""What the browser journeys share: a member entering from the marketplace's app, an operator
signing in through the form, a second person's phone, and its screenshot."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from playwright.sync_api import Browser, Page, expect

from parrain.kit.clock import FrozenClock
from tests.browser.conftest import OUTPUT, PHONE, LiveServer, assert_accessible
from tests.operators.helpers import PASSWORD
from tests.web.member.pages import token_for


def enter_as_member(
    page: Page, server: LiveServer, clock: FrozenClock, user: str, *, lang: str | None = None
) -> None:
    """Open the link the marketplace's app opens for ``user-<user>``: a fresh member token."""
    query = f"token={token_for(clock, user)}" + (f"&lang={lang}" if lang else "")
    page.goto(server.url(f"/m/enter?{query}"))
    expect(page).not_to_have_url(server.url(f"/m/enter?{query}"))  # the token left the bar


def sign_in(page: Page, server: LiveServer, username: str, *, start: str = "/console") -> None:
    """Open ``start`` signed out, get sent to the sign-in form (checked by axe-core), fill it
    in and send it."""
    page.goto(server.url(start))
    expect(page.get_by_role("heading", name="Sign in to the console")).to_be_visible()
    assert_accessible(page)
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text(f"Signed in as {username}")).to_be_visible()


#: A phone's own browser. Headless Chromium names itself "HeadlessChrome", which the links
#: rightly take for a script: its visits are not counted and get no deep-link token.
PHONE_AGENT = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Mobile Safari/537.36"
)


@contextmanager
def another_phone(browser: Browser, name: str) -> Iterator[Page]:
    """A second person's phone (its own cookies, a phone's user agent); its last state is
    saved as ``<name>.png`` next to the test's own screenshot."""
    context = browser.new_context(viewport=PHONE, locale="en-GB", user_agent=PHONE_AGENT)
    opened = context.new_page()
    opened.set_default_timeout(15_000)
    try:
        yield opened
    finally:
        folder = OUTPUT / "screenshots"
        folder.mkdir(parents=True, exist_ok=True)
        try:
            opened.screenshot(path=folder / f"{name}.png", full_page=True)
        finally:
            context.close()
