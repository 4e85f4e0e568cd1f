"""Every query of the ledger.

Core statements on the tables, except on the write path of ``create_transfers`` (lock the
accounts, read the transfers, insert them, move the balances): there SQLAlchemy's own work
per statement cost more than the database's, so those few statements are plain SQL on the
driver's cursor (:class:`~parrain.db.session.DriverCursor`), with the values converted here
as the column types would convert them. They are the statements the Core constructs emitted
(same predicates, same ``ORDER BY id FOR UPDATE``), and ``get_accounts`` shares them, plus
two that do the work of several in one: the account lock with the idempotency check, and
(PostgreSQL) one transfer's insert with its balance moves. ``docs/performance.md`` has the
figures.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, cast
from uuid import UUID

from sqlalchemy import Table, func, insert, select
from sqlalchemy.orm import Session

from parrain.db.session import DriverCursor
from parrain.kit.clock import as_utc
from parrain.ledger.history import Movement
from parrain.ledger.models import LedgerAccount, LedgerTransfer
from parrain.ledger.postings import Account, Delta, PendingStatus, Phase, Transfer, lock_order

_accounts = cast(Table, LedgerAccount.__table__)
_transfers = cast(Table, LedgerTransfer.__table__)

_ACCOUNT_COLUMNS = (
    _accounts.c.id,
    _accounts.c.currency,
    _accounts.c.kind,
    _accounts.c.debits_must_not_exceed_credits,
    _accounts.c.credits_must_not_exceed_debits,
    _accounts.c.debits_pending,
    _accounts.c.debits_posted,
    _accounts.c.credits_pending,
    _accounts.c.credits_posted,
)


def _account(row: Any) -> Account:
    return Account(
        id=row.id,
        currency=row.currency,
        kind=row.kind,
        debits_must_not_exceed_credits=bool(row.debits_must_not_exceed_credits),
        credits_must_not_exceed_debits=bool(row.credits_must_not_exceed_debits),
        debits_pending=row.debits_pending,
        debits_posted=row.debits_posted,
        credits_pending=row.credits_pending,
        credits_posted=row.credits_posted,
    )


# The write path in the driver's SQL. Column lists are spelled out once; the check below
# fails at import if the tables gain or lose a column, so they cannot drift apart.
_ACCOUNT_NAMES = tuple(column.name for column in _ACCOUNT_COLUMNS)
_TRANSFER_NAMES = (
    "id",
    "kind",
    "debit_account_id",
    "credit_account_id",
    "amount",
    "currency",
    "phase",
    "pending_id",
    "timeout_seconds",
    "linked",
    "status",
    "expires_at",
    "created_at",
)
if set(_TRANSFER_NAMES) != set(_transfers.c.keys()):  # pragma: no cover - a model change
    raise RuntimeError("ledger_transfers changed: update the driver statements in repository")

#: Up to this many ids, the combined lock and check sends them as separate values.
_SCALAR_IDS = 4


class _DriverSQL:
    """One dialect's statements and value conversions, as SQLAlchemy's types would do them.

    SQLite stores ids as 32 hex digits, timestamps as naive UTC text with microseconds and
    booleans as 0/1; PostgreSQL takes and returns uuid, timestamptz and boolean natively.
    """

    # Built from this module's constants only, never from values: hence the S608 waivers.
    def __init__(self, dialect: str) -> None:
        self.sqlite = dialect == "sqlite"
        self.mark = mark = "?" if self.sqlite else "%s"
        accounts, transfers = ", ".join(_ACCOUNT_NAMES), ", ".join(_TRANSFER_NAMES)
        marks = ", ".join([mark] * len(_TRANSFER_NAMES))
        self.select_accounts = f"SELECT {accounts} FROM ledger_accounts WHERE "  # noqa: S608
        self.lock_suffix = " ORDER BY id"
        self.select_transfers = f"SELECT {transfers} FROM ledger_transfers WHERE "  # noqa: S608
        # PostgreSQL: one primary-key lookup per id, whatever the planner believes of the
        # table's size. An IN list planned on young statistics scanned the whole growing
        # table (and, once prepared, rebuilt the list for every row): 60 ms per batch of
        # 100 within a minute of the ledger benchmark. OFFSET 0 keeps the lookup per id.
        # The accounts, locked one by one in the order of the (sorted) array.
        self.lock_accounts_by_id = (
            f"SELECT a.* FROM unnest(%s::uuid[]) WITH ORDINALITY AS k(id, n) CROSS JOIN "  # noqa: S608
            f"LATERAL (SELECT {accounts} FROM ledger_accounts WHERE id = k.id FOR UPDATE) AS a "
            "ORDER BY k.n"
        )
        self.transfers_by_id = (
            f"SELECT t.* FROM unnest(%s::uuid[]) AS k(id) CROSS JOIN LATERAL "  # noqa: S608
            f"(SELECT {transfers} FROM ledger_transfers WHERE id = k.id OFFSET 0) AS t"
        )
        # The account lock of a batch without posts or voids and its idempotency check in
        # one statement (one round trip): the accounts locked as above, each row followed by
        # whether any of the batch's transfer ids is already stored. That is rare (a
        # replay), and only then are the transfers read, under the locks. A transfer
        # inserted by another transaction while this one waited for the locks is not seen
        # (the statement's snapshot predates it): our insert of the same id then fails with
        # a unique violation, which Database.run retries, and the retry replays it.
        self._lock_and_check = (
            f"SELECT a.*, EXISTS (SELECT 1 FROM unnest({{ids}}) AS t(id) "  # noqa: S608
            "CROSS JOIN LATERAL (SELECT 1 FROM ledger_transfers WHERE id = t.id OFFSET 0) AS s) "
            "FROM unnest({accounts}) WITH ORDINALITY AS k(id, n) CROSS JOIN "
            f"LATERAL (SELECT {accounts} FROM ledger_accounts WHERE id = k.id FOR UPDATE) AS a "
            "ORDER BY k.n"
        )
        self._lock_and_check_by_count: dict[tuple[int, int], str] = {}
        if self.sqlite:  # the same on SQLite, where the write transaction locks everything
            self._lock_and_check = (
                f"SELECT {accounts}, EXISTS (SELECT 1 FROM ledger_transfers "  # noqa: S608
                "WHERE id IN ({ids})) FROM ledger_accounts WHERE id IN ({accounts})"
            )
        self.insert_transfer = f"INSERT INTO ledger_transfers ({transfers}) VALUES ({marks})"  # noqa: S608
        self.set_status = f"UPDATE ledger_transfers SET status = {mark} WHERE id = {mark}"  # noqa: S608
        self.move = (
            "UPDATE ledger_accounts SET "  # noqa: S608
            f"debits_pending = debits_pending + {mark}, "
            f"debits_posted = debits_posted + {mark}, "
            f"credits_pending = credits_pending + {mark}, "
            f"credits_posted = credits_posted + {mark} "
            f"WHERE id = {mark}"
        )
        # PostgreSQL: one transfer and its balance moves in one statement (one round trip
        # instead of three), per number of accounts moved.
        self.insert_and_move = {
            count: (
                f"WITH inserted AS (INSERT INTO ledger_transfers ({transfers}) "  # noqa: S608
                f"VALUES ({marks})) "
                "UPDATE ledger_accounts AS a SET "
                "debits_pending = a.debits_pending + d.debits_pending, "
                "debits_posted = a.debits_posted + d.debits_posted, "
                "credits_pending = a.credits_pending + d.credits_pending, "
                "credits_posted = a.credits_posted + d.credits_posted "
                "FROM (VALUES "
                + ", ".join(["(%s::uuid, %s::bigint, %s::bigint, %s::bigint, %s::bigint)"] * count)
                + ") AS d(id, debits_pending, debits_posted, credits_pending, credits_posted) "
                "WHERE a.id = d.id"
            )
            for count in (1, 2)
        }

    def lock_accounts_and_check_ids(
        self, transfer_ids: Collection[UUID], account_ids: Sequence[UUID]
    ) -> tuple[str, list[Any]]:
        """The statement and its values (one statement per count of ids, ``?`` marks on
        SQLite). On PostgreSQL a few ids go as separate values in an ``ARRAY[…]``, which the
        driver sends for about half the work of an array value; more go as one array."""
        counts = (len(transfer_ids), len(account_ids))
        if self.sqlite:
            statement = self._lock_and_check_by_count.get(counts)
            if statement is None:
                statement = self._lock_and_check.format(
                    ids=", ".join(["?"] * counts[0]), accounts=", ".join(["?"] * counts[1])
                )
                if max(counts) <= _SCALAR_IDS:  # keep only the few small shapes
                    self._lock_and_check_by_count[counts] = statement
            return statement, [*(i.hex for i in transfer_ids), *(i.hex for i in account_ids)]
        if max(counts) > _SCALAR_IDS:
            statement = self._lock_and_check.format(ids="%s::uuid[]", accounts="%s::uuid[]")
            return statement, [list(transfer_ids), list(account_ids)]
        statement = self._lock_and_check_by_count.get(counts)
        if statement is None:
            statement = self._lock_and_check_by_count[counts] = self._lock_and_check.format(
                ids=f"ARRAY[{', '.join(['%s'] * counts[0])}]::uuid[]",
                accounts=f"ARRAY[{', '.join(['%s'] * counts[1])}]::uuid[]",
            )
        return statement, [*transfer_ids, *account_ids]

    def id_in(self, ids: Iterable[UUID]) -> tuple[str, list[Any]]:
        keys = [value.hex for value in ids] if self.sqlite else list(ids)
        return f"id IN ({', '.join([self.mark] * len(keys))})", keys

    def key(self, value: UUID | None) -> Any:
        if value is None:
            return None
        return value.hex if self.sqlite else value

    def uuid(self, value: Any) -> Any:
        if value is None or not self.sqlite:
            return value
        return UUID(value)

    def stamp(self, value: datetime | None) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("refusing a naive datetime: parrain stores only aware UTC times")
        aware = as_utc(value)
        return aware.replace(tzinfo=None).isoformat(" ", "microseconds") if self.sqlite else aware

    def moment(self, value: Any) -> datetime | None:
        if value is None:
            return None
        if self.sqlite:
            return datetime.fromisoformat(value).replace(tzinfo=UTC)
        return as_utc(value)

    def flag(self, value: bool) -> Any:
        return int(value) if self.sqlite else value

    def account(self, row: Sequence[Any], known: Mapping[Any, UUID] | None = None) -> Account:
        """An account from its row; ``known`` maps the stored ids of the accounts asked for
        to their ``UUID`` objects (on SQLite, parsing 32 hex digits costs more than the rest
        of the row)."""
        stored_id = row[0]
        account_id = known.get(stored_id) if known is not None else None
        return Account(
            id=account_id if account_id is not None else self.uuid(stored_id),
            currency=row[1],
            kind=row[2],
            debits_must_not_exceed_credits=bool(row[3]),
            credits_must_not_exceed_debits=bool(row[4]),
            debits_pending=row[5],
            debits_posted=row[6],
            credits_pending=row[7],
            credits_posted=row[8],
        )

    def transfer(self, row: Sequence[Any]) -> Transfer:
        created_at = self.moment(row[12])
        assert created_at is not None  # NOT NULL column
        return Transfer(
            id=self.uuid(row[0]),
            kind=row[1],
            debit_account_id=self.uuid(row[2]),
            credit_account_id=self.uuid(row[3]),
            amount=row[4],
            currency=row[5],
            phase=Phase(row[6]),
            pending_id=self.uuid(row[7]),
            timeout_seconds=row[8],
            linked=bool(row[9]),
            created_at=created_at,
            expires_at=self.moment(row[11]),
            status=PendingStatus(row[10]) if row[10] is not None else None,
        )

    def transfer_rows(self, transfers: Iterable[Transfer]) -> list[tuple[Any, ...]]:
        key, stamp, flag = self.key, self.stamp, self.flag
        stamps: dict[datetime, Any] = {}  # a batch's transfers share one creation time
        rows = []
        for t in transfers:
            created_at = stamps.get(t.created_at)
            if created_at is None:
                created_at = stamps[t.created_at] = stamp(t.created_at)
            rows.append(
                (
                    key(t.id),
                    t.kind,
                    key(t.debit_account_id),
                    key(t.credit_account_id),
                    t.amount,
                    t.currency,
                    t.phase.value,
                    key(t.pending_id),
                    t.timeout_seconds,
                    flag(t.linked),
                    t.status.value if t.status is not None else None,
                    stamp(t.expires_at),
                    created_at,
                )
            )
        return rows


_DRIVER_SQL = {name: _DriverSQL(name) for name in ("sqlite", "postgresql")}


class _driver:  # noqa: N801 - used as a function: ``with _driver(...) as (cursor, sql)``
    """The caller's cursor (one per ``create_transfers`` call: getting a session's connection
    costs more than a statement), or a cursor of our own, closed after use. A class rather
    than a generator context manager: it runs several times per transfer."""

    __slots__ = ("_own", "_pair")

    def __init__(self, session: Session, cursor: DriverCursor | None) -> None:
        self._own = cursor is None
        if cursor is None:
            cursor = DriverCursor.of(session)
        self._pair = (cursor, _DRIVER_SQL[cursor.dialect])

    def __enter__(self) -> tuple[DriverCursor, _DriverSQL]:
        return self._pair

    def __exit__(self, *_exc: object) -> None:
        if self._own:
            self._pair[0].__exit__()


def write_cursor(session: Session) -> DriverCursor:
    """A cursor for the write path of one ``create_transfers`` call; the caller closes it."""
    return DriverCursor.of(session)


def _lock_statement(sql: _DriverSQL, ids: Sequence[UUID]) -> tuple[str, Sequence[Any]]:
    ordered = sorted(ids, key=lock_order)
    if sql.sqlite:
        where, params = sql.id_in(ordered)
        return sql.select_accounts + where + sql.lock_suffix, params
    return sql.lock_accounts_by_id, [ordered]


def _transfers_statement(sql: _DriverSQL, ids: Collection[UUID]) -> tuple[str, Sequence[Any]]:
    if sql.sqlite:
        where, params = sql.id_in(ids)
        return sql.select_transfers + where, params
    return sql.transfers_by_id, [list(ids)]


def lock_accounts(
    session: Session, ids: Sequence[UUID], *, cursor: DriverCursor | None = None
) -> dict[UUID, Account]:
    """Read and lock the accounts, in sorted id order (PostgreSQL row locks; a SQLite write
    transaction already holds the database lock)."""
    if not ids:
        return {}
    with _driver(session, cursor) as (driver, sql):
        rows = driver.query(*_lock_statement(sql, ids))
    return {account.id: account for account in map(sql.account, rows)}


def lock_accounts_and_get_transfers(
    session: Session,
    account_ids: Sequence[UUID],
    transfer_ids: Collection[UUID],
    *,
    cursor: DriverCursor | None = None,
) -> tuple[dict[UUID, Account], dict[UUID, Transfer]]:
    """:func:`lock_accounts`, then the stored transfers among ``transfer_ids``.

    For a batch that posts or voids nothing, whose transfer ids are only idempotency keys.
    The lock and a check that none of the ids is stored are one statement; the transfers are
    read (under the locks) only when one is, or when an account is missing. On PostgreSQL a
    transfer committed by another transaction while this one waited for the locks is not
    seen: inserting the same id then fails with a unique violation, which
    :meth:`Database.run` retries. (A SQLite write transaction holds the database's write
    lock from its start: nothing is committed meanwhile.)"""
    with _driver(session, cursor) as (driver, sql):
        if not account_ids or not transfer_ids:
            accounts = lock_accounts(session, account_ids, cursor=driver)
            return accounts, get_transfers(session, transfer_ids, cursor=driver)
        ordered = sorted(account_ids, key=lock_order)
        rows = driver.query(*sql.lock_accounts_and_check_ids(transfer_ids, ordered))
        known = {sql.key(account_id): account_id for account_id in ordered}
        accounts = {account.id: account for account in (sql.account(r, known) for r in rows)}
        if len(accounts) < len(ordered) or any(row[9] for row in rows):
            return accounts, get_transfers(session, transfer_ids, cursor=driver)
    return accounts, {}


def get_accounts(
    session: Session, ids: Collection[UUID], *, cursor: DriverCursor | None = None
) -> dict[UUID, Account]:
    if not ids:
        return {}
    with _driver(session, cursor) as (driver, sql):
        where, params = sql.id_in(ids)
        rows = driver.query(sql.select_accounts + where, params)
    return {account.id: account for account in map(sql.account, rows)}


def get_reference(session: Session, account_id: UUID) -> str | None:
    return session.scalar(select(_accounts.c.reference).where(_accounts.c.id == account_id))


def get_account_by_reference(session: Session, reference: str) -> Account | None:
    row = session.execute(
        select(*_ACCOUNT_COLUMNS).where(_accounts.c.reference == reference)
    ).first()
    return _account(row) if row is not None else None


def list_accounts(
    session: Session, *, currency: str | None = None, kind: str | None = None
) -> list[tuple[Account, str | None]]:
    statement = select(*_ACCOUNT_COLUMNS, _accounts.c.reference).order_by(_accounts.c.id)
    if currency is not None:
        statement = statement.where(_accounts.c.currency == currency)
    if kind is not None:
        statement = statement.where(_accounts.c.kind == kind)
    return [(_account(row), row.reference) for row in session.execute(statement)]


def insert_account(
    session: Session, account: Account, *, reference: str | None, created_at: datetime
) -> None:
    session.execute(
        insert(_accounts).values(
            id=account.id,
            currency=account.currency,
            kind=account.kind,
            reference=reference,
            debits_must_not_exceed_credits=account.debits_must_not_exceed_credits,
            credits_must_not_exceed_debits=account.credits_must_not_exceed_debits,
            debits_pending=0,
            debits_posted=0,
            credits_pending=0,
            credits_posted=0,
            created_at=created_at,
        )
    )


def get_transfers(
    session: Session, ids: Collection[UUID], *, cursor: DriverCursor | None = None
) -> dict[UUID, Transfer]:
    if not ids:
        return {}
    with _driver(session, cursor) as (driver, sql):
        rows = driver.query(*_transfers_statement(sql, ids))
    return {transfer.id: transfer for transfer in map(sql.transfer, rows)}


def insert_transfers(
    session: Session, transfers: Collection[Transfer], *, cursor: DriverCursor | None = None
) -> None:
    if not transfers:
        return
    with _driver(session, cursor) as (driver, sql):
        driver.executemany(sql.insert_transfer, sql.transfer_rows(transfers))


def insert_transfer_and_move(
    session: Session,
    transfer: Transfer,
    deltas: Mapping[UUID, Delta],
    *,
    cursor: DriverCursor | None = None,
) -> None:
    """:func:`insert_transfers` of one transfer, then :func:`apply_deltas` of its (at most
    two) accounts: one statement on PostgreSQL, the same statements as those on SQLite."""
    moves = [
        (account_id, d)
        for account_id, d in sorted(deltas.items(), key=lambda item: lock_order(item[0]))
        if not d.is_zero()
    ]
    with _driver(session, cursor) as (driver, sql):
        row = sql.transfer_rows([transfer])[0]
        if sql.sqlite or len(moves) not in sql.insert_and_move:
            driver.execute(sql.insert_transfer, row)
            if moves:
                driver.executemany(
                    sql.move,
                    [
                        (
                            d.debits_pending,
                            d.debits_posted,
                            d.credits_pending,
                            d.credits_posted,
                            sql.key(key),
                        )
                        for key, d in moves
                    ],
                )
            return
        params = list(row)
        for account_id, d in moves:
            params += (
                account_id,
                d.debits_pending,
                d.debits_posted,
                d.credits_pending,
                d.credits_posted,
            )
        driver.execute(sql.insert_and_move[len(moves)], params)


def set_pending_status(
    session: Session,
    statuses: Mapping[UUID, PendingStatus],
    *,
    cursor: DriverCursor | None = None,
) -> None:
    if not statuses:
        return
    with _driver(session, cursor) as (driver, sql):
        rows = [(status.value, sql.key(transfer_id)) for transfer_id, status in statuses.items()]
        driver.executemany(sql.set_status, rows)


def apply_deltas(
    session: Session, deltas: Mapping[UUID, Delta], *, cursor: DriverCursor | None = None
) -> None:
    """Add each delta in the database (``x = x + d``), accounts in sorted id order: the CHECK
    constraints see the result."""
    ordered = sorted(deltas.items(), key=lambda item: lock_order(item[0]))
    moves = [(account_id, d) for account_id, d in ordered if not d.is_zero()]
    if not moves:
        return
    with _driver(session, cursor) as (driver, sql):
        rows = [
            (d.debits_pending, d.debits_posted, d.credits_pending, d.credits_posted, sql.key(key))
            for key, d in moves
        ]
        driver.executemany(sql.move, rows)


def due_pending_ids(session: Session, *, now: datetime, limit: int) -> list[UUID]:
    statement = (
        select(_transfers.c.id)
        .where(_transfers.c.status == PendingStatus.PENDING.value)
        .where(_transfers.c.expires_at <= now)
        .order_by(_transfers.c.expires_at, _transfers.c.id)
        .limit(limit)
    )
    return list(session.scalars(statement))


def balance_totals(session: Session) -> dict[str, Delta]:
    """Per currency, the sum of each balance column over all accounts.

    Summed in Python: a currency's total may pass 2^63-1 while every account stays within
    it, and SQLite's SUM() refuses to overflow.
    """
    statement = select(
        _accounts.c.currency,
        _accounts.c.debits_pending,
        _accounts.c.debits_posted,
        _accounts.c.credits_pending,
        _accounts.c.credits_posted,
    )
    totals: dict[str, Delta] = {}
    for currency, debits_pending, debits_posted, credits_pending, credits_posted in session.execute(
        statement
    ):
        totals[currency] = totals.get(currency, Delta()) + Delta(
            debits_pending, debits_posted, credits_pending, credits_posted
        )
    return totals


def recomputed_balances(session: Session) -> dict[UUID, Delta]:
    """Every account's four balances recomputed from the transfers alone.

    A single transfer and a post count as posted; a pending transfer counts as pending until
    it resolves. Comparing this with the stored balances proves that no write was lost or
    applied twice.
    """
    balances: dict[UUID, Delta] = {}
    for side in ("debit", "credit"):
        account_column = _transfers.c[f"{side}_account_id"]
        # Only what counts: resolved pending transfers would add amounts that cancel out and
        # could pass 2^63-1 in SQLite's SUM().
        statement = (
            select(
                account_column,
                _transfers.c.phase,
                _transfers.c.status,
                func.sum(_transfers.c.amount),
            )
            .where(
                _transfers.c.phase.in_((Phase.SINGLE.value, Phase.POST_PENDING.value))
                | (_transfers.c.status == PendingStatus.PENDING.value)
            )
            .group_by(account_column, _transfers.c.phase, _transfers.c.status)
        )
        for account_id, phase, status, amount in session.execute(statement):
            amount = int(amount)
            if phase in (Phase.SINGLE.value, Phase.POST_PENDING.value):
                delta = (
                    Delta(debits_posted=amount) if side == "debit" else Delta(credits_posted=amount)
                )
            elif phase == Phase.PENDING.value and status == PendingStatus.PENDING.value:
                delta = (
                    Delta(debits_pending=amount)
                    if side == "debit"
                    else Delta(credits_pending=amount)
                )
            else:
                continue
            balances[account_id] = balances.get(account_id, Delta()) + delta
    return balances


def account_movements(session: Session, account_id: UUID) -> Iterator[Movement]:
    """Every transfer touching ``account_id`` as a :class:`Movement`, in the order written
    (time, then id: ids are time-ordered), streamed."""
    pending = _transfers.alias("resolved")
    statement = (
        select(
            _transfers.c.created_at,
            _transfers.c.phase,
            _transfers.c.debit_account_id,
            _transfers.c.amount,
            pending.c.amount,
        )
        .outerjoin(pending, pending.c.id == _transfers.c.pending_id)
        .where(
            (_transfers.c.debit_account_id == account_id)
            | (_transfers.c.credit_account_id == account_id)
        )
        .order_by(_transfers.c.created_at, _transfers.c.id)
        .execution_options(yield_per=2_000)
    )
    for at, phase, debit_id, amount, pending_amount in session.execute(statement):
        yield Movement(
            at=as_utc(at),
            phase=Phase(phase),
            debit=debit_id == account_id,
            amount=int(amount),
            pending_amount=None if pending_amount is None else int(pending_amount),
        )
