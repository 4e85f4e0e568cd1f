"""What the member page tests share: entering with a token the way the marketplace's app
does, reading a form's CSRF token, and plain text of a page."""

from __future__ import annotations

import html
import re
from datetime import datetime

from fastapi.testclient import TestClient
from httpx import Response

from parrain.config import DEVELOPMENT_MEMBER_TOKEN_SECRET
from parrain.kit.clock import FrozenClock
from parrain.members.tokens import mint_member_token

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_TAGS = re.compile(r"<[^>]+>")


def token_for(
    clock: FrozenClock, user: str, market: str = "GB", *, now: datetime | None = None
) -> str:
    return mint_member_token(
        secret=DEVELOPMENT_MEMBER_TOKEN_SECRET,
        subject=f"user-{user}",
        market=market,
        now=now or clock.now(),
    )


def enter(client: TestClient, clock: FrozenClock, user: str, market: str = "GB") -> Response:
    """Follow the link the marketplace's app opens for ``user-<user>``; not redirected."""
    return client.get(
        "/m/enter", params={"token": token_for(clock, user, market)}, follow_redirects=False
    )


def csrf_of(page: Response) -> str:
    found = _CSRF.search(page.text)
    assert found is not None, "the page has no form with a CSRF token"
    return found.group(1)


def text_of(page: Response) -> str:
    """The page's words, without tags, entities decoded, spaces collapsed."""
    return " ".join(html.unescape(_TAGS.sub(" ", page.text)).split())
