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

Modes (``--modes`` picks some; they run in this order, on one growing database):

* ``trivial``: ``GET /health/live`` (no database) as fast as the connections go:
  requests/s, p50 and p99 latency;
* ``single``: ``POST /v1/events`` with one event per request, as fast as the connections
  go: events/s, p50/p99 and the ratio to ``trivial``'s requests/s (target ≥ 0.3);
* ``single_paced``: single events on an open-loop schedule of ``--rate`` requests/s
  (default 500); each latency is measured from the *scheduled* send time, so a stall that
  delays later requests counts against them (no coordinated omission). Target: p99 < 50 ms;
* ``batch``: ``POST /v1/events`` with ``{"events": [...]}`` of ``--batch-size`` (1,000)
  events: events/s and p50/p99 per batch (target ≥ 5,000 events/s).

The events are what a marketplace sends: per friend an ``install`` (half with the deferred
deep-link token of a link click recorded while seeding, the others with the sponsorship code
typed), later the ``signup`` of that device, and for a third of them a completed ``order``.
Friends are spread over the members five by five, so every fifth signup of a member wins a
prize: the reward path (ledger holds on the campaign budget, the hot row) runs throughout.
Every response is checked (status 200 and, for events, one outcome per event with its id)
and counted; errors are reported per mode and fail its target. After the run the database
must hold exactly the events acknowledged, and the ledger must balance.
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
MODES = ("trivial", "single", "single_paced", "batch")
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
    """What the run left: events stored against those acknowledged, prizes, the ledger."""
    from parrain.config import DatabaseSettings
    from parrain.db.session import Database
    from parrain.ledger import service as ledger

    database = Database(DatabaseSettings(url=url))
    try:
        with database.engine.connect() as connection:

            def count(sql: str) -> int:
                return int(connection.exec_driver_sql(sql).scalar() or 0)

            stored = count("SELECT count(*) FROM referral_events")
            found: dict[str, Any] = {
                "events_stored": stored,
                "events_acknowledged": acknowledged,
                "events_uncertain": uncertain,
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


@contextmanager
def api_server(url: str, *, port: int, workers: int) -> Iterator[str]:
    """uvicorn with ``workers`` processes on loopback; stopped (SIGTERM, then SIGKILL of
    its own process group) however the block ends."""
    env = {
        **os.environ,
        "PARRAIN_DATABASE_URL": url,
        "PARRAIN_CRYPTO_ALLOW_DEVELOPMENT_KEYS": "true",
        "PARRAIN_LOG_LEVEL": "WARNING",
    }
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
        self.target = _load.Target.from_url(
            plan.base_url, headers={"Authorization": f"Bearer {plan.api_key}"}
        )
        self.trivial_request = self.target.get("/health/live")
        self.acknowledged = 0  # warm-ups included: what the database must hold
        self.uncertain = 0
        #: CPU seconds of this process and of the server during the last measured run.
        self.measured_cpu: tuple[float, float | None] = (0.0, None)

    def _measured(self, work: Any) -> _load.Run:
        client = time.process_time()
        server = server_cpu_seconds(self.plan)
        run: _load.Run = work()
        server_after = server_cpu_seconds(self.plan)
        self.measured_cpu = (
            time.process_time() - client,
            None if server is None or server_after is None else server_after - server,
        )
        return run

    def next_body(self, kind: str) -> dict[str, Any]:
        if kind == "batch":
            return {"events": self.stream.take(self.plan.batch_size)}
        return self.stream.next()

    def _maker(self, kind: str, sent: dict[int, list[dict[str, Any]]]) -> Any:
        """``make(i)`` for :mod:`_load`: the next request of ``kind``; the events request
        ``i`` carries are kept in ``sent[i]`` for the check of its answer."""
        if kind == "trivial":
            request = self.trivial_request
            return lambda index: request

        def make(index: int) -> bytes:
            body = self.next_body(kind)
            sent[index] = body["events"] if kind == "batch" else [body]
            return self.target.post_json("/v1/events", body)

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
        result: _load.Result, tally: Tally, sent: list[dict[str, Any]], *, batch: bool
    ) -> None:
        response = result.response
        if response is None:
            kind, _, detail = (result.error or "error").partition(":")
            tally.error(kind, detail.strip(), events=len(sent))
            return
        if response.status != 200:
            tally.error(f"http_{response.status}", response.text, events=len(sent))
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
        for event, outcome in zip(sent, results, strict=True):
            status = outcome.get("status")
            if status == "accepted":
                tally.outcomes[f"{event['type']}:accepted"] += 1
            elif status == "ignored":
                tally.outcomes[f"{event['type']}:ignored:{outcome.get('reason')}"] += 1
            else:
                tally.outcomes[f"{event['type']}:refused:{outcome.get('code')}"] += 1
                tally.error("refused", json.dumps(outcome))
                continue
            tally.acknowledged += 1
        tally.events += len(sent)
        tally.latencies.append(result.latency)

    def _tally(self, kind: str, run: _load.Run, sent: dict[int, list[dict[str, Any]]]) -> Tally:
        tally = Tally(unsent=run.unsent)
        for result in sorted(run.results, key=lambda result: result.index):
            if kind == "trivial":
                self.trivial(result, tally)
            else:
                self.events(result, tally, sent.pop(result.index), batch=kind == "batch")
            tally.lags.append(result.lag)
            tally.requests += 1
        if sent:  # every request made must have an answer or an error
            tally.error("unanswered", f"{len(sent)} requests", events=sum(map(len, sent.values())))
        self.acknowledged += tally.acknowledged
        self.uncertain += tally.uncertain
        return tally

    # Closed loop: each connection sends its next request when the last one is answered.

    def closed_loop(self, kind: str, seconds: float, connections: int) -> tuple[Tally, float]:
        if self.plan.warmup > 0 and kind != "batch":  # a batch is long enough as it is
            sent: dict[int, list[dict[str, Any]]] = {}
            run = _load.closed_loop(
                self.target,
                self._maker(kind, sent),
                connections=connections,
                seconds=self.plan.warmup,
                timeout=REQUEST_TIMEOUT,
            )
            self._tally(kind, run, sent)
        sent = {}
        run = self._measured(
            lambda: _load.closed_loop(
                self.target,
                self._maker(kind, sent),
                connections=connections,
                seconds=seconds,
                timeout=REQUEST_TIMEOUT,
            )
        )
        return self._tally(kind, run, sent), run.elapsed

    # Open loop: request i is due at start + i / rate, whatever happened to the others; a
    # request that waited for a free connection counts its wait.

    def open_loop(self, seconds: float, rate: float, connections: int) -> tuple[Tally, float]:
        """Requests the server could not take by ``seconds`` + :data:`PACED_GRACE` after the
        start are not sent at all: they are counted in ``unsent`` and fail the target."""
        sent: dict[int, list[dict[str, Any]]] = {}
        run = self._measured(
            lambda: _load.open_loop(
                self.target,
                self._maker("single", sent),
                rate=rate,
                seconds=seconds,
                max_in_flight=connections,
                grace=PACED_GRACE,
                timeout=REQUEST_TIMEOUT,
            )
        )
        return self._tally("single", run, sent), run.elapsed


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
        cpu = time.process_time()
        if mode == "single_paced":
            tally, elapsed = client.open_loop(plan.seconds, plan.rate, plan.paced_connections)
        else:
            connections = plan.batch_connections if mode == "batch" else plan.connections
            tally, elapsed = client.closed_loop(mode, plan.seconds, connections)
        line = line_of(tally, mode, plan, elapsed, time.process_time() - cpu)
        client_cpu, server_cpu = client.measured_cpu
        add_cpu_per_request(line, tally, client=client_cpu, server=server_cpu, elapsed=elapsed)
        errors = line["errors"]
        if mode == "trivial":
            trivial_per_s = len(tally.latencies) / elapsed
            line["connections"] = plan.connections
            line["requests_per_s"] = round(trivial_per_s, 1)
            line["target"] = None
            line["met"] = None
        elif mode == "single":
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
        elif mode == "single_paced":
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
        if mode != "trivial":
            line["outcomes"] = dict(sorted(tally.outcomes.items()))
        if errors:
            line["error_kinds"] = dict(tally.errors)
            line["error_samples"] = tally.error_samples
        print(json.dumps(line), flush=True)
    print(
        json.dumps(
            {"mode": "_totals", "acknowledged": client.acknowledged, "uncertain": client.uncertain}
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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql"), required=True)
    parser.add_argument(
        "--database-url",
        help="use this database instead of a fresh one (it is migrated; rows are left behind)",
    )
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--seconds", type=float, default=20.0, help="measured length of a mode")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured lead-in per mode")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--connections", type=int, default=16, help="trivial and single")
    parser.add_argument("--batch-connections", type=int, default=2)
    parser.add_argument(
        "--paced-connections", type=int, default=64, help="single_paced: most requests in flight"
    )
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=500.0, help="single_paced requests/s")
    parser.add_argument("--members", type=int, default=2000, help="members enrolled")
    parser.add_argument("--clicks", type=int, default=5000, help="link clicks seeded")
    parser.add_argument("--seed", type=int, default=20_261_130)
    args = parser.parse_args(argv)

    run_id = f"{random.Random().getrandbits(32):08x}"
    started = time.perf_counter()
    with fresh_database(args.db, args.database_url) as url:
        migrate(url, args.db)
        api_key, codes, tokens = seed(url, members=args.members, clicks=args.clicks, run_id=run_id)
        log(
            f"{args.db}: seeded {len(codes)} members, {len(tokens)} clicks in "
            f"{time.perf_counter() - started:.0f}s; starting {args.workers} workers"
        )
        with (
            tempfile.TemporaryDirectory(prefix="parrain-bench-plan-") as directory,
            api_server(url, port=free_port(), workers=args.workers) as base_url,
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
                server_pgid=SERVER_PGIDS.get(base_url),
            )
            plan_path = Path(directory) / "plan.json"
            plan_path.write_text(json.dumps(asdict(plan)), encoding="utf-8")
            budget = len(args.modes) * (args.seconds + args.warmup) + 2 * REQUEST_TIMEOUT
            lines = run_client(plan_path, timeout=budget)
        totals = lines[-1]
        found = check_database(
            url, acknowledged=totals["acknowledged"], uncertain=totals["uncertain"]
        )
    log(f"{args.db}: {json.dumps(found)}; {time.perf_counter() - started:.0f}s in all")
    return 1 if found["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
