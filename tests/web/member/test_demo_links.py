"""``parrain demo`` prints member links that work: the demo member's opens their progress, a
newcomer's opens the enrolment page of the UK campaign."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from parrain.cli.app import app as cli
from parrain.config import CryptoSettings, DatabaseSettings, Settings, WebSettings
from parrain.db.session import Database
from parrain.kit.clock import SystemClock
from parrain.web.app import create_app
from tests.web.member.pages import text_of

_LINK = re.compile(r"Member pages of (the demo member|a newcomer) \(10 minutes\): (\S+)")


def test_the_demo_prints_working_member_links(tmp_path: Path) -> None:
    path = tmp_path / "demo.sqlite3"
    seeded = CliRunner().invoke(cli, ["demo", "--database", str(path), "--no-serve"])
    assert seeded.exit_code == 0, seeded.output
    links = dict(_LINK.findall(seeded.stdout))
    assert set(links) == {"the demo member", "a newcomer"}
    database = Database(DatabaseSettings(url=f"sqlite:///{path}"))
    settings = Settings(
        crypto=CryptoSettings(allow_development_keys=True), web=WebSettings(cookie_secure=False)
    )
    try:
        with TestClient(
            create_app(database=database, clock=SystemClock(), settings=settings)
        ) as client:
            member = client.get(links["the demo member"].removeprefix("http://127.0.0.1:8000"))
            assert member.status_code == 200
            assert re.search(r"\b0 of \d+ friends so far", text_of(member))
            assert "/r/" in text_of(member)  # their link to share
            client.cookies.clear()
            newcomer = client.get(links["a newcomer"].removeprefix("http://127.0.0.1:8000"))
            assert newcomer.status_code == 200
            assert "Join Cash Rewards" in text_of(newcomer)
            assert re.search(r"Invite \d+ friends who sign up through your link", text_of(newcomer))
    finally:
        database.dispose()
