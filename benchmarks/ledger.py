"""Ledger throughput: the ledger service against plain SQL on the same database.

One process, one run: for each mode the script writes transfers through
``parrain.ledger.service`` inside ``Database.run`` transactions, and the same rows with plain
SQL through the DB driver (a raw connection of the same engine, so the same SQLite pragmas or
the same PostgreSQL server settings). Service and raw slices alternate, their order flips
every round, and each figure is the median over the rounds. Prints one JSON line per mode::

    python benchmarks/ledger.py --db sqlite
    python benchmarks/ledger.py --db postgresql   # creates and drops the database parrain_bench

Modes (``--modes`` picks some):

* ``single``: one transfer per transaction between a few hundred accounts;
* ``single_hot``: the same, but every transfer debits one budget account (the hot row);
* ``batch``: 100 transfers per transaction through one ``create_transfers`` call;
* ``batch_hot``: the same, every transfer debiting the budget account;
* ``batch_calls``: 100 ``create_transfer`` calls in one transaction, against 100 separate
  INSERT + 2 UPDATE sequences in one transaction.

The raw side writes what the service writes: per transfer one row in ``ledger_transfers``
(same columns, same stored formats) and the balance updates of both accounts (``x = x + d``
in the database, accounts in sorted id order). Where the service gets a whole batch, the raw
side also gets its best plain-SQL form: one executemany of the rows and one balance update
per account touched. The raw side skips what only the service does: the locking read of the
accounts, the idempotency read of the transfer ids and the rule checks.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any
from uuid import UUID

from sqlalchemy.orm import Session

import _support
from parrain.config import DatabaseSettings
from parrain.db.migrate import upgrade
from parrain.db.session import Database
from parrain.kit.clock import SystemClock
from parrain.kit.ids import new_id
from parrain.ledger import service
from parrain.ledger.postings import Created, Phase, TransferRequest
from parrain.ledger.schemas import AccountCreate

DEFAULT_POSTGRES = "postgresql+psycopg://root@127.0.0.1:5432/parrain_bench"
CURRENCY = "EUR"
KIND = "bench"
BATCH = 100
FUNDING = 10**12  # what each limited account starts with: no transfer ever hits a limit

TARGETS = {"single": 0.7, "single_hot": 0.7, "batch": 0.5, "batch_hot": 0.5}
MODES = ("single", "single_hot", "batch", "batch_hot", "batch_calls")

Transfer = tuple[UUID, UUID, UUID, int]  # id, debit account, credit account, amount


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- workload


@dataclass
class Accounts:
    members: list[UUID]
    budget: UUID
    funded: int  # the funding transfers written at set-up


class Workload:
    """Random transfers between member accounts, or from the budget to a member (hot row).

    Both sides draw from the same generator, so id generation and drawing cost the same."""

    def __init__(self, accounts: Accounts, *, seed: int) -> None:
        self.accounts = accounts
        self.random = random.Random(seed)
        self.drawn = 0  # every transfer drawn is written by one side or the other

    def draw(self, count: int, *, hot: bool) -> list[Transfer]:
        members, pick, amount = self.accounts.members, self.random.sample, self.random.randint
        out: list[Transfer] = []
        for _ in range(count):
            if hot:
                debit, credit = self.accounts.budget, members[self.random.randrange(len(members))]
            else:
                debit, credit = pick(members, 2)
            out.append((new_id(), debit, credit, amount(1, 10_000)))
        self.drawn += count
        return out


def create_accounts(database: Database, count: int) -> Accounts:
    """Member accounts (half of them may not go below zero, as member balances are) and a
    budget account that may not go below zero either; fund the limited ones generously."""
    clock = SystemClock()

    def work(session: Session) -> Accounts:
        def account(kind: str, limited: bool) -> UUID:
            account_in = AccountCreate(
                currency=CURRENCY, kind=kind, debits_must_not_exceed_credits=limited
            )
            return service.create_account(session=session, account_in=account_in, clock=clock).id

        funding = account("funding", False)
        members = [account("member", index % 2 == 0) for index in range(count)]
        budget = account("budget", True)
        requests = [
            TransferRequest(
                id=new_id(),
                kind="funding",
                debit_account_id=funding,
                credit_account_id=target,
                amount=FUNDING * (1000 if target == budget else 1),
                currency=CURRENCY,
            )
            for target in [*members, budget]
        ]
        results = service.create_transfers(session=session, transfers=requests, clock=clock)
        if not all(isinstance(r, Created) for r in results):
            raise RuntimeError(f"funding failed: {results}")
        return Accounts(members=members, budget=budget, funded=len(requests))

    return database.run(work)


# --------------------------------------------------------------------------- service side


class ServiceSide:
    """Transfers through ``parrain.ledger.service``, each transaction a ``Database.run``."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.clock = SystemClock()

    @staticmethod
    def request(transfer: Transfer) -> TransferRequest:
        transfer_id, debit, credit, amount = transfer
        return TransferRequest(
            id=transfer_id,
            kind=KIND,
            debit_account_id=debit,
            credit_account_id=credit,
            amount=amount,
            currency=CURRENCY,
        )

    def _one(self, request: TransferRequest, session: Session) -> None:
        service.create_transfer(session=session, transfer=request, clock=self.clock)

    def _many(self, requests: list[TransferRequest], session: Session) -> None:
        results = service.create_transfers(session=session, transfers=requests, clock=self.clock)
        if not all(isinstance(r, Created) for r in results):
            raise RuntimeError(f"a benchmark transfer failed: {results}")

    def _calls(self, requests: list[TransferRequest], session: Session) -> None:
        for request in requests:
            service.create_transfer(session=session, transfer=request, clock=self.clock)

    def single(self, transfers: Sequence[Transfer]) -> None:
        for transfer in transfers:
            self.database.run(partial(self._one, self.request(transfer)))

    def batch(self, transfers: Sequence[Transfer]) -> None:
        self.database.run(partial(self._many, [self.request(t) for t in transfers]))

    def batch_calls(self, transfers: Sequence[Transfer]) -> None:
        self.database.run(partial(self._calls, [self.request(t) for t in transfers]))


# --------------------------------------------------------------------------- raw side

_COLUMNS = (
    "id, kind, debit_account_id, credit_account_id, amount, currency, phase, pending_id, "
    "timeout_seconds, linked, status, expires_at, created_at"
)


class RawSide:
    """The same rows with plain SQL on a raw DB-API connection of the same engine.

    SQLite: the connection went through the engine's connect hook (WAL, foreign keys,
    busy_timeout, synchronous) and writes start with ``BEGIN IMMEDIATE`` as the service's do.
    Values are stored as SQLAlchemy stores them: 32-digit hex ids and naive UTC timestamps
    on SQLite, native uuid and timestamptz on PostgreSQL."""

    def __init__(self, database: Database) -> None:
        self.fairy = database.engine.raw_connection()
        self.connection: Any = self.fairy.driver_connection
        self.sqlite = database.dialect == "sqlite"
        mark = "?" if self.sqlite else "%s"
        self.insert = f"INSERT INTO ledger_transfers ({_COLUMNS}) VALUES ({', '.join([mark] * 13)})"
        self.move = (
            f"UPDATE ledger_accounts SET debits_posted = debits_posted + {mark}, "
            f"credits_posted = credits_posted + {mark} WHERE id = {mark}"
        )

    def close(self) -> None:
        self.fairy.close()

    def _key(self, value: UUID) -> Any:
        return value.hex if self.sqlite else value

    def _now(self) -> Any:
        now = datetime.now(UTC)
        if self.sqlite:
            return now.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
        return now

    def _row(self, transfer: Transfer, now: Any) -> tuple[Any, ...]:
        transfer_id, debit, credit, amount = transfer
        key = self._key
        linked = 0 if self.sqlite else False
        return (
            key(transfer_id),
            KIND,
            key(debit),
            key(credit),
            amount,
            CURRENCY,
            Phase.SINGLE.value,
            None,
            0,
            linked,
            None,
            None,
            now,
        )

    def _begin(self, cursor: Any) -> None:
        if self.sqlite:
            cursor.execute("BEGIN IMMEDIATE")

    def _write_one(self, cursor: Any, transfer: Transfer, now: Any) -> None:
        _, debit, credit, amount = transfer
        cursor.execute(self.insert, self._row(transfer, now))
        moves = sorted([(debit, amount, 0), (credit, 0, amount)])
        for account_id, debited, credited in moves:
            cursor.execute(self.move, (debited, credited, self._key(account_id)))

    def single(self, transfers: Sequence[Transfer]) -> None:
        cursor = self.connection.cursor()
        for transfer in transfers:
            self._begin(cursor)
            self._write_one(cursor, transfer, self._now())
            self.connection.commit()
        cursor.close()

    def batch(self, transfers: Sequence[Transfer]) -> None:
        """One executemany of the rows, then one update per account touched."""
        cursor = self.connection.cursor()
        self._begin(cursor)
        now = self._now()
        cursor.executemany(self.insert, [self._row(t, now) for t in transfers])
        sums: dict[UUID, list[int]] = {}
        for _, debit, credit, amount in transfers:
            sums.setdefault(debit, [0, 0])[0] += amount
            sums.setdefault(credit, [0, 0])[1] += amount
        cursor.executemany(self.move, [(d, c, self._key(a)) for a, (d, c) in sorted(sums.items())])
        self.connection.commit()
        cursor.close()

    def batch_calls(self, transfers: Sequence[Transfer]) -> None:
        """Per transfer its own INSERT and two UPDATEs, all in one transaction."""
        cursor = self.connection.cursor()
        self._begin(cursor)
        for transfer in transfers:
            self._write_one(cursor, transfer, self._now())
        self.connection.commit()
        cursor.close()


# --------------------------------------------------------------------------- measuring


@dataclass(frozen=True)
class Mode:
    name: str
    hot: bool
    per_transaction: int
    service_api: str
    raw_sql: str


MODE_INFO = {
    "single": Mode("single", False, 1, "create_transfer", "INSERT + 2 UPDATE"),
    "single_hot": Mode("single_hot", True, 1, "create_transfer", "INSERT + 2 UPDATE"),
    "batch": Mode(
        "batch", False, BATCH, "create_transfers", "executemany INSERT + 1 UPDATE per account"
    ),
    "batch_hot": Mode(
        "batch_hot", True, BATCH, "create_transfers", "executemany INSERT + 1 UPDATE per account"
    ),
    "batch_calls": Mode(
        "batch_calls", False, BATCH, "create_transfer x100", "(INSERT + 2 UPDATE) x100"
    ),
}


def rate(
    run: Callable[[Sequence[Transfer]], None], draw: Callable[[], list[Transfer]], seconds: float
) -> float:
    """Transfers per second over whole transactions until ``seconds`` have passed; a chunk
    of transfers is drawn and written in turn, so drawing counts on both sides alike."""
    done = 0
    start = time.perf_counter()
    while True:
        chunk = draw()
        run(chunk)
        done += len(chunk)
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return done / elapsed


def measure(
    mode: Mode,
    service_side: ServiceSide,
    raw_side: RawSide,
    workload: Workload,
    *,
    rounds: int,
    seconds: float,
    warmup: float,
) -> dict[str, Any]:
    # A single-commit slice draws a few transfers at a time to keep the clock checks cheap.
    chunk = mode.per_transaction if mode.per_transaction > 1 else 10

    def draw() -> list[Transfer]:
        return workload.draw(chunk, hot=mode.hot)

    method = "single" if mode.per_transaction == 1 else mode.name.removesuffix("_hot")
    sides = {
        "service": getattr(service_side, method),
        "raw": getattr(raw_side, method),
    }
    for side in sides.values():
        rate(side, draw, warmup)
    per_s: dict[str, list[float]] = {"service": [], "raw": []}
    for index in range(rounds):
        order = ("service", "raw") if index % 2 == 0 else ("raw", "service")
        for name in order:
            per_s[name].append(rate(sides[name], draw, seconds))
    ratios = [s / r for s, r in zip(per_s["service"], per_s["raw"], strict=True)]
    ratio = statistics.median(ratios)
    target = TARGETS.get(mode.name)
    return {
        "mode": mode.name,
        "transfers_per_transaction": mode.per_transaction,
        "hot_row": mode.hot,
        "service_api": mode.service_api,
        "raw_sql": mode.raw_sql,
        "service_per_s": round(statistics.median(per_s["service"]), 1),
        "raw_per_s": round(statistics.median(per_s["raw"]), 1),
        "ratio": round(ratio, 3),
        "target": target,
        "meets_target": None if target is None else ratio >= target,
        "ratios": [round(r, 3) for r in ratios],
    }


# --------------------------------------------------------------------------- databases


def fresh_database(db: str, url: str | None) -> Any:
    return _support.fresh_database(db, url, postgres=DEFAULT_POSTGRES, stem="ledger")


_SETTINGS = {
    "sqlite": ("journal_mode", "synchronous", "busy_timeout", "foreign_keys"),
    "postgresql": ("synchronous_commit", "fsync", "wal_sync_method", "server_version"),
}


def durability(database: Database, raw_side: RawSide) -> dict[str, Any]:
    """The settings that decide what a commit costs, read from the service's connection and
    from the raw one: they must be the same."""
    names = _SETTINGS[database.dialect]
    command = "PRAGMA" if database.dialect == "sqlite" else "SHOW"
    with database.engine.connect() as connection:
        service = {n: connection.exec_driver_sql(f"{command} {n}").scalar() for n in names}
    cursor = raw_side.connection.cursor()
    raw = {}
    for name in names:
        cursor.execute(f"{command} {name}")
        raw[name] = cursor.fetchone()[0]
    cursor.close()
    if database.dialect == "postgresql":
        raw_side.connection.rollback()  # SHOW opened a transaction on the raw connection
    if raw != service:
        raise RuntimeError(f"the raw connection differs from the service's: {raw} != {service}")
    return service


def check_raw_rows_read_back(database: Database, raw_side: RawSide, workload: Workload) -> None:
    """A row written by the raw side reads back through the service like one of its own."""
    [(transfer_id, debit, credit, amount)] = workload.draw(1, hot=False)
    raw_side.single([(transfer_id, debit, credit, amount)])
    stored = database.read(lambda s: service.get_transfer(session=s, transfer_id=transfer_id))
    expected = (debit, credit, amount, CURRENCY, KIND, Phase.SINGLE, None, None, 0, False, None)
    got = stored and (
        stored.debit_account_id,
        stored.credit_account_id,
        stored.amount,
        stored.currency,
        stored.kind,
        stored.phase,
        stored.status,
        stored.pending_id,
        stored.timeout_seconds,
        stored.linked,
        stored.expires_at,
    )
    if got != expected or stored is None or stored.created_at.tzinfo is None:
        raise RuntimeError(f"a raw row does not read back as the service's: {stored}")


def check_books(database: Database, workload: Workload) -> list[str]:
    """Every transfer drawn was written once, and the books balance: each stored balance
    equals the sum of its transfers, whichever side wrote them."""
    problems = database.read(lambda s: service.find_discrepancies(session=s))
    with database.engine.connect() as connection:
        stored = connection.exec_driver_sql("SELECT count(*) FROM ledger_transfers").scalar()
    expected = workload.accounts.funded + workload.drawn
    if stored != expected:
        problems.append(f"{stored} transfers stored, {expected} written")
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql"), required=True)
    parser.add_argument(
        "--database-url",
        help="use this database instead of a fresh one (it is migrated; rows are left behind)",
    )
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--accounts", type=int, default=300, help="member accounts (default 300)")
    parser.add_argument("--rounds", type=int, default=7, help="service/raw pairs per mode")
    parser.add_argument("--seconds", type=float, default=1.0, help="length of one slice")
    parser.add_argument("--warmup", type=float, default=0.5, help="warm-up per side and mode")
    parser.add_argument("--seed", type=int, default=20_260_301)
    args = parser.parse_args(argv)

    with fresh_database(args.db, args.database_url) as url:
        database = Database(DatabaseSettings(url=url))
        if database.dialect != args.db:
            parser.error(f"--database-url is a {database.dialect} URL, not {args.db}")
        upgrade(database.engine)
        raw_side = RawSide(database)
        try:
            accounts = create_accounts(database, args.accounts)
            workload = Workload(accounts, seed=args.seed)
            service_side = ServiceSide(database)
            settings = durability(database, raw_side)
            check_raw_rows_read_back(database, raw_side, workload)
            log(f"{args.db}: {settings}; {args.accounts} accounts; modes {' '.join(args.modes)}")
            for name in args.modes:
                started = time.perf_counter()
                line = measure(
                    MODE_INFO[name],
                    service_side,
                    raw_side,
                    workload,
                    rounds=args.rounds,
                    seconds=args.seconds,
                    warmup=args.warmup,
                )
                print(json.dumps({"db": args.db, **line, "settings": settings}), flush=True)
                log(f"  {name} done in {time.perf_counter() - started:.1f}s")
            problems = check_books(database, workload)
            if problems:
                log("the books do not balance after the run:\n" + "\n".join(problems[:20]))
                return 1
            log(f"books balanced: {workload.drawn} transfers, each stored once")
        finally:
            raw_side.close()
            database.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
