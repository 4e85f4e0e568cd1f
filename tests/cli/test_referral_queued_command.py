"""``parrain referral queued`` says how many marketplace events wait for a drain and how many
were set aside after failing too many; ``--retry-parked`` gives those their attempts back,
so that the next drain tries them again."""

from __future__ import annotations

from typer.testing import CliRunner

from parrain.cli.app import app
from parrain.db.session import Database
from parrain.kit.clock import FrozenClock
from parrain.referrals import queue as event_queue
from tests.referrals.programme import EVENT, KEYS, Programme


def _queued(output: str) -> str:
    return output.strip().splitlines()[-1]


def test_it_counts_waiting_and_parked_events_and_retries_the_parked(
    database: Database, database_url: str, clock: FrozenClock
) -> None:
    programme = Programme.launch(database, clock)
    code = programme.enrol("ann").code
    bodies = [programme.install(f"device-{n}", code=code) for n in range(3)]
    sealed = event_queue.seal_events(
        events=[EVENT.validate_python(body) for body in bodies], keys=KEYS
    )
    database.run(lambda s: event_queue.queue_events(session=s, events=sealed, clock=clock))
    for _ in range(event_queue.MAX_ATTEMPTS):  # one of them failed every drain it met
        database.run(lambda s: event_queue.record_failure(session=s, event_id=bodies[0]["id"]))

    runner = CliRunner()
    shown = runner.invoke(app, ["--database-url", database_url, "referral", "queued"])
    assert shown.exit_code == 0, shown.output
    assert _queued(shown.output) == "queued events waiting: 2; set aside: 1"

    retried = runner.invoke(
        app, ["--database-url", database_url, "referral", "queued", "--retry-parked"]
    )
    assert retried.exit_code == 0, retried.output
    assert "events given their attempts back: 1" in retried.output
    assert _queued(retried.output) == "queued events waiting: 3; set aside: 0"
    assert database.read(lambda s: event_queue.next_queued(session=s, limit=10)) == [
        body["id"] for body in sorted(bodies, key=lambda body: body["id"])
    ]
