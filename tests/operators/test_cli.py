from __future__ import annotations

import pytest
from argon2 import PasswordHasher
from sqlalchemy import text
from typer.testing import CliRunner, Result

from parrain.cli.app import app
from parrain.config import DatabaseSettings
from parrain.db.session import Database
from parrain.kit.clock import SystemClock
from parrain.operators import service
from parrain.operators.schemas import SignInPolicy
from tests.cli.conftest import ACTOR, Cli, refused

PASSWORD = "a long and unguessable passphrase"


@pytest.fixture
def cli(database_url: str) -> Cli:
    return Cli(database_url)


def run(cli: Cli, *args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(
        app, ["--database-url", cli.database_url, "--actor", ACTOR, *args], input=stdin
    )


def stored(database_url: str) -> list[tuple[str, str, str]]:
    database = Database(DatabaseSettings(url=database_url))
    try:
        return database.read(
            lambda s: [
                (row.username, row.role, row.password_hash)
                for row in s.execute(text("SELECT username, role, password_hash FROM operators"))
            ]
        )
    finally:
        database.dispose()


def test_create_reads_the_password_from_stdin(cli: Cli) -> None:
    result = run(
        cli,
        "operator", "create", "--username", "Root.Admin", "--role", "ADMIN", "--password-stdin",
        stdin=PASSWORD + "\n",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Created operator 'Root.Admin'" in result.stdout
    assert "with the role admin" in result.stdout
    assert PASSWORD not in result.output
    [(username, role, password_hash)] = stored(cli.database_url)
    assert (username, role) == ("Root.Admin", "admin")
    assert password_hash.startswith("$argon2id$")
    assert PasswordHasher().verify(password_hash, PASSWORD)


def test_create_asks_twice_for_a_hidden_password(cli: Cli) -> None:
    result = run(
        cli, "operator", "create", "--username", "fin", "--role", "finance",
        stdin=f"{PASSWORD}\n{PASSWORD}\n",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Repeat for confirmation" in result.output
    assert PASSWORD not in result.output  # hidden as typed
    [(username, role, _)] = stored(cli.database_url)
    assert (username, role) == ("fin", "finance")


def test_a_weak_password_is_refused(cli: Cli) -> None:
    result = run(
        cli, "operator", "create", "--username", "admin", "--role", "admin", "--password-stdin",
        stdin="admin-password-2026\n",
    )  # fmt: skip
    line = refused(result, "weak_password")
    assert "must not contain the username" in line
    result = run(
        cli, "operator", "create", "--username", "admin", "--role", "admin", "--password-stdin",
        stdin="too short\n",
    )  # fmt: skip
    assert "at least 12 characters" in refused(result, "weak_password")
    result = run(
        cli, "operator", "create", "--username", "admin", "--role", "admin", "--password-stdin",
        stdin="\n",
    )  # fmt: skip
    assert "no password was given" in refused(result, "weak_password")
    assert stored(cli.database_url) == []


def test_a_duplicate_username_is_refused_before_the_password_is_asked(cli: Cli) -> None:
    first = run(
        cli, "operator", "create", "--username", "alice", "--role", "marketer",
        "--password-stdin", stdin=PASSWORD + "\n",
    )  # fmt: skip
    assert first.exit_code == 0, first.output
    result = run(cli, "operator", "create", "--username", "ALICE", "--role", "auditor")
    assert "already exists" in refused(result, "operator_username_taken")
    assert [(u, r) for u, r, _ in stored(cli.database_url)] == [("alice", "marketer")]


def test_an_unknown_role_is_refused_with_the_list_of_roles(cli: Cli) -> None:
    result = run(
        cli, "operator", "create", "--username", "alice", "--role", "owner", "--password-stdin",
        stdin=PASSWORD + "\n",
    )  # fmt: skip
    line = refused(result, "unknown_role")
    assert "admin, marketer, reviewer, finance, auditor" in line
    assert stored(cli.database_url) == []


def test_a_malformed_username_is_refused(cli: Cli) -> None:
    result = run(
        cli, "operator", "create", "--username", "alice smith", "--role", "admin",
        "--password-stdin", stdin=PASSWORD + "\n",
    )  # fmt: skip
    assert "--username" in refused(result, "invalid_input")
    assert stored(cli.database_url) == []


def test_list_shows_operators_without_secrets(cli: Cli) -> None:
    assert "No operators" in run(cli, "operator", "list").stdout
    run(
        cli, "operator", "create", "--username", "alice", "--role", "auditor",
        "--password-stdin", stdin=PASSWORD + "\n",
    )  # fmt: skip
    listed = run(cli, "operator", "list")
    assert listed.exit_code == 0, listed.output
    assert "alice" in listed.stdout
    assert "auditor" in listed.stdout
    assert "argon2" not in listed.stdout


def sign_in_result(database_url: str, username: str, password: str) -> str | None:
    """The failure of a sign-in attempt (None when it succeeds), with the console's rules."""
    database = Database(DatabaseSettings(url=database_url))
    try:
        result = database.run(
            lambda s: service.authenticate(
                session=s,
                username=username,
                password=password,
                policy=SignInPolicy(lockout_threshold=2),
                clock=SystemClock(),
            )
        )
        return None if result.failure is None else result.failure.value
    finally:
        database.dispose()


def test_unlock_ends_a_lockout_now(cli: Cli) -> None:
    run(
        cli, "operator", "create", "--username", "alice", "--role", "marketer",
        "--password-stdin", stdin=PASSWORD + "\n",
    )  # fmt: skip
    sign_in_result(cli.database_url, "alice", "a wrong password 1")
    assert sign_in_result(cli.database_url, "alice", "a wrong password 2") == "locked"
    assert sign_in_result(cli.database_url, "alice", PASSWORD) == "locked"
    result = run(cli, "operator", "unlock", "ALICE")
    assert result.exit_code == 0, result.output
    assert "can sign in again" in result.stdout
    assert sign_in_result(cli.database_url, "alice", PASSWORD) is None


def test_disable_and_enable(cli: Cli) -> None:
    run(
        cli, "operator", "create", "--username", "alice", "--role", "finance",
        "--password-stdin", stdin=PASSWORD + "\n",
    )  # fmt: skip
    assert run(cli, "operator", "disable", "alice").exit_code == 0
    assert sign_in_result(cli.database_url, "alice", PASSWORD) == "disabled"
    assert "disabled" in run(cli, "operator", "list").stdout
    assert run(cli, "operator", "enable", "alice").exit_code == 0
    assert sign_in_result(cli.database_url, "alice", PASSWORD) is None


def test_an_unknown_operator_is_refused(cli: Cli) -> None:
    for command in ("unlock", "disable", "enable"):
        result = run(cli, "operator", command, "nobody")
        assert "no operator is called 'nobody'" in refused(result, "operator_not_found")


def test_token_prints_an_api_token_that_opens_the_api(cli: Cli) -> None:
    from fastapi.testclient import TestClient

    from parrain.config import CryptoSettings, Settings
    from parrain.web.app import create_app

    run(
        cli, "operator", "create", "--username", "fiona", "--role", "finance",
        "--password-stdin", stdin=PASSWORD + "\n",
    )  # fmt: skip
    made = run(cli, "operator", "token", "fiona", "--days", "2")
    assert made.exit_code == 0, made.output
    token = made.stdout.strip()
    assert "API token of 'fiona' (finance), valid until" in made.stderr
    database = Database(DatabaseSettings(url=cli.database_url))
    try:
        app = create_app(
            database=database,
            clock=SystemClock(),
            settings=Settings(crypto=CryptoSettings(allow_development_keys=True)),
        )
        with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as client:
            assert client.get("/v1/ledger/balances").status_code == 200
            assert client.get("/v1/audit/entries").status_code == 403  # finance: not audit
    finally:
        database.dispose()
    assert refused(run(cli, "operator", "token", "nobody"), "operator_not_found")
    too_long = run(cli, "operator", "token", "fiona", "--days", "400")
    assert too_long.exit_code == 2
