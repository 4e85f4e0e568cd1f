from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import text
from typer.testing import CliRunner, Result

from parrain.access import service
from parrain.access.errors import InvalidApiKey
from parrain.cli.app import app
from parrain.config import DatabaseSettings
from parrain.db.session import Database
from parrain.kit.clock import SystemClock
from tests.cli.conftest import ACTOR, Cli, refused

KEY_LINE = re.compile(r"^prn_[0-9a-z]{8}_[A-Za-z0-9_-]{43}$", re.MULTILINE)


class WideCli(Cli):
    """``parrain`` in a terminal wide enough for the key table to keep one line per key."""

    def __call__(self, *args: str) -> Result:
        return CliRunner(env={"COLUMNS": "160"}).invoke(
            app, ["--database-url", self.database_url, "--actor", ACTOR, *args]
        )


@pytest.fixture
def cli(database_url: str) -> Cli:
    return WideCli(database_url)


def created_key(cli: Cli, *args: str) -> str:
    result = cli("apikey", "create", *args)
    assert result.exit_code == 0, result.output
    keys = KEY_LINE.findall(result.stdout)
    assert len(keys) == 1, result.stdout
    assert "will not be shown again" in result.stdout
    return str(keys[0])


def authenticate(database_url: str, key: str, scope: str) -> str:
    database = Database(DatabaseSettings(url=database_url))
    try:
        return database.run(
            lambda s: service.authenticate(
                session=s, presented=key, scope=scope, clock=SystemClock()
            )
        ).name
    finally:
        database.dispose()


def test_create_prints_a_key_once_that_then_authenticates(cli: Cli) -> None:
    key = created_key(cli, "--name", "marketplace-backend", "--scope", "events")
    assert authenticate(cli.database_url, key, "events") == "marketplace-backend"
    listed = cli("apikey", "list")
    assert listed.exit_code == 0, listed.output
    assert key not in listed.stdout
    assert key.split("_", 2)[2] not in listed.stdout


def test_create_with_two_scopes(cli: Cli) -> None:
    key = created_key(cli, "--name", "backend", "--scope", "consent", "--scope", "EVENTS")
    assert authenticate(cli.database_url, key, "consent") == "backend"
    assert authenticate(cli.database_url, key, "events") == "backend"


def test_list_shows_each_key_without_its_secret(cli: Cli) -> None:
    assert cli("apikey", "list").stdout.strip() == "No API keys."
    key = created_key(cli, "--name", "backend", "--scope", "events", "--scope", "consent")
    created_key(cli, "--name", "reporting", "--scope", "consent")
    result = cli("apikey", "list")
    assert result.exit_code == 0, result.output
    prefix = key.split("_")[1]
    row = next(line for line in result.stdout.splitlines() if "backend" in line)
    cells = [cell.strip() for cell in row.split("│")[1:-1]]
    assert cells[:3] == ["backend", prefix, "consent, events"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", cells[3])
    assert cells[4:] == ["-", "-"]
    for header in ("Name", "Prefix", "Scopes", "Created", "Last used", "Revoked"):
        assert header in result.stdout
    assert "reporting" in result.stdout


def test_revoke_by_prefix_or_id_refuses_the_key_and_is_idempotent(
    cli: Cli, database: Database
) -> None:
    key = created_key(cli, "--name", "backend", "--scope", "events")
    prefix = key.split("_")[1]
    result = cli("apikey", "revoke", prefix)
    assert result.exit_code == 0, result.output
    assert f"Revoked API key 'backend' ({prefix})" in result.stdout
    with pytest.raises(InvalidApiKey, match="revoked"):
        authenticate(cli.database_url, key, "events")

    key_id = database.read(lambda s: s.execute(text("SELECT id FROM api_keys")).scalar())
    again = cli("apikey", "revoke", str(key_id))
    assert again.exit_code == 0, again.output
    assert "was already revoked" in again.stdout
    listed = cli("apikey", "list").stdout
    row = next(line for line in listed.splitlines() if "backend" in line)
    assert row.split("│")[-2].strip().endswith("UTC")

    entries = database.read(
        lambda s: s.execute(text("SELECT actor, action, details FROM audit_entries")).all()
    )
    assert [(actor, action) for actor, action, _ in entries] == [
        (ACTOR, "access.api_key_created"),
        (ACTOR, "access.api_key_revoked"),
    ]
    for _, _, details in entries:
        assert key.split("_", 2)[2] not in details
        assert json.loads(details)["prefix"] == prefix


def test_revoke_accepts_the_whole_key(cli: Cli) -> None:
    key = created_key(cli, "--name", "backend", "--scope", "events")
    result = cli("apikey", "revoke", key)
    assert result.exit_code == 0, result.output
    assert key not in result.output


def test_revoking_an_unknown_key_is_refused(cli: Cli) -> None:
    line = refused(cli("apikey", "revoke", "zzzzzzzz"), "api_key_not_found")
    assert "'zzzzzzzz'" in line
    refused(cli("apikey", "revoke", "01900000-0000-7000-8000-000000000000"), "api_key_not_found")


def test_a_bad_scope_is_refused_with_exit_2(cli: Cli) -> None:
    line = refused(
        cli("apikey", "create", "--name", "backend", "--scope", "payouts"), "invalid_input"
    )
    assert "--scope" in line
    assert "'events', 'consent' or 'privacy'" in line
    assert cli("apikey", "list").stdout.strip() == "No API keys."


def test_no_scope_or_a_bad_name_is_refused(cli: Cli) -> None:
    assert "--scope" in refused(cli("apikey", "create", "--name", "backend"), "invalid_input")
    line = refused(cli("apikey", "create", "--name", " ", "--scope", "events"), "invalid_input")
    assert line.endswith("--name: must not be empty")


def test_a_duplicate_name_is_refused(cli: Cli) -> None:
    created_key(cli, "--name", "backend", "--scope", "events")
    refused(cli("apikey", "create", "--name", "backend", "--scope", "events"), "api_key_name_taken")
