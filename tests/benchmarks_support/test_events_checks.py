"""The events benchmark's checks (``benchmarks/events.py``): how an answer to events applied
at once or queued (``Prefer: respond-async``) is counted, what a mode sends, and what makes
a drain or the database after the run fail it."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from parrain.db.session import Database
from parrain.kit.clock import FrozenClock
from parrain.referrals.queue import MAX_ATTEMPTS, queue_events, seal_events
from parrain.worker.jobs import drain_queued_events
from tests.referrals.programme import EVENT, KEYS

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def _import(name: str, filename: str) -> ModuleType:
    """A benchmark script as a module (once: another test file may have imported it);
    scripts import their neighbours by their bare names (``import _load``), so those are
    imported first, under those names."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / filename)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


load = _import("_load", "_load.py")
_import("_support", "_support.py")
events = _import("_events_benchmark", "events.py")

INSTALL = {"id": "bench-x-install-0", "type": "install", "device_id": "d0", "code": "C0"}
SIGNUP = {"id": "bench-x-signup-0", "type": "signup", "device_id": "d0"}
ORDER = {"id": "bench-x-order-0", "type": "order", "order_id": "o0"}


def outcome(event: dict[str, Any], status: str, **extra: Any) -> dict[str, Any]:
    return {"event_id": event["id"], "type": event["type"], "status": status, **extra}


def answered(status: int, body: Any, *, preference_applied: str | None = None) -> Any:
    """What ``_load`` makes of an answer (header names lower-cased, as its parser does)."""
    headers = [("content-type", "application/json")]
    if preference_applied is not None:
        headers.append(("preference-applied", preference_applied))
    response = load.Response(status, "", headers, json.dumps(body).encode())
    return load.Result(index=0, latency=0.004, lag=0.0, response=response)


def check(
    result: Any, sent: list[dict[str, Any]], *, batch: bool = False, queued: bool = False
) -> Any:
    tally = events.Tally()
    events.Client.events(result, tally, sent, batch=batch, queued=queued)
    return tally


def batch_answer(results: list[dict[str, Any]], **counts: int) -> dict[str, Any]:
    zero = {"accepted": 0, "ignored": 0, "queued": 0, "refused": 0}
    return {"results": results, **zero, **counts}


@pytest.mark.parametrize(
    ("mode", "shape", "queued"),
    [
        ("trivial", "trivial", False),
        ("single", "single", False),
        ("single_paced", "single_paced", False),
        ("batch", "batch", False),
        ("single_queued", "single", True),
        ("single_queued_paced", "single_paced", True),
        ("batch_queued", "batch", True),
    ],
)
def test_each_mode_sends_the_requests_of_its_shape(mode: str, shape: str, queued: bool) -> None:
    """A queued mode sends what its namesake sends, with ``Prefer: respond-async``."""
    assert events.mode_shape(mode) == (shape, queued)


def test_an_unknown_mode_has_no_shape() -> None:
    with pytest.raises(ValueError, match="not a mode"):
        events.mode_shape("batch_paced")


def test_a_queued_event_is_acknowledged_and_counted_as_queued() -> None:
    """202, ``Preference-Applied: respond-async`` and a ``queued`` outcome: stored, to be
    drained; its latency is a figure of the mode."""
    tally = check(
        answered(202, outcome(INSTALL, "queued"), preference_applied="respond-async"),
        [INSTALL],
        queued=True,
    )

    assert tally.errors == {}
    assert tally.outcomes == {"install:queued": 1}
    assert (tally.events, tally.acknowledged, tally.queued, tally.uncertain) == (1, 1, 1, 0)
    assert tally.latencies == [0.004]


def test_an_event_applied_at_once_is_an_error_of_a_queued_mode() -> None:
    """A 200 (the server ignored ``Prefer``) is an error; its event may be stored."""
    tally = check(answered(200, outcome(INSTALL, "accepted")), [INSTALL], queued=True)

    assert tally.errors == {"http_200": 1}
    assert (tally.acknowledged, tally.queued, tally.uncertain) == (0, 0, 1)
    assert tally.latencies == []


def test_a_queued_answer_without_preference_applied_is_an_error() -> None:
    tally = check(answered(202, outcome(INSTALL, "queued")), [INSTALL], queued=True)

    assert tally.errors == {"preference_not_applied": 1}
    assert (tally.acknowledged, tally.uncertain) == (0, 1)


def test_an_outcome_other_than_queued_in_a_202_is_an_error_but_stored() -> None:
    """An event answered ``accepted`` in a queued mode is stored (acknowledged) but was not
    queued: an error, and it is not among the events the drain must apply."""
    tally = check(
        answered(202, outcome(INSTALL, "accepted"), preference_applied="respond-async"),
        [INSTALL],
        queued=True,
    )

    assert tally.errors == {"not_queued": 1}
    assert tally.outcomes == {"install:accepted": 1}
    assert (tally.acknowledged, tally.queued, tally.uncertain) == (1, 0, 0)


def test_the_modes_applied_at_once_still_want_200_and_no_queued_outcome() -> None:
    accepted = check(answered(200, outcome(INSTALL, "accepted")), [INSTALL])
    ignored = check(
        answered(200, outcome(INSTALL, "ignored", reason="already_attributed")), [INSTALL]
    )
    accepted_202 = check(
        answered(202, outcome(INSTALL, "queued"), preference_applied="respond-async"), [INSTALL]
    )
    queued_200 = check(answered(200, outcome(INSTALL, "queued")), [INSTALL])

    assert accepted.errors == {}
    assert (accepted.acknowledged, accepted.queued) == (1, 0)
    assert ignored.errors == {}
    assert ignored.outcomes == {"install:ignored:already_attributed": 1}
    assert accepted_202.errors == {"http_202": 1}
    assert queued_200.errors == {"queued": 1}
    assert (queued_200.acknowledged, queued_200.queued) == (1, 1)


def test_a_queued_batch_counts_each_event() -> None:
    sent = [INSTALL, SIGNUP, ORDER]
    answer = batch_answer([outcome(event, "queued") for event in sent], queued=3)

    tally = check(
        answered(202, answer, preference_applied="respond-async"), sent, batch=True, queued=True
    )

    assert tally.errors == {}
    assert tally.outcomes == {"install:queued": 1, "signup:queued": 1, "order:queued": 1}
    assert (tally.events, tally.acknowledged, tally.queued) == (3, 3, 3)


def test_a_queued_batch_whose_counts_disagree_with_its_results_is_an_error() -> None:
    sent = [INSTALL, SIGNUP]
    answer = batch_answer([outcome(event, "queued") for event in sent], queued=1, accepted=1)

    tally = check(
        answered(202, answer, preference_applied="respond-async"), sent, batch=True, queued=True
    )

    assert tally.errors == {"wrong_counts": 1}
    assert tally.acknowledged == 2  # both stored all the same


def test_a_refused_event_of_a_queued_batch_is_an_error_and_not_acknowledged() -> None:
    sent = [INSTALL, SIGNUP]
    refused = {"event_id": SIGNUP["id"], "code": "event_id_reused", "message": "reused"}
    answer = batch_answer([outcome(INSTALL, "queued"), refused], queued=1, refused=1)

    tally = check(
        answered(202, answer, preference_applied="respond-async"), sent, batch=True, queued=True
    )

    assert tally.errors == {"refused": 1}
    assert tally.outcomes == {"install:queued": 1, "signup:refused:event_id_reused": 1}
    assert (tally.acknowledged, tally.queued) == (1, 1)


def test_a_queued_batch_answering_other_events_is_an_error() -> None:
    sent = [INSTALL, SIGNUP]
    answer = batch_answer([outcome(SIGNUP, "queued"), outcome(INSTALL, "queued")], queued=2)

    tally = check(
        answered(202, answer, preference_applied="respond-async"), sent, batch=True, queued=True
    )

    assert tally.errors == {"wrong_results": 1}
    assert (tally.acknowledged, tally.uncertain) == (0, 2)


def drain_after_line(**changes: Any) -> dict[str, Any]:
    line = {
        "mode": "drain",
        "drain": "after",
        "queued_before": 1000,
        "events": 1000,
        "failed": 0,
        "waiting": 0,
        "parked": 0,
    }
    return {**line, **changes}


def test_a_drain_that_applied_every_queued_event_has_no_problem() -> None:
    assert events.drain_problems(drain_after_line(), queued=1000, uncertain=0) == []
    # Events the client is unsure of may have been queued.
    assert events.drain_problems(drain_after_line(), queued=990, uncertain=10) == []


@pytest.mark.parametrize(
    ("changes", "queued", "problem"),
    [
        ({"waiting": 3}, 1000, "left 3 events queued"),
        ({"parked": 2}, 1000, "2 queued events set aside"),
        ({"failed": 1}, 1000, "1 failures"),
        ({"events": 999}, 1000, "applied 999 events of 1000"),
        ({}, 900, "1000 events queued, 900 answered queued"),
    ],
)
def test_a_drain_that_left_events_or_failed_is_a_problem(
    changes: dict[str, Any], queued: int, problem: str
) -> None:
    problems = events.drain_problems(drain_after_line(**changes), queued=queued, uncertain=0)

    assert len(problems) == 1
    assert problem in problems[0]


def test_the_api_draining_during_the_run_must_empty_the_queue() -> None:
    """``--drain during``: the backlog when the client finished need not be the events
    queued (the API drained most of them meanwhile), but the queue must end empty."""
    done = {"mode": "drain", "drain": "during", "events": 120, "waiting": 0, "parked": 0}
    timed_out = {**done, "waiting": 40}

    assert events.drain_problems(done, queued=5000, uncertain=0) == []
    assert events.drain_problems(timed_out, queued=5000, uncertain=0) == [
        "the drain left 40 events queued"
    ]


def queue_installs(database: Database, clock: FrozenClock, count: int) -> None:
    bodies = [
        {
            "id": f"bench-check-install-{index}",
            "type": "install",
            "at": clock.now().isoformat(),
            "market": "GB",
            "device_id": f"bench-check-device-{index}",
        }
        for index in range(count)
    ]
    sealed = seal_events(events=[EVENT.validate_python(body) for body in bodies], keys=KEYS)
    database.run(lambda session: queue_events(session=session, events=sealed, clock=clock))


def test_the_database_check_fails_while_events_are_queued_and_passes_once_drained(
    database: Database, database_url: str, clock: FrozenClock
) -> None:
    """Stored and acknowledged is not enough for a queued event: until a drain applied it,
    the run's database check counts it as still queued, with a ``queued`` outcome."""
    queue_installs(database, clock, 3)

    queued = events.check_database(database_url, acknowledged=3, uncertain=0)
    drain_queued_events(database=database, keys=KEYS, clock=clock)
    drained = events.check_database(database_url, acknowledged=3, uncertain=0)

    assert queued["events_stored"] == 3
    assert queued["events_queued"] == 3
    assert queued["events_by_outcome"] == {"queued": 3}
    assert queued["problems"] == [
        "3 events still queued after the drain (0 set aside by failing drains)",
        "3 events have the outcome 'queued' (never applied)",
    ]
    assert drained["events_queued"] == 0
    assert "queued" not in drained["events_by_outcome"]
    assert sum(drained["events_by_outcome"].values()) == 3
    assert drained["problems"] == []


def test_an_event_set_aside_by_failing_drains_fails_the_database_check(
    database: Database, database_url: str, clock: FrozenClock
) -> None:
    """An event the drains gave up on stays queued after every drain: the check says so."""
    queue_installs(database, clock, 2)
    with database.engine.begin() as connection:
        connection.exec_driver_sql(
            f"UPDATE referral_events SET queued_attempts = {MAX_ATTEMPTS} "
            "WHERE id = 'bench-check-install-1'"
        )
    drain_queued_events(database=database, keys=KEYS, clock=clock)

    found = events.check_database(database_url, acknowledged=2, uncertain=0)

    assert (found["events_queued"], found["events_parked"]) == (1, 1)
    assert found["problems"] == [
        "1 events still queued after the drain (1 set aside by failing drains)",
        "1 events have the outcome 'queued' (never applied)",
    ]
