"""``parrain worker run --once`` voids the pending transfers whose timeout has passed."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session
from typer.testing import CliRunner

from parrain.cli.app import app
from parrain.db.session import Database
from parrain.kit.clock import FrozenClock
from parrain.kit.money import Money
from parrain.ledger import service as ledger
from parrain.ledger.postings import PendingStatus
from parrain.ledger.schemas import AccountCreate


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
