from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from parrain.db.migrate import head_revision
from parrain.db.session import Database
from tests.cli.conftest import Cli, refused

UK = [
    "campaign",
    "create",
    "--name",
    "Cash Rewards UK",
    "--market",
    "GB",
    "--currency",
    "GBP",
    "--languages",
    "en",
    "--friends",
    "5",
    "--reward-cash",
    "20.00",
    "--reward-coupons",
    "30.00",
]


def _funded_campaign(cli: Cli) -> None:
    for args in (UK, ["campaign", "fund", "Cash Rewards UK", "500.00"]):
        result = cli(*args)
        assert result.exit_code == 0, result.output


def _row(output: str, label: str) -> list[str]:
    line = next(line for line in output.splitlines() if label in line)
    return [cell.strip() for cell in line.split("│")[2:-1]]


def test_ledger_balance_shows_each_account_and_that_the_books_balance(cli: Cli) -> None:
    _funded_campaign(cli)
    result = cli("ledger", "balance")
    assert result.exit_code == 0, result.output
    # Debits pending, debits posted, credits pending, credits posted.
    assert _row(result.stdout, "Cash Rewards UK · budget") == ["£0.00", "£0.00", "£0.00", "£500.00"]
    assert _row(result.stdout, "operator funding GBP") == ["£0.00", "£500.00", "£0.00", "£0.00"]
    assert (
        "GBP: debits £500.00 posted, £0.00 pending; credits £500.00 posted, £0.00 pending: "
        "balanced" in result.stdout.splitlines()
    )
    assert "Books balanced: every stored balance matches its transfers." in result.stdout


def test_ledger_balance_narrows_to_a_campaign_or_a_currency(cli: Cli) -> None:
    _funded_campaign(cli)
    mine = cli("ledger", "balance", "--campaign", "Cash Rewards UK")
    assert mine.exit_code == 0, mine.output
    assert "Cash Rewards UK · coupon_liability" in mine.stdout
    assert "operator funding" not in mine.stdout

    euros = cli("ledger", "balance", "--currency", "eur")
    assert euros.exit_code == 0, euros.output
    assert euros.stdout.splitlines()[0] == "No ledger accounts."

    line = refused(cli("ledger", "balance", "--currency", "XYZ"), "unknown_currency")
    assert line == "error [unknown_currency]: --currency: 'XYZ' is not an ISO 4217 currency code"
    refused(cli("ledger", "balance", "--campaign", "Nope"), "campaign_not_found")


def test_ledger_balance_exits_1_and_names_a_tampered_balance(cli: Cli, database: Database) -> None:
    _funded_campaign(cli)
    with database.engine.begin() as connection:
        connection.execute(
            text(
                "UPDATE ledger_accounts SET credits_posted = credits_posted + 1 "
                "WHERE kind = 'campaign_budget'"
            )
        )
    result = cli("ledger", "balance")
    assert result.exit_code == 1, result.output
    assert "GBP: posted debits 50000 != credits 50001" in result.stdout
    assert "NOT balanced" in result.stdout
    assert "but transfers give" in result.stdout


def test_audit_verify_finds_an_edited_entry(cli: Cli, database: Database) -> None:
    _funded_campaign(cli)
    intact = cli("audit", "verify")
    assert intact.exit_code == 0, intact.output
    assert intact.stdout.strip() == "3 entries checked: the audit chain is intact."

    with database.engine.begin() as connection:
        connection.execute(
            text("UPDATE audit_entries SET details = :details WHERE seq = 2"),
            {"details": '{"kind":"operator_funding","currency":"EUR"}'},
        )
    broken = cli("audit", "verify")
    assert broken.exit_code == 1, broken.output
    lines = broken.stdout.splitlines()
    assert lines[0] == "3 entries checked: the audit chain is BROKEN (1 break)."
    assert lines[1] == (
        "  #2 edited: entry #2 (ledger.account_opened) was edited: "
        "its content no longer matches its hash"
    )


def test_db_check_passes_on_a_migrated_database(cli: Cli) -> None:
    result = cli("db", "check")
    assert result.exit_code == 0, result.output
    assert f"models and migrations agree at revision {head_revision()} (head)" in result.stdout

    again = cli("db", "upgrade")
    assert again.exit_code == 0, again.output
    assert f"is already at revision {head_revision()} (head)" in again.stdout


def test_db_upgrade_migrates_an_empty_database_that_check_refused(tmp_path: Path) -> None:
    cli = Cli(f"sqlite:///{tmp_path / 'fresh.sqlite3'}")
    behind = cli("db", "check")
    assert behind.exit_code == 1
    assert behind.stderr.startswith("error [schema_behind]: Target database is not up to date.")

    unmigrated = cli("campaign", "list")
    assert unmigrated.exit_code == 1
    assert unmigrated.stderr.startswith("error [database_not_migrated]: no such table: campaigns")
    assert "Traceback" not in unmigrated.output

    upgraded = cli("db", "upgrade")
    assert upgraded.exit_code == 0, upgraded.output
    assert f"upgraded from an empty schema to revision {head_revision()} (head)" in upgraded.stdout
    assert "fresh.sqlite3" in upgraded.stdout
    assert cli("db", "check").exit_code == 0
    assert cli("campaign", "list").stdout.strip() == "No campaigns."


def test_a_bad_database_url_is_refused() -> None:
    line = refused(Cli("mysql://root@localhost/parrain")("campaign", "list"), "invalid_input")
    assert "--database-url: unsupported database 'mysql'" in line
    line = refused(Cli("not a url")("audit", "verify"), "invalid_input")
    assert line.startswith("error [invalid_input]: --database-url: ")


def test_an_unreachable_database_is_one_line_and_exit_1(tmp_path: Path) -> None:
    cli = Cli(f"sqlite:///{tmp_path / 'missing-directory' / 'x.sqlite3'}")
    result = cli("campaign", "list")
    assert result.exit_code == 1
    assert result.stderr.startswith("error [database_unavailable]: the database cannot be used:")
    assert "Traceback" not in result.output
