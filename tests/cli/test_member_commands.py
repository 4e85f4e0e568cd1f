"""``parrain member export|erase``: the export to a file only the caller can read, erasure
only when confirmed, clear refusals with exit status 2."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import pytest

from parrain.db.session import Database
from parrain.kit.clock import FrozenClock
from tests.cli.conftest import Cli, refused
from tests.referrals.programme import Programme


@pytest.fixture
def clock() -> FrozenClock:
    """Today: the CLI runs on the system clock."""
    return FrozenClock(datetime.now(UTC))


@pytest.fixture(autouse=True)
def _development_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARRAIN_CRYPTO_ALLOW_DEVELOPMENT_KEYS", "true")


def test_export_then_erase_a_member(
    cli: Cli, database: Database, clock: FrozenClock, tmp_path: Path
) -> None:
    enrolment = Programme.launch(database, clock).enrol("ann")
    member = str(enrolment.member_id)
    target = tmp_path / "ann.json"

    exported = cli("member", "export", member, "--output", str(target))
    assert exported.exit_code == 0, exported.output
    assert "ann@example.org" not in exported.output  # only in the file
    body = json.loads(target.read_text(encoding="utf-8"))
    assert body["personal_data"]["email"] == "ann@example.org"
    assert body["enrolments"][0]["code"] == enrolment.code
    assert stat.S_IMODE(target.stat().st_mode) == 0o600

    printed = cli("member", "export", member, "--output", "-")
    assert json.loads(printed.stdout)["member_id"] == member

    unconfirmed = cli("member", "erase", member)
    assert "--yes" in refused(unconfirmed, "erasure_not_confirmed")
    erased = cli("member", "erase", member, "--yes")
    assert erased.exit_code == 0, erased.output
    assert "erased" in erased.stdout
    again = cli("member", "erase", member, "--yes")
    assert "already erased" in again.stdout
    after = json.loads(cli("member", "export", member, "--output", "-").stdout)
    assert after["erased"] is True
    assert after["personal_data"] is None


def test_bad_member_references_are_refused_clearly(cli: Cli) -> None:
    refused(cli("member", "export", "nobody", "--output", "-"), "invalid_member_id")
    refused(cli("member", "export", str(UUID(int=9)), "--output", "-"), "member_not_found")
    refused(cli("member", "export", str(UUID(int=9))), "output_required")
    refused(cli("member", "erase", str(UUID(int=9)), "--yes"), "member_not_found")
