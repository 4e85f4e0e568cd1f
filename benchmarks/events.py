"""Events API throughput and latency: POST /v1/events over HTTP against a trivial endpoint.

The script prepares a fresh database (a temporary SQLite file, or the PostgreSQL database
``parrain_bench_events``, created for the run and dropped afterwards), migrates it, seeds a
live, funded campaign with many enrolled members, link clicks and an integration API key,
then starts the API as production runs it::

    uvicorn parrain.web.asgi:create_app_from_environment --factory --workers 2 \\
        --loop uvloop --http httptools --host 127.0.0.1 --port <free port>

and, from a second process (this script in its ``client`` mode) on loopback, measures with
``_load`` (pre-encoded requests on keep-alive sockets, one thread: a lean client, so the
server is what is measured). Prints one JSON line per mode::

    python benchmarks/events.py --db sqlite
    python benchmarks/events.py --db postgresql

Modes (all by default, in this order; ``--modes`` picks some, run in the order given; all
on one growing database):

* ``trivial``: ``GET /health/live`` (no database) as fast as the connections go:
  requests/s, p50 and p99 latency;
* ``single``: ``POST /v1/events`` with one event per request, as fast as the connections
  go: events/s, p50/p99 and the ratio to ``trivial``'s requests/s (target ≥ 0.3);
* ``single_paced``: single events on an open-loop schedule of ``--rate`` requests/s
  (default 500); each latency is measured from the *scheduled* send time, so a stall that
  delays later requests counts against them (no coordinated omission). Target: p99 < 50 ms;
* ``batch``: ``POST /v1/events`` with ``{"events": [...]}`` of ``--batch-size`` (1,000)
  events: events/s and p50/p99 per batch (target ≥ 5,000 events/s);
* ``single_queued``, ``single_queued_paced``, ``batch_queued``: the same three with the
  header ``Prefer: respond-async`` (ADR 28): the API only stores the events and answers 202
  (``Preference-Applied: respond-async``, each new event ``queued``); a drain applies them
  later. Same figures and targets as ``single``, ``single_paced`` and ``batch``.

The modes without ``_queued`` measure events applied before the answer; the queued ones,
events received for later. Who applies those is ``--drain``:

* ``after`` (the default; production's shape, where ``parrain worker`` processes on other
  hosts apply them): the API runs with ``PARRAIN_REFERRALS_DRAIN_IN_API=false`` and only
  stores; once the client is done with every mode, the tables the modes grew (the queue)
  are analysed (``_support.settle_statistics``, as autovacuum would have done by then),
  then this script drains the backlog with
  2 processes of its own (each calls ``drain_queued_events`` until the queue is empty; on
  PostgreSQL one drains at a time, the other finds the drain's lock taken and polls) and
  prints a line ``{"mode": "drain", ...}``: events applied (they must be all those queued,
  ``queued_before``), seconds from the start of the drain processes (once connected) to the
  end of the last, events/s, failures, and the drain processes' CPU (``server_cpu`` in
  cores, ``server_cpu_us_per_event``; as on every line, the database server's is not
  counted). The drain grows the tables of friends, installs and orders as it goes: on a
  PostgreSQL without autovacuum, the statistics of those tables go stale and applying
  events slows down as the drain goes on (0.12 s per 500 events at first, 0.9 s after
  30,000; back to 0.15 s after an ``ANALYZE``), so there events/s fall as the backlog grows;
* ``during`` (one box): each API process drains in a thread of its own (the default
  setting), while it serves; the ``drain`` line tells how many events were still queued
  when the client finished (``events``) and how long the API took to apply them
  (``seconds``, polled every 0.2 s, at most ``--drain-timeout``), with the server's CPU
  meanwhile.

The events are what a marketplace sends: per friend an ``install`` (half with the deferred
deep-link token of a link click recorded while seeding, the others with the sponsorship code
typed), later the ``signup`` of that device, and for a third of them a completed ``order``.
Friends are spread over the members five by five, so every fifth signup of a member wins a
prize: the reward path (ledger holds on the campaign budget, the hot row) runs throughout.
Every response is checked (status 200 and, for events, one outcome per event with its id;
in a queued mode 202, ``Preference-Applied`` and every outcome ``queued``) and counted;
errors are reported per mode and fail its target. After the run (and the drain) the
database must hold exactly the events acknowledged, none of them still queued or set aside
by a failing drain, and the ledger must balance.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

import _load
import _support

DEFAULT_POSTGRES = "postgresql+psycopg://root@127.0.0.1:5432/parrain_bench_events"
MODES = (
    "trivial",
    "single",
    "single_paced",
    "batch",
    "single_queued",
    "single_queued_paced",
    "batch_queued",
)
#: Who applies the events of the queued modes (see the module's docstring).
DRAINS = ("after", "during")
#: ``--drain after``: drain processes this script runs once the client is done.
DRAIN_PROCESSES = 2
#: How often ``--drain during`` looks whether the queue is empty; how often a drain process
#: that found another one draining (PostgreSQL) looks again.
DRAIN_POLL = 0.2
DRAIN_RETRY = 0.1
RESPOND_ASYNC = "respond-async"
MARKET, CURRENCY = "GB", "GBP"
FRIENDS_NEEDED = 5
#: How many friends later a friend's signup is sent after its install (and its order after
#: that again): one person's events are spread out, as at a real marketplace.
LAG = 50
#: The longest a request may take before it counts as an error (a slow batch is a figure).
REQUEST_TIMEOUT = 300.0
#: single_paced stops sending this long after its --seconds; what is left is ``unsent``.
PACED_GRACE = 5.0
TARGET_RATIO = 0.3
TARGET_P99_MS = 50.0
TARGET_BATCH_EVENTS_PER_S = 5000.0
PHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def mode_shape(mode: str) -> tuple[str, bool]:
    """What a mode sends (``trivial``, ``single``, ``single_paced`` or ``batch``) and
    whether with ``Prefer: respond-async``: ``single_queued_paced`` → ``("single_paced",
    True)``."""
    if mode not in MODES:
        raise ValueError(f"not a mode: {mode!r}")
    return mode.replace("_queued", ""), "_queued" in mode


# --------------------------------------------------------------------------- the plan


@dataclass
class Plan:
    """What the server side prepared and the client needs (written as JSON between them)."""

    db: str
    base_url: str
    api_key: str
    run_id: str
    codes: list[str]  # the members' sponsorship codes, in enrolment order
    tokens: list[str]  # click tokens: friend 2*i installs with tokens[i]
    modes: list[str]
    seconds: float
    warmup: float
    connections: int
    batch_connections: int
    paced_connections: int
    batch_size: int
    rate: float
    seed: int
    #: ``--drain``: who applies the queued modes' events (shown on their lines).
    drain: str = "after"
    #: The server's process group, whose CPU time each mode reports (Linux); None: not shown.
    server_pgid: int | None = None


def friend_device(run_id: str, friend: int) -> str:
    return f"bench-{run_id}-device-{friend}"


def friend_code_index(friend: int, members: int) -> int:
    """Friends go to members five by five, wrapping around once every member had five."""
    return (friend // FRIENDS_NEEDED) % members


# --------------------------------------------------------------------------- seeding


def seed(url: str, *, members: int, clicks: int, run_id: str) -> tuple[str, list[str], list[str]]:
    """A live, funded campaign with ``members`` enrolled, ``clicks`` link clicks (one per
    even-numbered friend) and an integration key with the ``events`` scope."""
    from parrain.access import service as access
    from parrain.access.schemas import ApiKeyCreate
    from parrain.campaigns import service as campaigns
    from parrain.campaigns.schemas import CampaignCreate, FundingCreate
    from parrain.config import CryptoSettings, DatabaseSettings
    from parrain.consent import service as consent
    from parrain.db.session import Database
    from parrain.kit.clock import SystemClock
    from parrain.members.schemas import MemberCreate
    from parrain.members.service import MemberKeys
    from parrain.referrals import service as referrals
    from parrain.referrals.schemas import EnrolmentCreate

    clock = SystemClock()
    keys = MemberKeys.from_settings(CryptoSettings(allow_development_keys=True))
    actor = "operator:bench"
    database = Database(DatabaseSettings(url=url))
    try:
        campaign_in = CampaignCreate(
            name=f"Cash Rewards bench {run_id}",
            market=MARKET,
            currency=CURRENCY,
            languages=["en"],
            starts_at=clock.now() - timedelta(hours=1),
            ends_at=clock.now() + timedelta(days=30),
            friends_needed=FRIENDS_NEEDED,
            enrolment_window_hours=24,
            reward_cash_minor=2000,
            reward_coupon_minor=3000,
            holding_days=7,
        )

        def launch(session: Session) -> Any:
            created = campaigns.create(
                session=session, campaign_in=campaign_in, actor=actor, clock=clock
            )
            campaigns.fund(
                session=session,
                campaign_id=created.id,
                funding_in=FundingCreate(amount_minor=10**12, currency=CURRENCY),
                actor=actor,
                clock=clock,
            )
            consent.declare_programme_defaults(
                session=session,
                campaign_id=created.id,
                controller="Bench Marketplace Ltd",
                actor=actor,
                clock=clock,
            )
            return campaigns.launch(
                session=session, campaign_id=created.id, actor=actor, clock=clock
            )

        campaign = database.run(launch)
        codes: list[str] = []
        chunk = 250
        for start in range(0, members, chunk):

            def enrol(session: Session, start: int = start) -> list[str]:
                out = []
                for index in range(start, min(start + chunk, members)):
                    member = MemberCreate.model_validate(
                        {
                            "market": MARKET,
                            "marketplace_user_id": f"bench-{run_id}-member-{index}",
                            "email": f"member{index}.{run_id}@example.org",
                            "username": f"member{index}",
                        }
                    )
                    enrolment = referrals.enrol(
                        session=session,
                        campaign_id=campaign.id,
                        enrolment_in=EnrolmentCreate(member=member),
                        keys=keys,
                        clock=clock,
                        link_base_url="http://127.0.0.1",
                    )
                    out.append(enrolment.code)
                return out

            codes.extend(database.run(enrol))
        tokens: list[str] = []
        for start in range(0, clicks, chunk):

            def click(session: Session, start: int = start) -> list[str]:
                out = []
                for index in range(start, min(start + chunk, clicks)):
                    friend = 2 * index
                    result = referrals.record_click(
                        session=session,
                        code_text=codes[friend_code_index(friend, members)],
                        device=friend_device(run_id, friend),
                        user_agent=PHONE,
                        keys=keys,
                        clock=clock,
                    )
                    if result.token is None:
                        raise RuntimeError(f"a seeded click was not recorded: {result}")
                    out.append(result.token)
                return out

            tokens.extend(database.run(click))
        created = database.run(
            lambda session: access.create_api_key(
                session=session,
                key_in=ApiKeyCreate(name=f"bench-events-{run_id}", scopes=["events"]),
                actor=actor,
                clock=clock,
            )
        )
        return created.key, codes, tokens
    finally:
        database.dispose()


def check_database(url: str, *, acknowledged: int, uncertain: int) -> dict[str, Any]:
    """What the run left: events stored against those acknowledged, none of them still
    queued (waiting, or set aside by failing drains) nor with a ``queued`` outcome, the
    outcomes stored, prizes, the ledger."""
    from parrain.config import DatabaseSettings
    from parrain.db.session import Database
    from parrain.ledger import service as ledger
    from parrain.referrals.queue import MAX_ATTEMPTS

    database = Database(DatabaseSettings(url=url))
    try:
        with database.engine.connect() as connection:

            def count(sql: str) -> int:
                return int(connection.exec_driver_sql(sql).scalar() or 0)

            status = (
                "outcome ->> 'status'"
                if connection.dialect.name == "postgresql"
                else "json_extract(outcome, '$.status')"
            )
            stored = count("SELECT count(*) FROM referral_events")
            found: dict[str, Any] = {
                "events_stored": stored,
                "events_acknowledged": acknowledged,
                "events_uncertain": uncertain,
                "events_by_outcome": {
                    str(name): int(number)
                    for name, number in connection.exec_driver_sql(
                        f"SELECT {status}, count(*) FROM referral_events "
                        f"GROUP BY {status} ORDER BY {status}"
                    )
                },
                # Still queued: a body not dropped by a drain (a sealed key alone would be
                # a drain that cleared half of it); set aside after MAX_ATTEMPTS failures.
                "events_queued": count(
                    "SELECT count(*) FROM referral_events "
                    "WHERE queued_body IS NOT NULL OR queued_key IS NOT NULL"
                ),
                "events_parked": count(
                    "SELECT count(*) FROM referral_events WHERE queued_body IS NOT NULL "
                    f"AND queued_attempts >= {MAX_ATTEMPTS}"
                ),
                "friends_qualified": count(
                    "SELECT count(*) FROM referral_friends WHERE status = 'qualified'"
                ),
                "rewards_held": count("SELECT count(*) FROM rewards WHERE status = 'held'"),
            }
        found["ledger_discrepancies"] = database.read(
            lambda session: ledger.find_discrepancies(session=session)
        )
    finally:
        database.dispose()
    problems = []
    if not acknowledged <= stored <= acknowledged + uncertain:
        problems.append(
            f"{stored} events stored, {acknowledged} acknowledged (+{uncertain} unsure)"
        )
    if found["events_queued"] or found["events_parked"]:
        problems.append(
            f"{found['events_queued']} events still queued after the drain "
            f"({found['events_parked']} set aside by failing drains)"
        )
    not_applied = found["events_by_outcome"].get("queued", 0)
    if not_applied:
        problems.append(f"{not_applied} events have the outcome 'queued' (never applied)")
    if found["ledger_discrepancies"]:
        problems.append(f"the ledger does not balance: {found['ledger_discrepancies'][:5]}")
    found["problems"] = problems
    return found


# --------------------------------------------------------------------------- databases


def fresh_database(db: str, url: str | None) -> Any:
    return _support.fresh_database(db, url, postgres=DEFAULT_POSTGRES, stem="events")


def migrate(url: str, db: str) -> None:
    from parrain.config import DatabaseSettings
    from parrain.db.migrate import upgrade
    from parrain.db.session import Database

    database = Database(DatabaseSettings(url=url))
    try:
        if database.dialect != db:
            raise SystemExit(f"--database-url is a {database.dialect} URL, not {db}")
        upgrade(database.engine)
    finally:
        database.dispose()


# --------------------------------------------------------------------------- the server


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


#: base URL of a running :func:`api_server` → its process group (for its CPU time).
SERVER_PGIDS: dict[str, int] = {}


def server_environment(url: str, *, drain_in_api: bool) -> dict[str, str]:
    """The environment of the API's processes, and of this script's drain processes."""
    return {
        **os.environ,
        "PARRAIN_DATABASE_URL": url,
        "PARRAIN_CRYPTO_ALLOW_DEVELOPMENT_KEYS": "true",
        "PARRAIN_LOG_LEVEL": "WARNING",
        "PARRAIN_REFERRALS_DRAIN_IN_API": "true" if drain_in_api else "false",
    }


@contextmanager
def api_server(url: str, *, port: int, workers: int, drain_in_api: bool) -> Iterator[str]:
    """uvicorn with ``workers`` processes on loopback, each draining the queued events in a
    thread if ``drain_in_api``; stopped (SIGTERM, then SIGKILL of its own process group)
    however the block ends."""
    env = server_environment(url, drain_in_api=drain_in_api)
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "parrain.web.asgi:create_app_from_environment",
        "--factory",
        "--workers",
        str(workers),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    server = subprocess.Popen(command, env=env, start_new_session=True)
    base_url = f"http://127.0.0.1:{port}"
    SERVER_PGIDS[base_url] = server.pid
    try:
        wait_until_live(server, base_url, timeout=60.0, workers=workers)
        yield base_url
    finally:
        SERVER_PGIDS.pop(base_url, None)
        stop(server)


def wait_until_live(
    server: subprocess.Popen[bytes], base_url: str, *, timeout: float, workers: int
) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    answered = 0
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the API server exited with status {server.returncode}")
        try:
            # A fresh connection each time, so the answers come from the workers in turn.
            response = httpx.get(f"{base_url}/health/live", timeout=2.0)
            if response.status_code == 200 and response.json() == {"status": "ok"}:
                answered += 1
                if answered >= 4 * workers:
                    time.sleep(1.0)  # the last worker to start is still importing
                    return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"the API server did not answer /health/live within {timeout:.0f}s")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def run_client(plan_path: Path, *, timeout: float) -> list[dict[str, Any]]:
    """This script in client mode, in its own process; its JSON lines are relayed as they
    come. Killed if it outlives ``timeout``."""
    client = subprocess.Popen(
        [sys.executable, __file__, "client", str(plan_path)],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    killer = threading.Timer(timeout, client.kill)
    killer.start()
    lines: list[dict[str, Any]] = []
    try:
        assert client.stdout is not None
        for line in client.stdout:
            parsed = json.loads(line)
            if not parsed["mode"].startswith("_"):  # "_totals" is for this process only
                print(line, end="", flush=True)
            lines.append(parsed)
        client.wait()
    except BaseException:
        client.kill()
        client.wait()
        raise
    finally:
        killer.cancel()
    if client.returncode != 0:
        raise RuntimeError(f"the client exited with status {client.returncode}")
    return lines


# --------------------------------------------------------------------------- the drain


@contextmanager
def opened(url: str) -> Iterator[Any]:
    """The application's :class:`~parrain.db.session.Database` over ``url``, disposed after."""
    from parrain.config import DatabaseSettings
    from parrain.db.session import Database

    database = Database(DatabaseSettings(url=url))
    try:
        yield database
    finally:
        database.dispose()


def queue_counts(database: Any) -> Any:
    """The queue's :class:`~parrain.referrals.queue.QueueCounts` (waiting, parked)."""
    from parrain.referrals import queue

    return database.read(lambda session: queue.queue_counts(session=session))


def read_json_line(process: subprocess.Popen[str], what: str) -> dict[str, Any]:
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        process.wait()
        raise RuntimeError(f"{what} exited with status {process.returncode}")
    parsed: dict[str, Any] = json.loads(line)
    return parsed


def drain_after(url: str, *, db: str, processes: int, timeout: float) -> dict[str, Any]:
    """``--drain after``: ``processes`` drain processes (this script in its ``drain`` mode)
    at once, until the queue is empty. Each imports the application and connects, then
    waits for the word to start: the time measured runs from that word to the end of the
    last one. Killed if they outlive ``timeout``. The ``drain`` line (without its
    ``problems``, see :func:`drain_problems`)."""
    with opened(url) as database:
        before = queue_counts(database)
        reports, seconds = run_drainers(url, processes=processes, timeout=timeout)
        after = queue_counts(database)
    applied = sum(report["applied"] for report in reports)
    cpu = sum(report["cpu"] for report in reports)
    return {
        "mode": "drain",
        "db": db,
        "drain": "after",
        "processes": processes,
        "queued_before": before.waiting,
        "events": applied,
        "seconds": round(seconds, 2),
        "events_per_s": round(applied / seconds, 1) if seconds > 0 else None,
        "applied_per_process": [report["applied"] for report in reports],
        "failed": sum(report["failed"] for report in reports),
        "waiting": after.waiting,
        "parked": after.parked,
        "server_cpu": round(cpu / seconds, 2) if seconds > 0 else None,
        "server_cpu_us_per_event": round(1e6 * cpu / applied, 1) if applied else None,
    }


def run_drainers(url: str, *, processes: int, timeout: float) -> tuple[list[dict[str, Any]], float]:
    """The drain processes of :func:`drain_after`: what each reported, and the seconds from
    the word to start to the last one's end."""
    env = server_environment(url, drain_in_api=False)
    drainers: list[subprocess.Popen[str]] = []
    timed_out = threading.Event()

    def kill_all() -> None:
        for drainer in drainers:
            drainer.kill()

    def time_out() -> None:
        timed_out.set()
        kill_all()

    killer = threading.Timer(timeout, time_out)
    try:
        for _ in range(processes):
            drainers.append(
                subprocess.Popen(
                    [sys.executable, __file__, "drain"],
                    env=env,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                    start_new_session=True,
                )
            )
        killer.start()
        for drainer in drainers:
            if read_json_line(drainer, "a drain process") != {"ready": True}:
                raise RuntimeError("a drain process did not get ready")
        started = time.perf_counter()
        for drainer in drainers:
            assert drainer.stdin is not None
            drainer.stdin.write("go\n")
            drainer.stdin.close()
        reports = [read_json_line(drainer, "a drain process") for drainer in drainers]
        seconds = time.perf_counter() - started
        for drainer in drainers:
            drainer.wait()
    except BaseException as error:
        kill_all()
        for drainer in drainers:
            drainer.wait()
        if timed_out.is_set():
            raise RuntimeError(f"the drain did not end within {timeout:.0f}s") from error
        raise
    finally:
        killer.cancel()
    if any(drainer.returncode != 0 for drainer in drainers):
        raise RuntimeError(f"drain processes exited with {[d.returncode for d in drainers]}")
    return reports, seconds


def drain_during(url: str, *, db: str, server_pgid: int | None, timeout: float) -> dict[str, Any]:
    """``--drain during``: how long the API's own drainers take to empty the queue once the
    client is done (looked at every :data:`DRAIN_POLL` s, for at most ``timeout``), and the
    server's CPU meanwhile. The ``drain`` line (without its ``problems``)."""
    with opened(url) as database:
        cpu = None if server_pgid is None else _load.process_group_cpu(server_pgid)
        started = time.perf_counter()
        counts = before = queue_counts(database)
        while counts.waiting and time.perf_counter() - started < timeout:
            time.sleep(DRAIN_POLL)
            counts = queue_counts(database)
        seconds = time.perf_counter() - started
        cpu_after = None if server_pgid is None else _load.process_group_cpu(server_pgid)
    server = None if cpu is None or cpu_after is None else cpu_after - cpu
    backlog = before.waiting
    return {
        "mode": "drain",
        "db": db,
        "drain": "during",
        "events": backlog,
        "seconds": round(seconds, 2),
        "events_per_s": round(backlog / seconds, 1) if backlog and seconds > 0 else None,
        "waiting": counts.waiting,
        "parked": counts.parked,
        "server_cpu": None if server is None or seconds <= 0 else round(server / seconds, 2),
        "server_cpu_us_per_event": (
            round(1e6 * server / backlog, 1) if server is not None and backlog else None
        ),
    }


def drain_problems(line: dict[str, Any], *, queued: int, uncertain: int) -> list[str]:
    """What is wrong with a ``drain`` line, given the events the client saw answered
    ``queued`` and those it is unsure of: events left queued or set aside, failures, and
    (``--drain after``, where nothing else drains) a backlog other than the events queued,
    or applied other than the backlog."""
    problems = []
    if line["waiting"]:
        problems.append(f"the drain left {line['waiting']} events queued")
    if line["parked"]:
        problems.append(f"{line['parked']} queued events set aside by failing drains")
    if line.get("failed"):
        problems.append(f"{line['failed']} failures of a queued event in the drain")
    if line["drain"] == "after":
        before = line["queued_before"]
        if not queued <= before <= queued + uncertain:
            problems.append(f"{before} events queued, {queued} answered queued (+{uncertain})")
        if line["events"] != before:
            problems.append(f"the drain applied {line['events']} events of {before} queued")
    return problems


def drain_entry() -> int:
    """``drain`` mode (see :func:`drain_after`): the application's settings from the
    environment, as the API's; prints ``{"ready": true}``, waits for a line on stdin, then
    runs :func:`~parrain.worker.jobs.drain_queued_events` until nothing is waiting (while
    another process drains, PostgreSQL's drain lock makes a round return at once: it looks
    again after :data:`DRAIN_RETRY` s) and prints what it did as one JSON line."""
    from parrain.config import Settings
    from parrain.db.session import Database
    from parrain.kit.clock import SystemClock
    from parrain.logging import configure_logging
    from parrain.members.service import MemberKeys
    from parrain.worker.jobs import drain_queued_events

    settings = Settings()
    configure_logging(settings.log)
    database = Database(settings.database)
    try:
        keys = MemberKeys.from_settings(settings.crypto)
        clock = SystemClock()
        queue_counts(database)  # connected before the clock starts
        print(json.dumps({"ready": True}), flush=True)
        if not sys.stdin.readline():
            return 1
        cpu = time.process_time()
        applied = failed = rounds = retries = 0
        while True:
            report = drain_queued_events(
                database=database,
                keys=keys,
                clock=clock,
                batch_size=settings.referrals.drain_batch_size,
            )
            rounds += 1
            applied += report.applied
            failed += report.failed
            if report.waiting == 0:
                break
            if report.applied == 0 and report.failed == 0:
                retries += 1
                time.sleep(DRAIN_RETRY)
        result = {
            "applied": applied,
            "failed": failed,
            "rounds": rounds,
            "retries": retries,
            "waiting": report.waiting,
            "parked": report.parked,
            "cpu": time.process_time() - cpu,
        }
        print(json.dumps(result), flush=True)
    finally:
        database.dispose()
    return 0


# --------------------------------------------------------------------------- the client


class EventStream:
    """The events of a marketplace, friend after friend, one person's events spread out:
    friend ``k``'s install is followed by the signup of friend ``k - LAG`` and the order of
    friend ``k - 2 * LAG`` (a third of friends order)."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.next_friend = 0
        self.pending: list[dict[str, Any]] = []
        self.random = random.Random(plan.seed)

    @staticmethod
    def _now() -> str:
        return datetime.now(UTC).isoformat()

    def _install(self, friend: int) -> dict[str, Any]:
        plan = self.plan
        body: dict[str, Any] = {
            "id": f"bench-{plan.run_id}-install-{friend}",
            "type": "install",
            "at": self._now(),
            "market": MARKET,
            "device_id": friend_device(plan.run_id, friend),
        }
        if friend % 2 == 0 and friend // 2 < len(plan.tokens):
            body["token"] = plan.tokens[friend // 2]
        else:
            body["code"] = plan.codes[friend_code_index(friend, len(plan.codes))]
        return body

    def _signup(self, friend: int) -> dict[str, Any]:
        run_id = self.plan.run_id
        return {
            "id": f"bench-{run_id}-signup-{friend}",
            "type": "signup",
            "at": self._now(),
            "market": MARKET,
            "marketplace_user_id": f"bench-{run_id}-friend-{friend}",
            "email": f"friend{friend}.{run_id}@example.org",
            "username": f"friend{friend}",
            "device_id": friend_device(run_id, friend),
            "ip": f"198.51.100.{friend % 250 + 1}",
            "user_agent": PHONE,
        }

    def _order(self, friend: int) -> dict[str, Any]:
        run_id = self.plan.run_id
        return {
            "id": f"bench-{run_id}-order-{friend}",
            "type": "order",
            "at": self._now(),
            "market": MARKET,
            "marketplace_user_id": f"bench-{run_id}-friend-{friend}",
            "order_id": f"bench-{run_id}-order-{friend}",
            "amount_minor": self.random.randint(500, 20_000),
            "currency": CURRENCY,
            "status": "completed",
        }

    def next(self) -> dict[str, Any]:
        while not self.pending:
            friend = self.next_friend
            self.next_friend += 1
            self.pending.append(self._install(friend))
            if friend >= LAG:
                self.pending.append(self._signup(friend - LAG))
            if friend >= 2 * LAG and (friend - 2 * LAG) % 3 == 0:
                self.pending.append(self._order(friend - 2 * LAG))
        return self.pending.pop(0)

    def take(self, count: int) -> list[dict[str, Any]]:
        return [self.next() for _ in range(count)]


@dataclass
class Tally:
    """Every request of one sending thread: its latency, or the error it met."""

    latencies: list[float] = field(default_factory=list)
    lags: list[float] = field(default_factory=list)  # open loop: how late a send started
    events: int = 0
    acknowledged: int = 0  # events answered with an outcome
    queued: int = 0  # of those, answered ``queued``: the drain must apply them
    outcomes: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    error_samples: list[str] = field(default_factory=list)
    uncertain: int = 0  # events sent and not acknowledged: they may or may not be stored
    unsent: int = 0  # open loop: due, but not sent before the mode's time was up
    requests: int = 0  # sent and answered, or failed

    def error(self, kind: str, detail: str, *, events: int = 0) -> None:
        self.errors[kind] += 1
        self.uncertain += events
        if len(self.error_samples) < 5:
            self.error_samples.append(f"{kind}: {detail[:300]}")


def percentile(values: Sequence[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)


class Client:
    """Requests pre-encoded and answers parsed by :mod:`_load`: one thread, keep-alive
    sockets, tens of µs of CPU per request. (httpx cost about 1 ms of CPU per request from
    threads, and 5 ms from its asyncio client: the client would have been what was
    measured.)"""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.stream = EventStream(plan)
        authorization = {"Authorization": f"Bearer {plan.api_key}"}
        self.target = _load.Target.from_url(plan.base_url, headers=authorization)
        #: The queued modes' requests: the same, with ``Prefer: respond-async``.
        self.queued_target = _load.Target.from_url(
            plan.base_url, headers={**authorization, "Prefer": RESPOND_ASYNC}
        )
        self.trivial_request = self.target.get("/health/live")
        self.acknowledged = 0  # warm-ups included: what the database must hold
        self.queued = 0  # of those, answered ``queued``
        self.uncertain = 0
        #: CPU seconds of this process and of the server during the last measured run.
        self.measured_cpu: tuple[float, float | None] = (0.0, None)
        self.measured_split: list[float] | None = None

    def _measured(self, work: Any) -> _load.Run:
        client = time.process_time()
        pgid = self.plan.server_pgid
        server = None if pgid is None else _load.process_group_cpu_by_pid(pgid)
        run: _load.Run = work()
        server_after = None if pgid is None else _load.process_group_cpu_by_pid(pgid)
        self.measured_cpu = (
            time.process_time() - client,
            None
            if server is None or server_after is None
            else sum(server_after.values()) - sum(server.values()),
        )
        #: Each server process's share during the run, in cores, busiest first: with few
        #: connections the kernel may hand most of them to one worker.
        self.measured_split = _load.cpu_split(server, server_after, run.elapsed)
        return run

    def next_body(self, kind: str) -> dict[str, Any]:
        if kind == "batch":
            return {"events": self.stream.take(self.plan.batch_size)}
        return self.stream.next()

    def _maker(
        self, kind: str, sent: dict[int, list[dict[str, Any]]], *, queued: bool = False
    ) -> Any:
        """``make(i)`` for :mod:`_load`: the next request of ``kind`` (with ``Prefer:
        respond-async`` if ``queued``); the events request ``i`` carries are kept in
        ``sent[i]`` for the check of its answer."""
        if kind == "trivial":
            request = self.trivial_request
            return lambda index: request
        target = self.queued_target if queued else self.target

        def make(index: int) -> bytes:
            body = self.next_body(kind)
            sent[index] = body["events"] if kind == "batch" else [body]
            return target.post_json("/v1/events", body)

        return make

    # Each answer, checked; latencies are _load's (from the send, or from when it was due).

    @staticmethod
    def trivial(result: _load.Result, tally: Tally) -> None:
        response = result.response
        if response is None:
            kind, _, detail = (result.error or "error").partition(":")
            tally.error(kind, detail.strip())
            return
        if response.status != 200 or response.json() != {"status": "ok"}:
            tally.error(f"http_{response.status}", response.text)
            return
        tally.latencies.append(result.latency)

    @staticmethod
    def events(
        result: _load.Result,
        tally: Tally,
        sent: list[dict[str, Any]],
        *,
        batch: bool,
        queued: bool = False,
    ) -> None:
        """Check one answer to the events ``sent`` and count it in ``tally``. Applied at
        once: status 200, each event ``accepted`` or ``ignored``. Queued (``Prefer:
        respond-async``): status 202 with ``Preference-Applied: respond-async``, each event
        ``queued`` and, for a batch, the counts agreeing with its results. An event answered
        with an outcome is acknowledged (it is stored) even when that outcome is an error
        of the mode (``queued`` when applied at once, or the reverse)."""
        response = result.response
        if response is None:
            kind, _, detail = (result.error or "error").partition(":")
            tally.error(kind, detail.strip(), events=len(sent))
            return
        if response.status != (202 if queued else 200):
            tally.error(f"http_{response.status}", response.text, events=len(sent))
            return
        applied = response.header("preference-applied")
        if queued and applied != RESPOND_ASYNC:
            tally.error("preference_not_applied", repr(applied), events=len(sent))
            return
        try:
            answer = response.json()
        except ValueError:
            tally.error("not_json", response.text, events=len(sent))
            return
        results = answer.get("results", []) if batch else [answer]
        if [result.get("event_id") for result in results] != [event["id"] for event in sent]:
            tally.error("wrong_results", json.dumps(answer)[:300], events=len(sent))
            return
        statuses: Counter[str] = Counter()
        for event, outcome in zip(sent, results, strict=True):
            status = outcome.get("status")
            statuses[status if status in ("accepted", "ignored", "queued") else "refused"] += 1
            if status in ("accepted", "queued"):
                tally.outcomes[f"{event['type']}:{status}"] += 1
            elif status == "ignored":
                tally.outcomes[f"{event['type']}:ignored:{outcome.get('reason')}"] += 1
            else:
                tally.outcomes[f"{event['type']}:refused:{outcome.get('code')}"] += 1
                tally.error("refused", json.dumps(outcome))
                continue
            tally.acknowledged += 1
            if status == "queued":
                tally.queued += 1
            if (status == "queued") != queued:
                tally.error("not_queued" if queued else "queued", json.dumps(outcome))
        if queued and batch:
            counts = {key: answer.get(key) for key in ("accepted", "ignored", "queued", "refused")}
            if counts != {key: statuses[key] for key in counts}:
                tally.error("wrong_counts", json.dumps(counts))
        tally.events += len(sent)
        tally.latencies.append(result.latency)

    def _tally(
        self,
        kind: str,
        run: _load.Run,
        sent: dict[int, list[dict[str, Any]]],
        *,
        queued: bool = False,
    ) -> Tally:
        tally = Tally(unsent=run.unsent)
        for result in sorted(run.results, key=lambda result: result.index):
            if kind == "trivial":
                self.trivial(result, tally)
            else:
                events = sent.pop(result.index)
                self.events(result, tally, events, batch=kind == "batch", queued=queued)
            tally.lags.append(result.lag)
            tally.requests += 1
        if sent:  # every request made must have an answer or an error
            tally.error("unanswered", f"{len(sent)} requests", events=sum(map(len, sent.values())))
        self.acknowledged += tally.acknowledged
        self.queued += tally.queued
        self.uncertain += tally.uncertain
        return tally

    # Closed loop: each connection sends its next request when the last one is answered.

    def closed_loop(
        self, kind: str, seconds: float, connections: int, *, queued: bool = False
    ) -> tuple[Tally, float]:
        if self.plan.warmup > 0 and kind != "batch":  # a batch is long enough as it is
            sent: dict[int, list[dict[str, Any]]] = {}
            run = _load.closed_loop(
                self.target,
                self._maker(kind, sent, queued=queued),
                connections=connections,
                seconds=self.plan.warmup,
                timeout=REQUEST_TIMEOUT,
            )
            self._tally(kind, run, sent, queued=queued)
        sent = {}
        run = self._measured(
            lambda: _load.closed_loop(
                self.target,
                self._maker(kind, sent, queued=queued),
                connections=connections,
                seconds=seconds,
                timeout=REQUEST_TIMEOUT,
            )
        )
        return self._tally(kind, run, sent, queued=queued), run.elapsed

    # Open loop: request i is due at start + i / rate, whatever happened to the others; a
    # request that waited for a free connection counts its wait.

    def open_loop(
        self, seconds: float, rate: float, connections: int, *, queued: bool = False
    ) -> tuple[Tally, float]:
        """Requests the server could not take by ``seconds`` + :data:`PACED_GRACE` after the
        start are not sent at all: they are counted in ``unsent`` and fail the target."""
        sent: dict[int, list[dict[str, Any]]] = {}
        run = self._measured(
            lambda: _load.open_loop(
                self.target,
                self._maker("single", sent, queued=queued),
                rate=rate,
                seconds=seconds,
                max_in_flight=connections,
                grace=PACED_GRACE,
                timeout=REQUEST_TIMEOUT,
            )
        )
        return self._tally("single", run, sent, queued=queued), run.elapsed


def line_of(tally: Tally, mode: str, plan: Plan, elapsed: float, cpu: float) -> dict[str, Any]:
    requests = len(tally.latencies)
    return {
        "mode": mode,
        "db": plan.db,
        "requests": requests,
        "errors": sum(tally.errors.values()),
        "seconds": round(elapsed, 2),
        "p50_ms": ms(percentile(tally.latencies, 0.50)),
        "p99_ms": ms(percentile(tally.latencies, 0.99)),
        "max_ms": ms(max(tally.latencies, default=None)),
        "client_cpu": round(cpu / elapsed, 2),
    }


def server_cpu_seconds(plan: Plan) -> float | None:
    return None if plan.server_pgid is None else _load.process_group_cpu(plan.server_pgid)


def add_cpu_per_request(
    line: dict[str, Any], tally: Tally, *, client: float, server: float | None, elapsed: float
) -> None:
    """CPU µs per request answered, of this client's load loop (building, sending, parsing;
    the answers are checked after the run) and of the server's processes, during the
    measured run (warm-up excluded); and the server's CPU in cores, as ``client_cpu``."""
    answered = tally.requests
    line["server_cpu"] = None if server is None else round(server / elapsed, 2)
    line["client_cpu_us_per_request"] = round(1e6 * client / answered, 1) if answered else None
    line["server_cpu_us_per_request"] = (
        round(1e6 * server / answered, 1) if answered and server is not None else None
    )


def client_main(plan: Plan) -> None:
    client = Client(plan)
    trivial_per_s: float | None = None
    for mode in plan.modes:
        log(f"  {mode}: {plan.seconds:.0f}s")
        shape, queued = mode_shape(mode)
        cpu = time.process_time()
        if shape == "single_paced":
            tally, elapsed = client.open_loop(
                plan.seconds, plan.rate, plan.paced_connections, queued=queued
            )
        else:
            connections = plan.batch_connections if shape == "batch" else plan.connections
            tally, elapsed = client.closed_loop(shape, plan.seconds, connections, queued=queued)
        line = line_of(tally, mode, plan, elapsed, time.process_time() - cpu)
        client_cpu, server_cpu = client.measured_cpu
        add_cpu_per_request(line, tally, client=client_cpu, server=server_cpu, elapsed=elapsed)
        line["server_cpu_by_process"] = client.measured_split
        errors = line["errors"]
        if queued:
            line["drain"] = plan.drain
        if shape == "trivial":
            trivial_per_s = len(tally.latencies) / elapsed
            line["connections"] = plan.connections
            line["requests_per_s"] = round(trivial_per_s, 1)
            line["target"] = None
            line["met"] = None
        elif shape == "single":
            per_s = tally.events / elapsed
            ratio = None if trivial_per_s is None else per_s / trivial_per_s
            line["connections"] = plan.connections
            line["events"] = tally.events
            line["events_per_s"] = round(per_s, 1)
            line["trivial_requests_per_s"] = (
                None if trivial_per_s is None else round(trivial_per_s, 1)
            )
            line["ratio"] = None if ratio is None else round(ratio, 3)
            line["target"] = {"ratio_to_trivial_at_least": TARGET_RATIO}
            line["met"] = None if ratio is None else ratio >= TARGET_RATIO and errors == 0
        elif shape == "single_paced":
            p99 = line["p99_ms"]
            line["rate_per_s"] = plan.rate
            line["events"] = tally.events
            line["events_per_s"] = round(tally.events / elapsed, 1)
            line["send_lag_p99_ms"] = ms(percentile(tally.lags, 0.99))
            line["unsent"] = tally.unsent
            line["target"] = {"p99_ms_below": TARGET_P99_MS}
            line["met"] = (
                p99 is not None and p99 < TARGET_P99_MS and errors == 0 and tally.unsent == 0
            )
        else:
            per_s = tally.events / elapsed
            line["connections"] = plan.batch_connections
            line["batch_size"] = plan.batch_size
            line["events"] = tally.events
            line["events_per_s"] = round(per_s, 1)
            line["target"] = {"events_per_s_at_least": TARGET_BATCH_EVENTS_PER_S}
            line["met"] = per_s >= TARGET_BATCH_EVENTS_PER_S and errors == 0
        if shape != "trivial":
            line["outcomes"] = dict(sorted(tally.outcomes.items()))
        if errors:
            line["error_kinds"] = dict(tally.errors)
            line["error_samples"] = tally.error_samples
        print(json.dumps(line), flush=True)
    print(
        json.dumps(
            {
                "mode": "_totals",
                "acknowledged": client.acknowledged,
                "queued": client.queued,
                "uncertain": client.uncertain,
            }
        ),
        flush=True,
    )


def client_entry(argv: Sequence[str]) -> int:
    plan = Plan(**json.loads(Path(argv[0]).read_text(encoding="utf-8")))
    client_main(plan)
    return 0


# --------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["client"]:
        return client_entry(argv[1:])
    if argv[:1] == ["drain"]:
        return drain_entry()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql"), required=True)
    parser.add_argument(
        "--database-url",
        help="use this database instead of a fresh one (it is migrated; rows are left behind)",
    )
    parser.add_argument(
        "--modes",
        nargs="+",
        choices=MODES,
        default=list(MODES),
        help="the modes to run, in the order given (default: all)",
    )
    parser.add_argument(
        "--drain",
        choices=DRAINS,
        default="after",
        help=(
            "who applies the queued modes' events: 'after' (default): the API only stores "
            f"them, and once the client is done {DRAIN_PROCESSES} drain processes of this "
            "script apply them, timed; 'during': each API process drains in a thread while "
            "it serves, and the time the queue takes to empty after the client is reported"
        ),
    )
    parser.add_argument(
        "--drain-timeout",
        type=float,
        default=1800.0,
        help="the longest the drain may take after the client, in seconds (default 1800)",
    )
    parser.add_argument("--seconds", type=float, default=20.0, help="measured length of a mode")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured lead-in per mode")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument(
        "--connections", type=int, default=16, help="trivial, single and single_queued"
    )
    parser.add_argument("--batch-connections", type=int, default=2, help="batch and batch_queued")
    parser.add_argument(
        "--paced-connections",
        type=int,
        default=64,
        help="single_paced and single_queued_paced: most requests in flight",
    )
    parser.add_argument("--batch-size", type=int, default=1000, help="events per batch")
    parser.add_argument(
        "--rate",
        type=float,
        default=500.0,
        help="single_paced and single_queued_paced: requests/s",
    )
    parser.add_argument("--members", type=int, default=2000, help="members enrolled")
    parser.add_argument("--clicks", type=int, default=5000, help="link clicks seeded")
    parser.add_argument("--seed", type=int, default=20_261_130)
    args = parser.parse_args(argv)

    run_id = f"{random.Random().getrandbits(32):08x}"
    queued_modes = any(mode_shape(mode)[1] for mode in args.modes)
    started = time.perf_counter()
    with fresh_database(args.db, args.database_url) as url:
        migrate(url, args.db)
        api_key, codes, tokens = seed(url, members=args.members, clicks=args.clicks, run_id=run_id)
        drain_in_api = args.drain == "during"
        log(
            f"{args.db}: seeded {len(codes)} members, {len(tokens)} clicks in "
            f"{time.perf_counter() - started:.0f}s; starting {args.workers} workers"
            + (f" (drain: {args.drain})" if queued_modes else "")
        )
        drain_line: dict[str, Any] | None = None
        with (
            tempfile.TemporaryDirectory(prefix="parrain-bench-plan-") as directory,
            api_server(
                url, port=free_port(), workers=args.workers, drain_in_api=drain_in_api
            ) as base_url,
        ):
            plan = Plan(
                db=args.db,
                base_url=base_url,
                api_key=api_key,
                run_id=run_id,
                codes=codes,
                tokens=tokens,
                modes=args.modes,
                seconds=args.seconds,
                warmup=args.warmup,
                connections=args.connections,
                batch_connections=args.batch_connections,
                paced_connections=args.paced_connections,
                batch_size=args.batch_size,
                rate=args.rate,
                seed=args.seed,
                drain=args.drain,
                server_pgid=SERVER_PGIDS.get(base_url),
            )
            plan_path = Path(directory) / "plan.json"
            plan_path.write_text(json.dumps(asdict(plan)), encoding="utf-8")
            budget = len(args.modes) * (args.seconds + args.warmup) + 2 * REQUEST_TIMEOUT
            lines = run_client(plan_path, timeout=budget)
            totals = lines[-1]
            if queued_modes:
                log(f"  drain ({args.drain}): {totals['queued']} events answered queued")
                if args.drain == "after":
                    settling = time.perf_counter()
                    _support.settle_statistics(url)
                    log(f"  statistics settled in {time.perf_counter() - settling:.1f}s")
                    drain_line = drain_after(
                        url, db=args.db, processes=DRAIN_PROCESSES, timeout=args.drain_timeout
                    )
                else:
                    drain_line = drain_during(
                        url,
                        db=args.db,
                        server_pgid=plan.server_pgid,
                        timeout=args.drain_timeout,
                    )
                print(json.dumps(drain_line), flush=True)
        found = check_database(
            url, acknowledged=totals["acknowledged"], uncertain=totals["uncertain"]
        )
        if drain_line is not None:
            found["problems"] += drain_problems(
                drain_line, queued=totals["queued"], uncertain=totals["uncertain"]
            )
    log(f"{args.db}: {json.dumps(found)}; {time.perf_counter() - started:.0f}s in all")
    return 1 if found["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
