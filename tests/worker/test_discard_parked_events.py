"""Queued events set aside after failing (ADR 28) are not kept for ever: once older than
``PARRAIN_REFERRALS_PARKED_KEEP_DAYS`` they are discarded, their sealed personal data
deleted and their outcome ``ignored`` for good; events still waiting, events set aside more
recently and events retried meanwhile are left alone."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from parrain.audit.models import AuditEntry
from parrain.cli.app import app
from parrain.db.session import Database
from parrain.kit.clock import FrozenClock
from parrain.referrals import queue as event_queue
from parrain.referrals.errors import EventIdReused
from parrain.referrals.queue import DISCARDED, MAX_ATTEMPTS, QueueCounts
from parrain.referrals.schemas import EventOutcome
from parrain.worker.jobs import discard_parked_events
from tests.referrals.programme import Programme
from tests.referrals.test_queue import counts, invitations, outcome, queue, row

KEEP_DAYS = 30


def _park(programme: Programme, event_id: str) -> None:
    for _ in range(MAX_ATTEMPTS):
        programme.database.run(
            lambda session: event_queue.record_failure(session=session, event_id=event_id)
        )


def _discard(programme: Programme, *, batch_size: int = 500) -> int:
    return discard_parked_events(
        database=programme.database,
        clock=programme.clock,
        keep_days=KEEP_DAYS,
        batch_size=batch_size,
    )


def _bodies(programme: Programme, names: list[str]) -> list[dict[str, Any]]:
    ann = programme.enrol("ann")
    return [signup for _, signup in invitations(programme, ann, names)]


def test_an_event_set_aside_longer_than_kept_is_discarded_for_good(
    database: Database, clock: FrozenClock
) -> None:
    programme = Programme.launch(database, clock)
    [old, recent, waiting] = _bodies(programme, ["zoe", "yan", "xia"])
    queue(programme, [old, waiting])
    _park(programme, old["id"])
    clock.advance(timedelta(days=KEEP_DAYS - 1))
    queue(programme, [recent])
    _park(programme, recent["id"])
    assert counts(programme) == QueueCounts(waiting=1, parked=2)

    clock.advance(timedelta(days=1))  # old: received 30 days ago, not yet more
    assert _discard(programme) == 0
    clock.advance(timedelta(seconds=1))
    assert _discard(programme) == 1

    stored = row(programme, old["id"])
    assert (stored.queued_key, stored.queued_body) == (None, None)
    expected = EventOutcome(event_id=old["id"], type="signup", status="ignored", reason=DISCARDED)
    assert outcome(programme, old["id"]) == expected
    # Set aside more recently, or still waiting for a drain, however old: left alone.
    assert counts(programme) == QueueCounts(waiting=1, parked=1)
    assert row(programme, recent["id"]).queued_body is not None
    assert row(programme, waiting["id"]).queued_body is not None
    # The id stays claimed: the same body answers the discard, another body is refused.
    [again] = queue(programme, [old])
    assert again == expected
    [other] = queue(programme, [{**old, "email": "someone.else@example.org"}])
    assert isinstance(other, EventIdReused)
    assert _discard(programme) == 0
    [entry] = [e for e in _audit_entries(database) if e.action == "referral_events.discarded"]
    assert (entry.actor, entry.subject) == ("system:referrals", "referral_events")
    assert json.loads(entry.details) == {
        "event_ids": [old["id"]],
        "reason": DISCARDED,
        "keep_days": KEEP_DAYS,
    }


def _audit_entries(database: Database) -> list[AuditEntry]:
    return list(
        database.read(lambda s: s.scalars(select(AuditEntry).order_by(AuditEntry.seq)).all())
    )


def test_an_event_retried_is_not_discarded_and_batches_go_on_until_none_is_left(
    database: Database, clock: FrozenClock
) -> None:
    programme = Programme.launch(database, clock)
    bodies = _bodies(programme, [f"friend-{n}" for n in range(6)])
    queue(programme, bodies)
    for body in bodies:
        _park(programme, body["id"])
    clock.advance(timedelta(days=KEEP_DAYS + 1))
    assert programme.database.run(lambda s: event_queue.retry_parked(session=s)) == 6
    _park(programme, bodies[0]["id"])  # only this one failed again since

    assert _discard(programme, batch_size=2) == 1
    for body in bodies[1:]:
        _park(programme, body["id"])
    assert _discard(programme, batch_size=2) == 5  # three transactions of at most two
    assert counts(programme) == QueueCounts(waiting=0, parked=0)
    statuses = {outcome(programme, body["id"]).reason for body in bodies}
    assert statuses == {DISCARDED}


def test_the_worker_discards_in_its_sweep(
    database: Database, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``parrain worker`` reads the system clock and the keep from the settings."""
    monkeypatch.setenv("PARRAIN_REFERRALS_PARKED_KEEP_DAYS", "7")
    long_ago = FrozenClock(datetime.now(UTC) - timedelta(days=8))
    programme = Programme.launch(database, long_ago)
    [old] = _bodies(programme, ["zoe"])
    queue(programme, [old])
    _park(programme, old["id"])

    result = CliRunner().invoke(app, ["--database-url", database_url, "worker", "run", "--once"])

    assert result.exit_code == 0, result.output
    assert "events set aside too long, discarded: 1" in result.stdout
    assert outcome(programme, old["id"]).reason == DISCARDED
    assert row(programme, old["id"]).queued_body is None
