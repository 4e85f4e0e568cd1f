"""``parrain worker run --once`` voids the pending transfers whose timeout has passed and
delivers the outbox's webhooks."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from parrain.cli.app import app
from parrain.db.session import Database
from parrain.kit.clock import FrozenClock
from parrain.kit.money import Money
from parrain.ledger import service as ledger
from parrain.ledger.postings import PendingStatus
from parrain.ledger.schemas import AccountCreate
from parrain.outbox import service as outbox
from parrain.outbox.delivery import SIGNATURE_HEADER, verify_signature
from tests.webhooks import webhook_receiver

SECRET = "a-webhook-secret-at-least-32-characters-long"


def test_run_once_expires_what_timed_out(database: Database, database_url: str) -> None:
    past = FrozenClock(datetime.now(UTC) - timedelta(hours=2))

    def hold(session: Session) -> uuid.UUID:
        source = ledger.create_account(
            session=session, account_in=AccountCreate(currency="GBP", kind="a"), clock=past
        )
        target = ledger.create_account(
            session=session, account_in=AccountCreate(currency="GBP", kind="b"), clock=past
        )
        return ledger.transfer(
            session=session,
            transfer_id=uuid.uuid4(),
            debit_account_id=source.id,
            credit_account_id=target.id,
            amount=Money(500, "GBP"),
            kind="hold",
            pending=True,
            timeout_seconds=3600,
            clock=past,
        ).id

    pending_id = database.run(hold)
    result = CliRunner().invoke(app, ["--database-url", database_url, "worker", "run", "--once"])
    assert result.exit_code == 0, result.output
    assert "expired pending transfers: 1" in result.output
    found = database.read(lambda s: ledger.get_transfer(session=s, transfer_id=pending_id))
    assert found is not None
    assert found.status is PendingStatus.EXPIRED
    again = CliRunner().invoke(app, ["--database-url", database_url, "worker", "run", "--once"])
    assert "expired pending transfers: 0" in again.output


def test_run_once_delivers_the_outbox_to_the_configured_webhook(
    database: Database, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = FrozenClock(datetime.now(UTC))
    database.run(
        lambda s: outbox.enqueue(
            session=s, topic="consent.withdrawn", payload={"member_id": "m-1"}, clock=now
        )
    )
    runner = CliRunner()
    waiting = runner.invoke(app, ["--database-url", database_url, "worker", "run", "--once"])
    assert "webhooks delivered: 0, failed: 0, waiting: 1" in waiting.output  # no endpoint yet

    with webhook_receiver() as receiver:
        monkeypatch.setenv("PARRAIN_WEBHOOKS_URL", receiver.url)
        monkeypatch.setenv("PARRAIN_WEBHOOKS_SECRET", SECRET)
        result = runner.invoke(app, ["--database-url", database_url, "worker", "run", "--once"])
    assert result.exit_code == 0, result.output
    assert "webhooks delivered: 1, failed: 0, waiting: 0" in result.output
    [(headers, body)] = receiver.received
    verify_signature(
        SECRET.encode(), headers[SIGNATURE_HEADER], body, now=int(now.now().timestamp())
    )
    assert json.loads(body)["data"] == {"member_id": "m-1"}


def test_a_webhook_url_without_a_secret_is_refused(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PARRAIN_WEBHOOKS_URL", "http://127.0.0.1:9/hooks")
    result = CliRunner().invoke(app, ["--database-url", database_url, "worker", "run", "--once"])
    assert result.exit_code == 2, result.output
    assert "PARRAIN_WEBHOOKS_SECRET" in result.output
    assert "Traceback" not in result.output
