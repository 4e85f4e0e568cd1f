"""The consent check is part of every process that can launch a campaign, its settings
document themselves, and its tables are migrated."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from sqlalchemy import inspect

from parrain.config import ConsentSettings, Settings
from parrain.db.session import Database

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("entry_point", ["parrain.web.app", "parrain.web.asgi", "parrain.cli.app"])
def test_the_consent_check_is_registered_wherever_campaigns_launch(entry_point: str) -> None:
    program = (
        f"import {entry_point}\n"
        "from parrain.campaigns.gate import registered_checks\n"
        "print(','.join(registered_checks()))\n"
    )
    result = subprocess.run(  # a fresh interpreter: only what the entry point imports
        [sys.executable, "-c", program], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip().split(",") == [
        "budget_funded",
        "window_open",
        "consent_declaration",
    ]


def test_the_reward_code_may_not_import_consent() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contracts = config["tool"]["importlinter"]["contracts"]
    [contract] = [c for c in contracts if c["name"].startswith("The reward is unconditional")]
    assert contract["type"] == "forbidden"
    assert set(contract["source_modules"]) >= {  # and any other code that pays
        "parrain.referrals",
        "parrain.campaigns",
        "parrain.ledger",
    }
    assert contract["forbidden_modules"] == ["parrain.consent"]
    assert not contract.get("allow_indirect_imports", False)


def test_consent_settings_are_described_and_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    missing = [n for n, f in ConsentSettings.model_fields.items() if not f.description]
    assert missing == []
    assert (ConsentSettings().max_advertising_days, ConsentSettings().max_days) == (183, 365)
    monkeypatch.setenv("PARRAIN_CONSENT_MAX_ADVERTISING_DAYS", "92")
    monkeypatch.setenv("PARRAIN_CONSENT_MAX_DAYS", "200")
    assert Settings().consent == ConsentSettings(max_advertising_days=92, max_days=200)
    monkeypatch.setenv("PARRAIN_CONSENT_MAX_ADVERTISING_DAYS", "0")
    with pytest.raises(ValueError, match="greater than or equal to 1"):
        ConsentSettings()


def test_the_consent_tables_are_migrated(database: Database) -> None:
    inspector = inspect(database.engine)
    assert {
        "consent_declarations",
        "consent_notices",
        "consent_events",
        "consent_grants",
    } <= set(inspector.get_table_names())
    uniques = {
        table: [tuple(u["column_names"]) for u in inspector.get_unique_constraints(table)]
        for table in ("consent_declarations", "consent_notices")
    }
    assert uniques == {
        "consent_declarations": [("campaign_id", "version")],
        "consent_notices": [("declaration_id", "language")],
    }
    indexes = {i["name"]: i["unique"] for i in inspector.get_indexes("consent_notices")}
    assert indexes.get("ix_consent_notices_sha256") in (False, 0)
