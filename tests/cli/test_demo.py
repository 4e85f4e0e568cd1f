from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from parrain.audit import service as audit
from parrain.campaigns import service as campaigns
from parrain.campaigns.schemas import CampaignRead, CampaignStatus
from parrain.cli.app import app
from parrain.cli.commands import demo as demo_commands
from parrain.cli.commands.demo import seed_demo
from parrain.config import DatabaseSettings, Settings
from parrain.db.session import Database
from parrain.kit.clock import FrozenClock
from parrain.kit.money import Money
from tests.cli.conftest import Cli

NAMES = {"Cash Rewards UK", "Cash Rewards France"}


def _demo_database(path: Path) -> Iterator[Database]:
    database = Database(DatabaseSettings(url=f"sqlite:///{path}"))
    yield database
    database.dispose()


def _by_name(database: Database) -> dict[str, CampaignRead]:
    return {c.name: c for c in database.read(lambda s: campaigns.list_campaigns(session=s))}


def _assert_seeded(found: dict[str, CampaignRead]) -> None:
    assert set(found) == NAMES
    uk, france = found["Cash Rewards UK"], found["Cash Rewards France"]
    assert (uk.market, uk.currency, uk.languages) == ("GB", "GBP", ["en"])
    assert (france.market, france.currency, france.languages) == ("FR", "EUR", ["fr", "en"])
    for campaign in (uk, france):
        assert campaign.status is CampaignStatus.LIVE
        assert (campaign.friends_needed, campaign.enrolment_window_hours) == (5, 24)
        assert (campaign.reward_cash_minor, campaign.reward_coupon_minor) == (2000, 3000)
        assert campaign.holding_days == 7
        assert campaign.budget.funded_minor == 500_000
        assert campaign.budget.available_minor == 500_000
    assert uk.budget.available_display == "£5,000.00"
    assert france.budget.available_display == Money(500_000, "EUR").format("fr_FR")
    assert france.budget.available_display == "5\u202f000,00\xa0€"


def _seeded_column(output: str) -> dict[str, str]:
    """Each demo campaign's name and its last column (created now, or found)."""
    rows = [line.split("│") for line in output.splitlines() if "Cash Rewards" in line]
    return {cells[1].strip(): cells[-2].strip() for cells in rows}


def test_demo_seeds_two_live_campaigns_once(tmp_path: Path) -> None:
    path = tmp_path / "demo.sqlite3"
    runner = CliRunner()
    first = runner.invoke(app, ["demo", "--database", str(path), "--no-serve"])
    assert first.exit_code == 0, first.output
    assert _seeded_column(first.stdout) == {
        "Cash Rewards UK": "created",
        "Cash Rewards France": "created",
    }
    assert "http://127.0.0.1:8000/v1/campaigns" in first.stdout
    assert "http://127.0.0.1:8000/docs" in first.stdout
    assert "Sponsorship link of the demo member: http://127.0.0.1:8000/r/" in first.stdout
    assert "Events API key (shown once): prn_" in first.stdout

    for database in _demo_database(path):
        _assert_seeded(_by_name(database))
        entries_after_first = database.read(lambda s: audit.list_entries(session=s, limit=1000))

    second = runner.invoke(app, ["demo", "--database", str(path), "--no-serve", "--port", "8123"])
    assert second.exit_code == 0, second.output
    assert _seeded_column(second.stdout) == {
        "Cash Rewards UK": "found",
        "Cash Rewards France": "found",
    }
    assert "http://127.0.0.1:8123/docs" in second.stdout
    assert "Sponsorship link of the demo member: http://127.0.0.1:8123/r/" in second.stdout
    assert "made by the first run" in second.stdout

    for database in _demo_database(path):
        _assert_seeded(_by_name(database))
        entries = database.read(lambda s: audit.list_entries(session=s, limit=1000))
        assert entries == entries_after_first
        assert database.read(lambda s: audit.verify_chain(session=s)).intact


def test_seed_demo_in_one_transaction_is_idempotent(database: Database, clock: FrozenClock) -> None:
    first = database.run(lambda s: seed_demo(session=s, clock=clock, actor="system:demo"))
    assert [(item.campaign.name, item.created) for item in first] == [
        ("Cash Rewards UK", True),
        ("Cash Rewards France", True),
    ]
    _assert_seeded(_by_name(database))
    assert {c.launched_at for c in _by_name(database).values()} == {clock.now()}

    second = database.run(lambda s: seed_demo(session=s, clock=clock, actor="system:demo"))
    assert [item.created for item in second] == [False, False]
    _assert_seeded(_by_name(database))


def test_seed_demo_leaves_an_ended_campaign_ended(database: Database, clock: FrozenClock) -> None:
    database.run(lambda s: seed_demo(session=s, clock=clock, actor="system:demo"))
    uk = _by_name(database)["Cash Rewards UK"]
    database.run(
        lambda s: campaigns.end(session=s, campaign_id=uk.id, actor="operator:x", clock=clock)
    )
    again = database.run(lambda s: seed_demo(session=s, clock=clock, actor="system:demo"))
    assert [item.campaign.status for item in again] == [CampaignStatus.ENDED, CampaignStatus.LIVE]
    assert _by_name(database)["Cash Rewards UK"].budget.funded_minor == 500_000


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_for_health(base: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"parrain demo exited with {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail(f"/health did not answer within 30 s:\n{log.read_text()}")


def test_demo_serves_the_api_on_the_seeded_database(tmp_path: Path) -> None:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "demo.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARRAIN_")}
    with log.open("wb") as output:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "parrain.cli.app",
                "demo",
                "--database",
                str(tmp_path / "d.sqlite3"),
                "--port",
                str(port),
            ],
            cwd=tmp_path,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_for_health(base, process, log)
            listed = httpx.get(f"{base}/v1/campaigns", timeout=5)
            assert listed.status_code == 200
            campaigns_served = {c["name"]: c for c in listed.json()}
            assert set(campaigns_served) == NAMES
            assert {c["status"] for c in campaigns_served.values()} == {"live"}
            assert campaigns_served["Cash Rewards UK"]["budget"]["available_minor"] == 500_000
            assert httpx.get(f"{base}/docs", timeout=5).status_code == 200
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    served_log = log.read_text()
    assert f"{base}/docs" in served_log
    # no access log: it would name each client's IP address, personal data
    assert "GET /v1/campaigns" not in served_log
    assert "127.0.0.1:" not in served_log.replace(base, "")


def test_serve_hands_the_configured_database_and_address_to_the_api(
    cli: Cli, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    served: dict[str, Any] = {}

    def record(*, settings: Settings, database: Database, host: str, port: int) -> None:
        served.update(settings=settings, database=database, host=host, port=port)

    monkeypatch.setattr(demo_commands, "run_api", record)
    result = cli("serve", "--port", "9001")
    assert result.exit_code == 0, result.output
    assert (served["host"], served["port"]) == ("127.0.0.1", 9001)
    assert served["settings"].database.url == database_url
    assert (served["settings"].server.host, served["settings"].server.port) == ("127.0.0.1", 9001)
    assert served["database"].dialect == make_url(database_url).get_backend_name()
    assert "on http://127.0.0.1:9001/" in result.stdout
