"""``parrain worker run --once`` applies the events received for later (``Prefer:
respond-async``, ADR 28), with the keys that open them; without keys it still runs its other
jobs as long as nothing is queued."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from parrain.cli.app import app
from parrain.db.session import Database
from parrain.kit.clock import FrozenClock
from parrain.kit.crypto import MasterKey, MasterKeyring
from parrain.members.service import MemberKeys
from parrain.referrals import events as referral_events
from parrain.referrals.models import ReferralEvent
from parrain.referrals.queue import MAX_ATTEMPTS, queue_events, seal_events
from parrain.referrals.schemas import EventOutcome
from tests.referrals.programme import EVENT, KEYS, Programme

#: A master key that is not the development one.
OTHER = hashlib.sha256(b"another master key").digest()

_CRYPTO_VARIABLES = (
    "MASTER_KEYS",
    "MASTER_KEYS_FILE",
    "CURRENT_KID",
    "LOOKUP_KEY",
    "LOOKUP_KEY_FILE",
    "SIGNING_KEY",
    "SIGNING_KEY_FILE",
    "ALLOW_DEVELOPMENT_KEYS",
)


@pytest.fixture
def no_keys(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """An environment that configures no key (and allows no development key)."""
    for name in _CRYPTO_VARIABLES:
        monkeypatch.delenv(f"PARRAIN_CRYPTO_{name}", raising=False)
    return monkeypatch


@pytest.fixture
def now() -> FrozenClock:
    """The worker reads the system clock: the programme runs around the real time."""
    return FrozenClock(datetime.now(UTC))


def _other_keys() -> MemberKeys:
    """Keys with a master key the worker does not hold."""
    return MemberKeys(
        keyring=MasterKeyring(keys=(MasterKey("elsewhere", OTHER),), current_kid="elsewhere"),
        lookup=KEYS.lookup,
    )


def _worker(database_url: str) -> Result:
    return CliRunner().invoke(app, ["--database-url", database_url, "worker", "run", "--once"])


def _queue(database: Database, clock: FrozenClock, *bodies: dict[str, Any]) -> None:
    sealed = seal_events(events=[EVENT.validate_python(body) for body in bodies], keys=KEYS)
    results = database.run(lambda s: queue_events(session=s, events=sealed, clock=clock))
    assert [getattr(result, "status", None) for result in results] == ["queued"] * len(bodies)


def _row(database: Database, event_id: str) -> ReferralEvent:
    row = database.read(lambda s: s.get(ReferralEvent, event_id))
    assert row is not None
    return row


def _outcome(database: Database, event_id: str) -> EventOutcome:
    return database.read(lambda s: referral_events.outcome_of(session=s, event_id=event_id))


def test_run_once_applies_the_queued_events(
    database: Database, database_url: str, now: FrozenClock, no_keys: pytest.MonkeyPatch
) -> None:
    """Queued events are applied by one round of the worker (with the development keys they
    were sealed with), as if they had been sent without the header; the next round has
    nothing left to apply."""
    no_keys.setenv("PARRAIN_CRYPTO_ALLOW_DEVELOPMENT_KEYS", "true")
    programme = Programme.launch(database, now, friends_needed=2)
    enrolment = programme.enrol("ann")
    bodies = [
        programme.signup(name, f"device-{name}", code=enrolment.code) for name in ("bob", "cat")
    ]
    _queue(database, now, *bodies)
    assert _outcome(database, bodies[0]["id"]).status == "queued"

    result = _worker(database_url)
    assert result.exit_code == 0, result.output
    assert "queued events applied: 2 (failed: 0, waiting: 0, set aside: 0)" in result.output
    for body in bodies:
        outcome = _outcome(database, body["id"])
        assert (outcome.status, outcome.enrolment_id) == ("accepted", enrolment.id)
    assert programme.progress(enrolment).friends_counted == 2

    again = _worker(database_url)
    assert again.exit_code == 0, again.output
    assert "queued events applied: 0 (failed: 0, waiting: 0, set aside: 0)" in again.output
    assert programme.progress(enrolment).friends_counted == 2


def test_without_keys_the_worker_runs_its_other_jobs_while_nothing_is_queued(
    database_url: str, no_keys: pytest.MonkeyPatch
) -> None:
    """No key is needed to find the queue empty: the round runs all its jobs."""
    result = _worker(database_url)
    assert result.exit_code == 0, result.output
    assert "queued events applied: 0 (failed: 0, waiting: 0, set aside: 0)" in result.output
    assert "expired pending transfers: 0" in result.output
    assert "webhooks delivered: 0, failed: 0, waiting: 0" in result.output


def test_with_events_queued_and_no_keys_the_worker_says_so_and_runs_its_other_jobs(
    database: Database, database_url: str, now: FrozenClock, no_keys: pytest.MonkeyPatch
) -> None:
    """Queued events cannot be opened without the keys: the worker says so on one line
    (no traceback), runs the jobs that need no key all the same, and exits 2; the events
    stay queued for a worker that has them."""
    programme = Programme.launch(database, now)
    body = programme.signup("bob", "device-bob")
    _queue(database, now, body)

    result = _worker(database_url)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    [line] = result.stderr.splitlines()
    assert line.startswith("error [keys_not_configured]: "), line
    assert "PARRAIN_CRYPTO_MASTER_KEYS" in line
    assert "queued events not applied (no master key configured" in result.stdout
    assert "expired pending transfers: 0; rewards posted: 0" in result.stdout
    assert "webhooks delivered: 0, failed: 0, waiting: 0" in result.stdout
    assert _outcome(database, body["id"]).status == "queued"

    no_keys.setenv("PARRAIN_CRYPTO_ALLOW_DEVELOPMENT_KEYS", "true")
    result = _worker(database_url)
    assert result.exit_code == 0, result.output
    assert "queued events applied: 1 (failed: 0, waiting: 0, set aside: 0)" in result.output
    assert _outcome(database, body["id"]).status == "accepted"


def test_an_event_the_worker_cannot_open_is_set_aside_and_the_others_applied(
    database: Database, database_url: str, now: FrozenClock, no_keys: pytest.MonkeyPatch
) -> None:
    """An event sealed under a master key the worker does not hold fails while the others
    are applied: one failure counted against it in each such round, its body kept, until
    the round that counts its last allowed failure sets it aside. A round where it is the
    only event waiting counts nothing: alone, its failure could be the worker's."""
    no_keys.setenv("PARRAIN_CRYPTO_ALLOW_DEVELOPMENT_KEYS", "true")
    programme = Programme.launch(database, now)
    stranger = programme.signup("cat", "device-cat")
    sealed = seal_events(events=[EVENT.validate_python(stranger)], keys=_other_keys())
    database.run(lambda s: queue_events(session=s, events=sealed, clock=now))
    good = programme.signup("bob", "device-bob")
    _queue(database, now, good)

    first = _worker(database_url)
    assert first.exit_code == 0, first.output
    assert "queued events applied: 1 (failed: 1, waiting: 1, set aside: 0)" in first.output
    assert _outcome(database, good["id"]).status == "accepted"

    alone = _worker(database_url)
    assert (
        "queued events applied: 0 (failed: 0, waiting: 1, set aside: 0, stalled: every event "
        "tried failed, see the log)" in alone.output
    )
    assert _row(database, stranger["id"]).queued_attempts == 1

    for round_ in range(2, MAX_ATTEMPTS + 1):
        _queue(database, now, programme.signup(f"friend{round_}", f"device-{round_}"))
        later = _worker(database_url)
        assert later.exit_code == 0, later.output
        left = (0, 1) if round_ == MAX_ATTEMPTS else (1, 0)
        assert (
            f"queued events applied: 1 (failed: 1, waiting: {left[0]}, set aside: {left[1]})"
            in later.output
        )
    assert _outcome(database, stranger["id"]).status == "queued"
    kept = _row(database, stranger["id"])
    assert kept.queued_body == sealed[0].body
    assert kept.queued_attempts == MAX_ATTEMPTS

    after = _worker(database_url)
    assert "queued events applied: 0 (failed: 0, waiting: 0, set aside: 1)" in after.output


def test_a_worker_with_the_wrong_keys_sets_nothing_aside(
    database: Database, database_url: str, now: FrozenClock, no_keys: pytest.MonkeyPatch
) -> None:
    """When every queued event fails, the fault is the worker's (here a master key that
    sealed none of them): no failure is counted against the events, which wait, whole, for
    a worker with the right keys."""
    programme = Programme.launch(database, now)
    bodies = [programme.signup(name, f"device-{name}") for name in ("bob", "cat", "dan", "eve")]
    _queue(database, now, *bodies)
    no_keys.setenv("PARRAIN_CRYPTO_ALLOW_DEVELOPMENT_KEYS", "true")  # for the lookup key
    no_keys.setenv("PARRAIN_CRYPTO_MASTER_KEYS", f"elsewhere:{base64.b64encode(OTHER).decode()}")

    for _ in range(MAX_ATTEMPTS + 1):
        wrong = _worker(database_url)
        assert wrong.exit_code == 0, wrong.output
        assert (
            "queued events applied: 0 (failed: 0, waiting: 4, set aside: 0, stalled: every "
            "event tried failed, see the log)" in wrong.output
        )
    assert [_row(database, body["id"]).queued_attempts for body in bodies] == [0, 0, 0, 0]

    no_keys.delenv("PARRAIN_CRYPTO_MASTER_KEYS")
    right = _worker(database_url)
    assert "queued events applied: 4 (failed: 0, waiting: 0, set aside: 0)" in right.output
    assert [_outcome(database, body["id"]).status for body in bodies] == ["accepted"] * 4
