"""``parrain payouts run`` and ``parrain payouts reconcile`` against the fake."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update
from typer.testing import CliRunner, Result

from parrain.cli.app import app
from parrain.db.session import Database
from parrain.kit.clock import FrozenClock
from parrain.payouts.models import PayoutItem
from parrain.payouts.providers.fake import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, FakePayPal
from tests.payouts.test_worker_support import assert_paid_once, winners


def _parrain(database_url: str, fake: FakePayPal | None, *args: str) -> Result:
    env = {"PARRAIN_CRYPTO_ALLOW_DEVELOPMENT_KEYS": "true", "PARRAIN_PAYOUTS_PAYPAL_BASE_URL": ""}
    if fake is not None:
        env |= {
            "PARRAIN_PAYOUTS_PAYPAL_BASE_URL": fake.base_url,
            "PARRAIN_PAYOUTS_PAYPAL_CLIENT_ID": DEFAULT_CLIENT_ID,
            "PARRAIN_PAYOUTS_PAYPAL_CLIENT_SECRET": DEFAULT_CLIENT_SECRET,
        }
    else:
        env = {k: v for k, v in env.items() if k != "PARRAIN_PAYOUTS_PAYPAL_BASE_URL"}
    return CliRunner().invoke(app, ["--database-url", database_url, "payouts", *args], env=env)


def test_run_once_pays_and_reconcile_is_clean_then_finds_a_difference(
    database: Database, database_url: str, clock: FrozenClock, fake: FakePayPal
) -> None:
    people = winners(database, clock, 3)
    fake.settle_after = timedelta(0)
    first = _parrain(database_url, fake, "run", "--once")
    assert first.exit_code == 0, first.output
    assert "prepared: 3 items in 1 batches" in first.stdout
    assert "paid: 3" in first.stdout
    assert_paid_once(database, fake, people)

    clean = _parrain(database_url, fake, "reconcile")
    assert clean.exit_code == 0, clean.output
    assert "clean: 1 batches and 3 items agree with PayPal" in clean.stdout
    assert "GBP" in clean.stdout
    assert "60.00" in clean.stdout
    assert "taken" in clean.stdout  # the columns of payments PayPal brought back (wrapped)

    database.run(
        lambda s: s.execute(
            update(PayoutItem)
            .where(PayoutItem.member_id == people[0].member_id)
            .values(status="voided")
        )
    )
    dirty = _parrain(database_url, fake, "reconcile")
    assert dirty.exit_code == 1, dirty.output
    assert "item_status_mismatch" in dirty.stdout
    assert "hold_status_mismatch" in dirty.stdout


def test_without_paypal_settings_run_does_nothing_and_reconcile_refuses(
    database_url: str, monkeypatch: object
) -> None:
    idle = _parrain(database_url, None, "run", "--once")
    assert idle.exit_code == 0, idle.output
    assert "PayPal is not configured" in idle.stdout
    refused = _parrain(database_url, None, "reconcile")
    assert refused.exit_code == 2
    assert refused.stderr.startswith("error [payouts_not_configured]")
