"""Payout batches and coupon redemptions: the services against plain SQL on the same database.

The script prepares a fresh database (a temporary SQLite file, or the PostgreSQL database
``parrain_bench_payouts``, created for the run and dropped afterwards), migrates it and seeds
a live campaign (one friend wins 20.00 GBP cash and a 30.00 GBP coupon, no holding period)
and ``--items`` members who each won it through the services: enrolled, their friend's
signup applied by ``referrals.events`` in batches of 1,000, the prize posted by
``referrals.progress.release_due_rewards`` (which issues the coupon). Seeding is not timed.
Then, one JSON line per mode::

    python benchmarks/payouts.py --db sqlite
    python benchmarks/payouts.py --db postgresql

* ``batch``: ``parrain fake-paypal`` runs as a separate process (its CPU is not ours), every
  ``--fail-every``-th receiver set to end FAILED; in this process the worker's
  ``run_round`` prepares (every member's cash into batches of up to 15,000 items: pending
  holds cash payable → payout clearing), submits, polls until every item is final and
  settles (posts or voids each item), round after round until nothing is in flight. Items/s
  per phase and overall; the share of wall time waiting on HTTP (each request through the
  PayPal client's transport, from sending to the last byte of the answer) against the rest
  (ours), and within ours the database's share (time inside the driver's execute and commit
  calls). ``ratio`` compares prepare + settle with the same rows written with plain SQL
  (``RawPayouts``): our prepare+settle items/s ÷ raw items/s.
* ``coupons``: distinct coupons redeemed through ``coupons.service.redeem``, one redemption
  per ``Database.run`` transaction as the API does, single-threaded and with ``--threads``
  (8) threads; the raw side makes the same row changes with plain SQL, one transaction per
  redemption, in slices that alternate with the service's (order flipped every round).
  Redemptions/s and ``ratio`` (service ÷ raw, the median of the paired slices) for both
  thread counts.

There is no numeric target for these figures (issue 5 asks for the measurements only).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import hashlib
import json
import os
import pstats
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
from pydantic import SecretStr, TypeAdapter
from sqlalchemy import func, select
from sqlalchemy.orm import Session

import _support
from parrain.campaigns import service as campaigns
from parrain.campaigns.schemas import CampaignCreate, CampaignRead, FundingCreate
from parrain.config import CryptoSettings, DatabaseSettings, LogSettings, PayoutSettings
from parrain.consent import service as consent
from parrain.coupons import service as coupons
from parrain.coupons.models import Coupon as CouponRow
from parrain.coupons.schemas import RedemptionCreate
from parrain.db import session as db_session
from parrain.db.migrate import upgrade
from parrain.db.session import Database
from parrain.kit.clock import SystemClock
from parrain.kit.ids import derived_id, new_id
from parrain.ledger import service as ledger
from parrain.ledger.models import LedgerTransfer
from parrain.ledger.schemas import AccountCreate
from parrain.logging import configure_logging
from parrain.members.schemas import MemberCreate
from parrain.members.service import MemberKeys
from parrain.payouts import repository as payouts_repository
from parrain.payouts import service as payouts
from parrain.payouts.models import PayoutBatch
from parrain.payouts.providers.fake import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET
from parrain.payouts.providers.paypal import PayPalClient
from parrain.payouts.providers.paypal_wire import MAX_BATCH_ITEMS
from parrain.payouts.worker import run_round
from parrain.referrals import events, progress
from parrain.referrals import service as referrals
from parrain.referrals.codes import SponsorshipCode
from parrain.referrals.schemas import EnrolmentCreate, Event

DEFAULT_POSTGRES = "postgresql+psycopg://root@127.0.0.1:5432/parrain_bench_payouts"
MODES = ("batch", "coupons")
MARKET, CURRENCY = "GB", "GBP"
CASH, COUPON = 2000, 3000  # the prize's parts, minor units
ORDER_AMOUNT = 5000  # an order worth more than the coupon: the whole coupon is used
ACTOR = "operator:bench"
LINK_BASE = "http://127.0.0.1"
EVENT = TypeAdapter[Any](Event)

_ENROL_CHUNK, _EVENT_CHUNK, _RELEASE_CHUNK = 500, 1000, 500


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- seeding


@dataclass
class Seeded:
    campaign: CampaignRead
    #: in every name and event id, so that a kept database (``--database-url``) can be reused
    run: str = field(default_factory=lambda: new_id().hex[-8:])
    winners: int = 0
    #: members whose receiver the fake fails (every ``fail_every``-th winner)
    failing: set[UUID] = field(default_factory=set)


def launch_campaign(database: Database, clock: SystemClock) -> CampaignRead:
    def work(session: Session) -> CampaignRead:
        created = campaigns.create(
            session=session,
            campaign_in=CampaignCreate(
                name=f"Cash Rewards payouts bench {new_id().hex[-8:]}",
                market=MARKET,
                currency=CURRENCY,
                languages=["en"],
                starts_at=clock.now() - timedelta(hours=1),
                ends_at=clock.now() + timedelta(days=60),
                friends_needed=1,
                reward_cash_minor=CASH,
                reward_coupon_minor=COUPON,
                holding_days=0,
            ),
            actor=ACTOR,
            clock=clock,
        )
        campaigns.fund(
            session=session,
            campaign_id=created.id,
            funding_in=FundingCreate(amount_minor=10**12, currency=CURRENCY),
            actor=ACTOR,
            clock=clock,
        )
        consent.declare_programme_defaults(
            session=session,
            campaign_id=created.id,
            controller="Bench Marketplace Ltd",
            actor=ACTOR,
            clock=clock,
        )
        return campaigns.launch(session=session, campaign_id=created.id, actor=ACTOR, clock=clock)

    return database.run(work)


def _apply(session: Session, *, batch: events.PreparedBatch, clock: SystemClock) -> list[Any]:
    return list(events.apply_batch(session=session, batch=batch, clock=clock))


def seed_winners(
    database: Database,
    seeded: Seeded,
    count: int,
    *,
    keys: MemberKeys,
    clock: SystemClock,
    fail_every: int,
) -> None:
    """``count`` more members who each won the prize (posted: cash payable, coupon issued),
    each with a PayPal receiver; every ``fail_every``-th one the fake will fail."""
    started = time.perf_counter()
    first = seeded.winners
    numbers = range(first, first + count)
    codes: list[str] = []
    for start in range(0, count, _ENROL_CHUNK):
        chunk = numbers[start : start + _ENROL_CHUNK]

        def enrol(session: Session, chunk: range = chunk) -> list[tuple[UUID, str]]:
            out = []
            for number in chunk:
                failing = fail_every > 0 and number % fail_every == fail_every - 1
                prefix = "fail" if failing else "pay"  # the fake fails receivers "fail…"
                member = MemberCreate.model_validate(
                    {
                        "market": MARKET,
                        "marketplace_user_id": f"bench-{seeded.run}-member-{number}",
                        "email": f"member{number}.{seeded.run}@example.org",
                        "username": f"member{number}",
                        "paypal_receiver": f"{prefix}{number}.{seeded.run}@pay.example",
                    }
                )
                enrolment = referrals.enrol(
                    session=session,
                    campaign_id=seeded.campaign.id,
                    enrolment_in=EnrolmentCreate(member=member),
                    keys=keys,
                    clock=clock,
                    link_base_url=LINK_BASE,
                )
                if failing:
                    seeded.failing.add(enrolment.member_id)
                out.append((enrolment.member_id, enrolment.code))
            return out

        codes.extend(code for _, code in database.run(enrol))
    log(f"  enrolled {count} members in {time.perf_counter() - started:.0f}s")
    for start in range(0, count, _EVENT_CHUNK):
        signups = [
            EVENT.validate_python(
                {
                    "id": f"bench-{seeded.run}-signup-{number}",
                    "type": "signup",
                    "at": clock.now().isoformat(),
                    "market": MARKET,
                    "marketplace_user_id": f"bench-{seeded.run}-friend-{number}",
                    "email": f"friend{number}.{seeded.run}@example.org",
                    "username": f"friend{number}",
                    "device_id": f"bench-{seeded.run}-device-{number}",
                    "code": codes[number - first],
                }
            )
            for number in numbers[start : start + _EVENT_CHUNK]
        ]
        batch = events.prepare_batch(events=signups, keys=keys, clock=clock)
        outcomes = database.run(partial(_apply, batch=batch, clock=clock))
        refused = [o for o in outcomes if getattr(o, "status", None) != "accepted"]
        if refused:
            raise RuntimeError(f"a seeding signup was not accepted: {refused[0]}")
    log(f"  {count} friends signed up, {time.perf_counter() - started:.0f}s")
    posted = 0
    while True:
        released = database.run(
            lambda session: progress.release_due_rewards(session, clock=clock, limit=_RELEASE_CHUNK)
        )
        posted += released
        if not released:
            break
    if posted != count:
        raise RuntimeError(f"{posted} prizes posted for {count} winners")
    seeded.winners += count
    log(f"  {count} prizes posted (seeding took {time.perf_counter() - started:.0f}s)")


# --------------------------------------------------------------------------- measuring tools


class TimedTransport(httpx.BaseTransport):
    """httpx's transport, timing each request from sending it to the last byte of the
    answer (read here, so the client's JSON decoding stays on our side of the line)."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.seconds = 0.0
        self.requests = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        started = time.perf_counter()
        try:
            response = self.inner.handle_request(request)
            response.read()
            return response
        finally:
            self.seconds += time.perf_counter() - started
            self.requests += 1

    def close(self) -> None:
        self.inner.close()


class DatabaseTimer:
    """Time spent inside the driver: SQLAlchemy's execute, executemany and commit calls on
    the dialect, and the ledger's own driver cursor (``DriverCursor``). Rows fetched after a
    statement are not counted (SQLite steps a SELECT's later rows while they are fetched), so
    this is a lower bound of the database's time."""

    _DIALECT = ("do_execute", "do_executemany", "do_execute_no_params", "do_commit")
    _CURSOR = ("execute", "query", "executemany")

    def __init__(self, database: Database) -> None:
        self.dialect = database.engine.dialect
        self.seconds = 0.0
        #: statement (its first words) → [calls, seconds]
        self.statements: dict[str, list[float]] = {}
        self._saved: list[tuple[Any, str, Any]] = []
        self._inside = False  # the batch's worker runs in one thread

    def _timed(self, function: Callable[..., Any], *, sql_at: int | None) -> Callable[..., Any]:
        statements = self.statements

        def timed(*args: Any, **kwargs: Any) -> Any:
            if self._inside:  # a single-row executemany runs as execute: count it once
                return function(*args, **kwargs)
            self._inside = True
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self._inside = False
                spent = time.perf_counter() - started
                self.seconds += spent
                sql = str(args[sql_at]) if sql_at is not None else "COMMIT"
                entry = statements.setdefault(" ".join(sql.split())[:90], [0, 0.0])
                entry[0] += 1
                entry[1] += spent

        return timed

    def top(self, count: int) -> list[tuple[str, int, float]]:
        ranked = sorted(self.statements.items(), key=lambda item: -item[1][1])[:count]
        return [(sql, int(calls), round(seconds, 3)) for sql, (calls, seconds) in ranked]

    def __enter__(self) -> DatabaseTimer:
        for name in self._DIALECT:
            self._saved.append((self.dialect, name, self.dialect.__dict__.get(name)))
            sql_at = None if name == "do_commit" else 1  # (cursor, statement, ...)
            setattr(self.dialect, name, self._timed(getattr(self.dialect, name), sql_at=sql_at))
        cursor_class = db_session.DriverCursor
        for name in self._CURSOR:
            original = cursor_class.__dict__[name]
            self._saved.append((cursor_class, name, original))
            setattr(cursor_class, name, self._timed(original, sql_at=1))  # (self, sql, ...)
        return self

    def __exit__(self, *_exc: object) -> None:
        for owner, name, original in reversed(self._saved):
            if original is None:
                delattr(owner, name)
            else:
                setattr(owner, name, original)
        self._saved.clear()


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU of a running process (Linux), None where /proc is not there."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def fake_paypal(*, settle_seconds: float) -> Iterator[tuple[str, int]]:
    """``parrain fake-paypal`` in its own process on a free loopback port (it picks one and
    says which); receivers starting with ``fail`` end FAILED. Stopped however the block
    ends."""
    command = [
        sys.executable,
        "-m",
        "parrain.cli.app",
        "fake-paypal",
        "--port",
        "0",
        "--settle-seconds",
        str(settle_seconds),
        "--outcome",
        "^fail=FAILED",
    ]
    env = {**os.environ, "PARRAIN_LOG_LEVEL": "WARNING"}
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, text=True, env=env, start_new_session=True
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # "fake PayPal listening on http://127.0.0.1:PORT"
        if "listening on " not in line:
            raise RuntimeError(f"the PayPal fake did not start: {line!r}")
        yield line.rsplit(" ", 1)[1].strip(), process.pid
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


# --------------------------------------------------------------------------- batch: service


PHASES = ("prepare", "submit", "poll", "settle")
#: the phase of the interval that ends with each step the worker reports
_PHASE_OF_STEP = {
    "prepared": "prepare",
    "sent": "submit",
    "recorded": "submit",
    "polled": "poll",
    "applied": "settle",
    "waited": "waiting_for_settlement",
    "round_end": "bookkeeping",
}


@dataclass
class Mark:
    step: str
    at: float
    http: float
    db: float


def phase_totals(marks: Sequence[Mark]) -> dict[str, dict[str, float]]:
    """Wall, HTTP and database seconds per phase: each interval between two marks belongs
    to the phase of the step that ends it; a claim belongs to what follows it (a send or a
    poll)."""
    totals: dict[str, dict[str, float]] = {}
    for index in range(1, len(marks)):
        previous, mark = marks[index - 1], marks[index]
        step = mark.step
        if step == "claimed":
            following = marks[index + 1].step if index + 1 < len(marks) else "round_end"
            phase = "poll" if following == "polled" else "submit"
        else:
            phase = _PHASE_OF_STEP.get(step, "bookkeeping")
        bucket = totals.setdefault(phase, {"seconds": 0.0, "http_s": 0.0, "db_s": 0.0})
        bucket["seconds"] += mark.at - previous.at
        bucket["http_s"] += mark.http - previous.http
        bucket["db_s"] += mark.db - previous.db
    return totals


def run_batch_service(
    database: Database,
    *,
    base_url: str,
    keys: MemberKeys,
    poll_every: float,
    profile: cProfile.Profile | None,
) -> tuple[dict[str, int], list[Mark], int, list[tuple[str, int, float]]]:
    """The worker's rounds until nothing is in flight: what they did, the marks of each
    step, the HTTP requests and the statements that took the database's time."""
    clock = SystemClock()
    transport = TimedTransport()
    client = PayPalClient(
        base_url=base_url,
        client_id=DEFAULT_CLIENT_ID,
        client_secret=DEFAULT_CLIENT_SECRET,
        clock=clock,
        timeout=120.0,
        transport=transport,
    )
    settings = PayoutSettings(
        paypal_base_url=base_url,
        paypal_client_id=SecretStr(DEFAULT_CLIENT_ID),
        paypal_client_secret=SecretStr(DEFAULT_CLIENT_SECRET),
        request_timeout_seconds=120.0,
    )
    client.access_token()  # the OAuth2 token once, outside the measurement
    transport.seconds, transport.requests = 0.0, 0
    marks: list[Mark] = []
    counts = {"prepared": 0, "submitted": 0, "paid": 0, "voided": 0, "rounds": 0}
    with DatabaseTimer(database) as timer:

        def mark(step: str) -> None:
            marks.append(Mark(step, time.perf_counter(), transport.seconds, timer.seconds))

        mark("start")
        if profile is not None:
            profile.enable()
        try:
            while True:
                report = run_round(
                    database=database,
                    clock=clock,
                    client=client,
                    keys=keys,
                    settings=settings,
                    step=mark,
                )
                mark("round_end")
                counts["rounds"] += 1
                counts["prepared"] += report.prepared_items
                counts["paid"] += report.paid
                counts["voided"] += report.voided
                counts["submitted"] += report.submitted
                if report.submit_failures:
                    raise RuntimeError(f"a batch could not be sent: {report}")
                if report.in_flight_batches == 0:
                    break
                time.sleep(poll_every)
                mark("waited")
        finally:
            if profile is not None:
                profile.disable()
    client.close()
    log("  the database's time by statement (calls, seconds):")
    for sql, calls, seconds in timer.top(12):
        log(f"    {seconds:8.3f}s {calls:7d}  {sql}")
    return counts, marks, transport.requests, timer.top(5)


# --------------------------------------------------------------------------- batch: raw SQL


_TRANSFER_COLUMNS = (
    "id, kind, debit_account_id, credit_account_id, amount, currency, phase, pending_id, "
    "timeout_seconds, linked, status, expires_at, created_at"
)
_ITEM_COLUMNS = (
    "id, batch_id, member_id, currency, amount_minor, sender_item_id, status, paypal_status, "
    "payout_item_id, transaction_id, error_name, void_reason, receiver_seal_hash, created_at, "
    "settled_at"
)
_PART_COLUMNS = (
    "transfer_id, item_id, reward_part_id, open_part_id, campaign_id, cash_payable_account_id, "
    "amount_minor"
)
_BATCH_COLUMNS = (
    "id, sender_batch_id, currency, status, item_count, total_minor, payout_batch_id, "
    "paypal_status, attempts, last_error, lease_owner, lease_until, created_at, submitted_at, "
    "settled_at"
)
_OUTBOX_COLUMNS = "id, topic, payload, created_at, available_at, attempts, delivered_at, last_error"


@dataclass(frozen=True)
class Payable:
    member_id: UUID
    reward_part_id: UUID
    campaign_id: UUID
    cash_payable_account_id: UUID
    amount: int
    failing: bool


class RawSQL:
    """A raw DB-API connection of the same engine (same pragmas or server settings) and the
    value formats SQLAlchemy stores: hex ids, naive UTC text and 0/1 on SQLite; uuid,
    timestamptz and booleans on PostgreSQL."""

    def __init__(self, database: Database) -> None:
        self.fairy = database.engine.raw_connection()
        self.connection: Any = self.fairy.driver_connection
        self.sqlite = database.dialect == "sqlite"
        self.mark = "?" if self.sqlite else "%s"

    def close(self) -> None:
        self.fairy.close()

    def marks(self, count: int) -> str:
        return ", ".join([self.mark] * count)

    def key(self, value: UUID | None) -> Any:
        if value is None:
            return None
        return value.hex if self.sqlite else value

    def stamp(self, value: datetime) -> Any:
        return value.replace(tzinfo=None).isoformat(" ", "microseconds") if self.sqlite else value

    def flag(self, value: bool) -> Any:
        return int(value) if self.sqlite else value

    def begin(self, cursor: Any) -> None:
        if self.sqlite:
            cursor.execute("BEGIN IMMEDIATE")

    def move_sql(self) -> str:
        m = self.mark
        return (
            f"UPDATE ledger_accounts SET debits_pending = debits_pending + {m}, "
            f"debits_posted = debits_posted + {m}, credits_pending = credits_pending + {m}, "
            f"credits_posted = credits_posted + {m} WHERE id = {m}"
        )

    def moves(self, deltas: dict[UUID, list[int]]) -> list[tuple[Any, ...]]:
        """One balance update per account touched, in sorted id order (the ledger's)."""
        return [(*d, self.key(account)) for account, d in sorted(deltas.items())]


def _add(deltas: dict[UUID, list[int]], account: UUID, index: int, amount: int) -> None:
    deltas.setdefault(account, [0, 0, 0, 0])[index] += amount


DP, DPOSTED, CP, CPOSTED = 0, 1, 2, 3  # debits_pending, debits_posted, credits_pending, ...


class RawPayouts(RawSQL):
    """The rows ``prepare_batches`` and ``apply_batch`` write, with plain SQL; see
    docs/performance.md ("Payouts and coupons") for exactly what is left out."""

    def __init__(self, database: Database, clearing: UUID, settlement: UUID) -> None:
        super().__init__(database)
        self.clearing, self.settlement = clearing, settlement
        m = self.marks
        self.insert_transfer = (
            f"INSERT INTO ledger_transfers ({_TRANSFER_COLUMNS}) VALUES ({m(13)})"
        )
        self.insert_batch = f"INSERT INTO payout_batches ({_BATCH_COLUMNS}) VALUES ({m(15)})"
        self.insert_item = f"INSERT INTO payout_items ({_ITEM_COLUMNS}) VALUES ({m(15)})"
        self.insert_part = f"INSERT INTO payout_item_parts ({_PART_COLUMNS}) VALUES ({m(7)})"
        self.insert_outbox = f"INSERT INTO outbox_messages ({_OUTBOX_COLUMNS}) VALUES ({m(8)})"
        k = self.mark
        self.set_status = f"UPDATE ledger_transfers SET status = {k} WHERE id = {k}"
        self.settle_item = (
            f"UPDATE payout_items SET status = {k}, paypal_status = {k}, payout_item_id = {k}, "
            f"transaction_id = {k}, error_name = {k}, void_reason = {k}, settled_at = {k} "
            f"WHERE id = {k}"
        )
        self.close_parts = f"UPDATE payout_item_parts SET open_part_id = NULL WHERE item_id = {k}"
        self.settle_batch = (
            f"UPDATE payout_batches SET status = 'settled', paypal_status = 'SUCCESS', "
            f"settled_at = {k}, lease_owner = NULL, lease_until = NULL WHERE id = {k}"
        )

    def _transfer(
        self,
        transfer_id: UUID,
        kind: str,
        debit: UUID,
        credit: UUID,
        amount: int,
        phase: str,
        *,
        pending_id: UUID | None = None,
        linked: bool = False,
        status: str | None = None,
        now: Any,
    ) -> tuple[Any, ...]:
        key = self.key
        return (
            key(transfer_id),
            kind,
            key(debit),
            key(credit),
            amount,
            CURRENCY,
            phase,
            key(pending_id),
            0,
            self.flag(linked),
            status,
            None,
            now,
        )

    def prepare(self, payables: Sequence[Payable]) -> list[tuple[UUID, UUID, Payable]]:
        """One transaction, as ``prepare_batches`` for one batch: a pending hold per part,
        the balances, the batch, its items and their parts. Returns (item, hold, payable)."""
        moment = datetime.now(UTC)
        now, key = self.stamp(moment), self.key
        batch_id = new_id()
        planned = [(new_id(), new_id(), p) for p in payables]
        holds, items, parts = [], [], []
        deltas: dict[UUID, list[int]] = {}
        for item_id, hold_id, p in planned:
            holds.append(
                self._transfer(
                    hold_id,
                    "payout_hold",
                    p.cash_payable_account_id,
                    self.clearing,
                    p.amount,
                    "pending",
                    status="pending",
                    now=now,
                )
            )
            _add(deltas, p.cash_payable_account_id, DP, p.amount)
            _add(deltas, self.clearing, CP, p.amount)
            seal_hash = hashlib.sha256(p.member_id.bytes).hexdigest()  # 64 hex digits
            items.append(
                (
                    key(item_id),
                    key(batch_id),
                    key(p.member_id),
                    CURRENCY,
                    p.amount,
                    item_id.hex,
                    "pending",
                    None,
                    None,
                    None,
                    None,
                    None,
                    seal_hash,
                    now,
                    None,
                )
            )
            # A random open id: the reward part may be in the service's live item too.
            parts.append(
                (
                    key(hold_id),
                    key(item_id),
                    key(p.reward_part_id),
                    key(new_id()),
                    key(p.campaign_id),
                    key(p.cash_payable_account_id),
                    p.amount,
                )
            )
        batch = (
            key(batch_id),
            f"raw-{batch_id.hex}",
            CURRENCY,
            "prepared",
            len(items),
            sum(p.amount for p in payables),
            None,
            None,
            0,
            None,
            None,
            None,
            now,
            None,
            None,
        )
        cursor = self.connection.cursor()
        self.begin(cursor)
        cursor.executemany(self.insert_transfer, holds)
        cursor.executemany(self.move_sql(), self.moves(deltas))
        cursor.execute(self.insert_batch, batch)
        cursor.executemany(self.insert_item, items)
        cursor.executemany(self.insert_part, parts)
        self.connection.commit()
        cursor.close()
        self.batch_id = batch_id
        return planned

    def settle(self, planned: Sequence[tuple[UUID, UUID, Payable]]) -> None:
        """One transaction, as ``apply_batch`` for a batch whose items are final: per paid
        item the post of its hold (linked) and the move clearing → settlement; per failed
        item the void of its hold, its parts reopened and a message in the outbox; the
        holds' status, the balances, the items and the batch."""
        moment = datetime.now(UTC)
        now, key = self.stamp(moment), self.key
        transfers, statuses, items, reopened, messages = [], [], [], [], []
        deltas: dict[UUID, list[int]] = {}
        for number, (item_id, hold_id, p) in enumerate(planned):
            debit, amount = p.cash_payable_account_id, p.amount
            if p.failing:
                transfers.append(
                    self._transfer(
                        derived_id("void", hold_id),
                        "payout_void",
                        debit,
                        self.clearing,
                        amount,
                        "void_pending",
                        pending_id=hold_id,
                        now=now,
                    )
                )
                statuses.append(("voided", key(hold_id)))
                _add(deltas, debit, DP, -amount)
                _add(deltas, self.clearing, CP, -amount)
                status, paypal, error, reason = (
                    "voided",
                    "FAILED",
                    "RECEIVER_ACCOUNT_INVALID",
                    "failed",
                )
                reopened.append((key(item_id),))
                payload = {
                    "member_id": str(p.member_id),
                    "payout_item_id": str(item_id),
                    "status": "FAILED",
                    "currency": CURRENCY,
                }
                messages.append(
                    (
                        key(new_id()),
                        payouts.ATTENTION_TOPIC,
                        json.dumps(payload),
                        now,
                        now,
                        0,
                        None,
                        None,
                    )
                )
            else:
                transfers.append(
                    self._transfer(
                        derived_id("post", hold_id),
                        "payout_post",
                        debit,
                        self.clearing,
                        amount,
                        "post_pending",
                        pending_id=hold_id,
                        linked=True,
                        now=now,
                    )
                )
                transfers.append(
                    self._transfer(
                        derived_id("payout_settle", item_id),
                        "payout_settle",
                        self.clearing,
                        self.settlement,
                        amount,
                        "single",
                        now=now,
                    )
                )
                statuses.append(("posted", key(hold_id)))
                _add(deltas, debit, DP, -amount)
                _add(deltas, debit, DPOSTED, amount)
                _add(deltas, self.clearing, CP, -amount)
                _add(deltas, self.clearing, CPOSTED, amount)
                _add(deltas, self.clearing, DPOSTED, amount)
                _add(deltas, self.settlement, CPOSTED, amount)
                status, paypal, error, reason = "paid", "SUCCESS", None, None
            items.append(
                (
                    status,
                    paypal,
                    f"RAWI{number:08d}",
                    f"RAWT{number:012d}",
                    error,
                    reason,
                    now,
                    key(item_id),
                )
            )
        cursor = self.connection.cursor()
        self.begin(cursor)
        cursor.executemany(self.insert_transfer, transfers)
        cursor.executemany(self.set_status, statuses)
        cursor.executemany(self.move_sql(), self.moves(deltas))
        cursor.executemany(self.settle_item, items)
        if reopened:
            cursor.executemany(self.close_parts, reopened)
            cursor.executemany(self.insert_outbox, messages)
        cursor.execute(self.settle_batch, (now, key(self.batch_id)))
        self.connection.commit()
        cursor.close()


def payables(database: Database, failing: set[UUID]) -> list[Payable]:
    """What the service will pay: every posted cash part, read once (not timed)."""
    parts = database.read(payouts_repository.payable_parts)
    return [
        Payable(
            p.member_id,
            p.reward_part_id,
            p.campaign_id,
            p.cash_payable_account_id,
            p.amount_minor,
            p.member_id in failing,
        )
        for p in parts
    ]


def run_batch_raw(raw: RawPayouts, owed: Sequence[Payable], size: int) -> tuple[float, float]:
    """Prepare then settle every item in batches of ``size``; (prepare s, settle s)."""
    prepare_s = settle_s = 0.0
    for start in range(0, len(owed), size):
        started = time.perf_counter()
        planned = raw.prepare(owed[start : start + size])
        prepared = time.perf_counter()
        raw.settle(planned)
        prepare_s += prepared - started
        settle_s += time.perf_counter() - prepared
    return prepare_s, settle_s


def system_accounts(database: Database) -> tuple[UUID, UUID]:
    """The payout clearing and PayPal settlement accounts, created as the service does on
    first use (before the raw side writes to them)."""
    clock = SystemClock()

    def work(session: Session) -> tuple[UUID, UUID]:
        found = []
        for reference, kind in (
            (payouts.clearing_reference(CURRENCY), payouts.CLEARING_KIND),
            (payouts.settlement_reference(CURRENCY), payouts.SETTLEMENT_KIND),
        ):
            account = payouts.system_account(
                session=session, reference=reference, kind=kind, currency=CURRENCY, clock=clock
            )
            found.append(account.id)
        return found[0], found[1]

    return database.run(work)


def batch_mode(
    database: Database, seeded: Seeded, args: argparse.Namespace, keys: MemberKeys
) -> dict[str, Any]:
    owed = payables(database, seeded.failing)
    items = len(owed)
    if items == 0:
        raise RuntimeError("nothing to pay: the seeding left no posted cash")
    clearing, settlement = system_accounts(database)
    size = MAX_BATCH_ITEMS
    raw = RawPayouts(database, clearing, settlement)
    raw_rounds: list[tuple[float, float]] = []
    try:
        # Raw rounds before and after the service's run: a moment of load hits one of them.
        before = (args.raw_rounds + 1) // 2
        for _ in range(before):
            raw_rounds.append(run_batch_raw(raw, owed, size))
        log(f"  raw rounds before: {[round(a + b, 2) for a, b in raw_rounds]} s")
        profile = cProfile.Profile() if args.profile else None
        with fake_paypal(settle_seconds=args.settle_seconds) as (base_url, fake_pid):
            fake_cpu_before = process_cpu_seconds(fake_pid)
            counts, marks, requests, top_statements = run_batch_service(
                database,
                base_url=base_url,
                keys=keys,
                poll_every=max(0.2, args.settle_seconds / 4),
                profile=profile,
            )
            fake_cpu_after = process_cpu_seconds(fake_pid)
        for _ in range(args.raw_rounds - before):
            raw_rounds.append(run_batch_raw(raw, owed, size))
    finally:
        raw.close()
    if profile is not None:
        profile.dump_stats(args.profile)
        stats = pstats.Stats(profile, stream=sys.stderr)
        stats.sort_stats("cumulative").print_stats(35)
        log(f"  profile written to {args.profile}")
    check_batch(database, counts, items, len(seeded.failing & {p.member_id for p in owed}))

    totals = phase_totals(marks)
    wall = marks[-1].at - marks[0].at
    http = marks[-1].http - marks[0].http
    db = marks[-1].db - marks[0].db
    phases = {}
    for name in PHASES:
        bucket = totals.get(name, {"seconds": 0.0, "http_s": 0.0, "db_s": 0.0})
        seconds = bucket["seconds"]
        phases[name] = {
            "seconds": round(seconds, 3),
            "items_per_s": round(items / seconds, 1) if seconds else None,
            "http_s": round(bucket["http_s"], 3),
            "db_s": round(bucket["db_s"], 3),
        }
    for name in ("waiting_for_settlement", "bookkeeping"):
        if name in totals:
            phases[name] = {"seconds": round(totals[name]["seconds"], 3)}
    service_s = totals["prepare"]["seconds"] + totals["settle"]["seconds"]
    raw_totals = [a + b for a, b in raw_rounds]
    raw_s = statistics.median(raw_totals)
    fake_cpu = (
        round(fake_cpu_after - fake_cpu_before, 2)
        if fake_cpu_before is not None and fake_cpu_after is not None
        else None
    )
    return {
        "mode": "batch",
        "items": items,
        "failed_items": counts["voided"],
        "batches": counts["submitted"],
        "rounds": counts["rounds"],
        "http_requests": requests,
        "settle_seconds": args.settle_seconds,
        "wall_s": round(wall, 3),
        "items_per_s": round(items / wall, 1),
        "phases": phases,
        "http_wait_share": round(http / wall, 3),
        "our_share": round(1 - http / wall, 3),
        "database_share": round(db / wall, 3),
        "python_share": round(1 - (http + db) / wall, 3),
        "fake_cpu_s": fake_cpu,
        "service_prepare_settle_per_s": round(items / service_s, 1),
        "raw_prepare_settle_per_s": round(items / raw_s, 1),
        "raw_rounds_s": [round(s, 3) for s in raw_totals],
        "raw_prepare_s": round(statistics.median(a for a, _ in raw_rounds), 3),
        "raw_settle_s": round(statistics.median(b for _, b in raw_rounds), 3),
        "ratio": round(raw_s / service_s, 3),
        "target": None,
        "top_statements": top_statements,
        "profiled": profile is not None,
    }


def check_batch(database: Database, counts: dict[str, int], items: int, failing: int) -> None:
    """Every item prepared once and final: the failing receivers voided, the rest paid,
    and the books balance (raw rows included)."""
    problems = []
    if counts["prepared"] != items:
        problems.append(f"{counts['prepared']} items prepared, {items} owed")
    if counts["voided"] != failing or counts["paid"] != items - failing:
        problems.append(f"{counts['paid']} paid and {counts['voided']} voided of {items}")
    problems += database.read(lambda s: ledger.find_discrepancies(session=s))
    if problems:
        raise RuntimeError("the batch run is wrong: " + "; ".join(problems[:10]))


# --------------------------------------------------------------------------- coupons


@dataclass(frozen=True)
class Coupon:
    id: UUID
    code: str  # as people type it (the display form)


class CouponPool:
    """Issued coupons, each handed out once, to whichever side and thread asks."""

    def __init__(self, coupons_in: Sequence[Coupon]) -> None:
        self._iterator = iter(coupons_in)
        self._lock = threading.Lock()
        self.handed = 0

    def take(self) -> Coupon:
        with self._lock:
            coupon = next(self._iterator, None)
            if coupon is None:
                raise RuntimeError("the coupon pool ran dry: seed more (--coupons)")
            self.handed += 1
            return coupon


def issued_coupons(database: Database, campaign_id: UUID) -> list[Coupon]:
    """The campaign's issued coupons (read once, not timed)."""
    with database.engine.connect() as connection:
        rows = connection.execute(
            select(CouponRow.id, CouponRow.code)
            .where(CouponRow.campaign_id == campaign_id, CouponRow.status == "issued")
            .order_by(CouponRow.id)
        ).all()
    return [
        Coupon(
            row[0] if isinstance(row[0], UUID) else UUID(row[0]), SponsorshipCode(row[1]).display
        )
        for row in rows
    ]


class ServiceRedeemer:
    def __init__(self, database: Database) -> None:
        self.database = database
        self.clock = SystemClock()
        self.orders = 0
        self._lock = threading.Lock()

    def redeem(self, coupon: Coupon) -> None:
        with self._lock:
            self.orders += 1
            order = f"bench-order-service-{self.orders}"
        redemption_in = RedemptionCreate(
            order_id=order, order_amount_minor=ORDER_AMOUNT, currency=CURRENCY
        )
        self.database.run(
            lambda session: coupons.redeem(
                session=session, code=coupon.code, redemption_in=redemption_in, clock=self.clock
            )
        )

    def close(self) -> None:
        return None


class RawRedeemer:
    """Per redemption one transaction with plain SQL: the coupon marked redeemed (found by
    its code, still issued), one ``coupon_redeemed`` transfer liability → redemptions, both
    balances. One raw connection per thread; on SQLite, writers take turns on a lock of this
    process (SQLite has one writer; its busy handler would sleep)."""

    def __init__(self, database: Database, liability: UUID, redemptions: UUID) -> None:
        self.database = database
        self.liability, self.redemptions = liability, redemptions
        self.sqlite = database.dialect == "sqlite"
        self._local = threading.local()
        self._all: list[RawSQL] = []
        self._lock = threading.Lock()
        self._writer = threading.Lock()
        self._generation = 0
        self.orders = 0

    def _raw(self) -> RawSQL:
        """This thread's connection, opened on its first redemption of the slice."""
        if getattr(self._local, "generation", None) != self._generation:
            raw = RawSQL(self.database)
            with self._lock:
                self._all.append(raw)
            self._local.raw, self._local.generation = raw, self._generation
        return self._local.raw  # type: ignore[no-any-return]

    def redeem(self, coupon: Coupon) -> None:
        raw = self._raw()
        with self._lock:
            self.orders += 1
            order = f"bench-order-raw-{self.orders}"
        m, key = raw.mark, raw.key
        now = raw.stamp(datetime.now(UTC))
        canonical = coupon.code.replace("-", "")
        transfer = (
            key(derived_id("coupon_redeem", coupon.id)),
            "coupon_redeemed",
            key(self.liability),
            key(self.redemptions),
            COUPON,
            CURRENCY,
            "single",
            None,
            0,
            raw.flag(False),
            None,
            None,
            now,
        )
        moves = raw.moves({self.liability: [0, COUPON, 0, 0], self.redemptions: [0, 0, 0, COUPON]})
        with self._writer if self.sqlite else contextlib.nullcontext():
            cursor = raw.connection.cursor()
            raw.begin(cursor)
            cursor.execute(
                f"UPDATE coupons SET status = 'redeemed', order_id = {m}, "
                f"order_amount_minor = {m}, settled_at = {m} "
                f"WHERE code = {m} AND status = 'issued'",
                (order, ORDER_AMOUNT, now, canonical),
            )
            if cursor.rowcount != 1:
                raw.connection.rollback()
                raise RuntimeError(f"raw redemption found no issued coupon {coupon.code}")
            cursor.execute(
                f"INSERT INTO ledger_transfers ({_TRANSFER_COLUMNS}) VALUES ({raw.marks(13)})",
                transfer,
            )
            cursor.executemany(raw.move_sql(), moves)
            raw.connection.commit()
            cursor.close()

    def close(self) -> None:
        """Give the slice's connections back (the service's threads need the pool's)."""
        with self._lock:
            for raw in self._all:
                raw.close()
            self._all.clear()
            self._generation += 1


def redeem_slice(
    redeem: Callable[[Coupon], None],
    pool: CouponPool,
    *,
    threads: int,
    count: int,
    seconds: float,
) -> float:
    """Redemptions/s of ``threads`` threads redeeming distinct coupons until ``count`` are
    done or ``seconds`` have passed."""
    done = [0]
    lock = threading.Lock()
    failures: list[BaseException] = []
    started = time.perf_counter()
    deadline = started + seconds

    def worker() -> None:
        try:
            while time.perf_counter() < deadline:
                with lock:
                    if done[0] >= count:
                        return
                    done[0] += 1
                redeem(pool.take())
        except BaseException as error:  # reported by the main thread
            failures.append(error)

    if threads == 1:
        worker()
    else:
        workers = [threading.Thread(target=worker) for _ in range(threads)]
        for thread in workers:
            thread.start()
        for thread in workers:
            thread.join()
    elapsed = time.perf_counter() - started
    if failures:
        raise failures[0]
    return done[0] / elapsed


def measured_slice(side: Any, pool: CouponPool, **kwargs: Any) -> float:
    try:
        return redeem_slice(side.redeem, pool, **kwargs)
    finally:
        side.close()


def coupon_accounts(database: Database, campaign: CampaignRead) -> tuple[UUID, UUID]:
    """The campaign's coupon liability and the redemptions account (created as the service
    does on a first redemption)."""
    clock = SystemClock()
    reference = coupons.redemptions_account_reference(CURRENCY)

    def work(session: Session) -> UUID:
        account = ledger.find_account(session=session, reference=reference)
        if account is None:
            account = ledger.create_account(
                session=session,
                account_in=AccountCreate(
                    currency=CURRENCY, kind="coupon_redemptions", reference=reference
                ),
                clock=clock,
            )
        return account.id

    return campaign.accounts.coupon_liability, database.run(work)


def coupons_needed(args: argparse.Namespace) -> int:
    """Two sides, two thread counts, each its warm-up and its rounds' slices."""
    per_side: int = args.rounds * args.redemptions + args.warmup
    return 2 * 2 * per_side


def coupons_mode(database: Database, seeded: Seeded, args: argparse.Namespace) -> dict[str, Any]:
    pool = CouponPool(issued_coupons(database, seeded.campaign.id))
    liability, redemptions = coupon_accounts(database, seeded.campaign)
    sides: dict[str, Any] = {
        "service": ServiceRedeemer(database),
        "raw": RawRedeemer(database, liability, redemptions),
    }
    out: dict[str, Any] = {"mode": "coupons"}
    for threads in (1, args.threads):
        for side in sides.values():
            measured_slice(side, pool, threads=threads, count=args.warmup, seconds=60)
        per_s: dict[str, list[float]] = {"service": [], "raw": []}
        for index in range(args.rounds):
            order = ("service", "raw") if index % 2 == 0 else ("raw", "service")
            for name in order:
                per_s[name].append(
                    measured_slice(
                        sides[name],
                        pool,
                        threads=threads,
                        count=args.redemptions,
                        seconds=args.seconds,
                    )
                )
        ratios = [s / r for s, r in zip(per_s["service"], per_s["raw"], strict=True)]
        label = "single" if threads == 1 else f"threads_{threads}"
        out[label] = {
            "threads": threads,
            "service_per_s": round(statistics.median(per_s["service"]), 1),
            "raw_per_s": round(statistics.median(per_s["raw"]), 1),
            "ratio": round(statistics.median(ratios), 3),
            "ratios": [round(r, 3) for r in ratios],
        }
        log(f"  coupons, {threads} thread(s): {out[label]}")
    check_coupons(
        database, seeded.campaign.id, liability, sides["service"].orders + sides["raw"].orders
    )
    out.update(
        redeemed=sides["service"].orders + sides["raw"].orders,
        redemptions_per_slice=args.redemptions,
        seconds_per_slice=args.seconds,
        target=None,
    )
    return out


def check_coupons(database: Database, campaign_id: UUID, liability: UUID, redeemed: int) -> None:
    """Each coupon handed out was redeemed once, with its transfer; the books balance."""
    with database.engine.connect() as connection:
        coupons_redeemed = connection.execute(
            select(func.count())
            .select_from(CouponRow)
            .where(CouponRow.campaign_id == campaign_id, CouponRow.status == "redeemed")
        ).scalar_one()
        transfers = connection.execute(
            select(func.count())
            .select_from(LedgerTransfer)
            .where(
                LedgerTransfer.kind == "coupon_redeemed",
                LedgerTransfer.debit_account_id == liability,
            )
        ).scalar_one()
    problems = database.read(lambda s: ledger.find_discrepancies(session=s))
    if coupons_redeemed != redeemed or transfers != redeemed:
        problems.append(f"{coupons_redeemed} coupons and {transfers} transfers for {redeemed}")
    if problems:
        raise RuntimeError("the coupon run is wrong: " + "; ".join(problems[:10]))


# --------------------------------------------------------------------------- main


def payout_batches(database: Database) -> int:
    with database.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(PayoutBatch)).scalar_one())


def durability(database: Database) -> dict[str, Any]:
    names = (
        ("journal_mode", "synchronous", "busy_timeout")
        if database.dialect == "sqlite"
        else ("synchronous_commit", "fsync", "server_version")
    )
    command = "PRAGMA" if database.dialect == "sqlite" else "SHOW"
    with database.engine.connect() as connection:
        return {n: connection.exec_driver_sql(f"{command} {n}").scalar() for n in names}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql"), required=True)
    parser.add_argument(
        "--database-url",
        help="use this database instead of a fresh one (it is migrated; rows are left behind)",
    )
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument(
        "--items", type=int, default=15_000, help="members paid in the batch mode (15,000)"
    )
    parser.add_argument(
        "--fail-every",
        type=int,
        default=50,
        help="every Nth receiver ends FAILED at the fake (0: none; default 50, i.e. 2%%)",
    )
    parser.add_argument(
        "--settle-seconds",
        type=float,
        default=0.0,
        help="how long the fake keeps items PENDING (default 0: final at the first poll)",
    )
    parser.add_argument("--raw-rounds", type=int, default=3, help="raw batch runs (median)")
    parser.add_argument("--profile", help="write a cProfile of the batch's service run here")
    parser.add_argument("--threads", type=int, default=8, help="threads of the second slice")
    parser.add_argument("--rounds", type=int, default=3, help="service/raw coupon pairs")
    parser.add_argument(
        "--redemptions", type=int, default=500, help="coupons redeemed per slice at most"
    )
    parser.add_argument(
        "--seconds", type=float, default=3.0, help="length of a coupon slice at most"
    )
    parser.add_argument("--warmup", type=int, default=20, help="redemptions per side unmeasured")
    args = parser.parse_args(argv)
    if args.items < 1 or args.threads < 2 or args.rounds < 1 or args.raw_rounds < 1:
        parser.error("--items, --rounds and --raw-rounds are at least 1, --threads at least 2")

    configure_logging(LogSettings(level="WARNING"))
    keys = MemberKeys.from_settings(CryptoSettings(allow_development_keys=True))
    clock = SystemClock()
    with _support.fresh_database(
        args.db, args.database_url, postgres=DEFAULT_POSTGRES, stem="payouts"
    ) as url:
        database = Database(DatabaseSettings(url=url))
        try:
            if database.dialect != args.db:
                parser.error(f"--database-url is a {database.dialect} URL, not {args.db}")
            upgrade(database.engine)
            settings = durability(database)
            log(f"{args.db}: {settings}; load average {os.getloadavg()[0]:.2f}")
            if "batch" in args.modes and payout_batches(database):
                # A fresh fake numbers its batches from 1: they would clash with these.
                parser.error("the batch mode needs a database without payout batches")
            seeded = Seeded(campaign=launch_campaign(database, clock))
            if "batch" in args.modes:
                seed_winners(
                    database, seeded, args.items, keys=keys, clock=clock, fail_every=args.fail_every
                )
                started = time.perf_counter()
                line = batch_mode(database, seeded, args, keys)
                print(json.dumps({**line, "db": args.db, "settings": settings}), flush=True)
                log(f"  batch done in {time.perf_counter() - started:.1f}s")
            if "coupons" in args.modes:
                missing = coupons_needed(args) - len(issued_coupons(database, seeded.campaign.id))
                if missing > 0:
                    seed_winners(database, seeded, missing, keys=keys, clock=clock, fail_every=0)
                started = time.perf_counter()
                line = coupons_mode(database, seeded, args)
                print(json.dumps({**line, "db": args.db, "settings": settings}), flush=True)
                log(f"  coupons done in {time.perf_counter() - started:.1f}s")
            log(f"load average {os.getloadavg()[0]:.2f}")
        finally:
            database.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
