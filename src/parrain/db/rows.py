"""Rows of a table read and written on the driver's cursor, as dicts of Python values.

For hot paths that read and write many small rows (a batch of referral events), where
SQLAlchemy's work per statement costs more than the database's (ADR 7). :class:`TableRows`
builds the SQL once per shape and converts values exactly as the column types store them,
so rows written here read back through SQLAlchemy unchanged and the other way round:

* ``Uuid``: 32 hex digits on SQLite, ``uuid`` on PostgreSQL;
* :class:`~parrain.db.base.UTCDateTime`: naive UTC text with microseconds on SQLite,
  ``timestamptz`` on PostgreSQL; always read back timezone-aware;
* ``Boolean``: 0/1 on SQLite.

Other columns (text, integers, bytes) pass as they are. JSON columns are not supported.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any
from uuid import UUID

from sqlalchemy import JSON, Boolean, Table, Uuid

from parrain.db.base import UTCDateTime
from parrain.db.session import DriverCursor

Row = dict[str, Any]
_Convert = Callable[[Any], Any]


def _same(value: Any) -> Any:
    return value


def _uuid_to_sqlite(value: UUID | None) -> str | None:
    return None if value is None else value.hex


def _uuid_from_sqlite(value: str | None) -> UUID | None:
    if value is None:
        return None
    if len(value) == 32:  # as stored: the same number as UUID(hex=...), a third cheaper
        return UUID(int=int(value, 16))
    return UUID(hex=value)


def _time_to_sqlite(value: datetime | None) -> str | None:
    if value is None:
        return None
    zone = value.tzinfo
    if zone is None:
        raise ValueError("refusing a naive datetime: parrain stores only aware UTC times")
    if zone is not UTC:  # most times are UTC already
        value = value.astimezone(UTC)
    return value.replace(tzinfo=None).isoformat(" ", "microseconds")


def _time_from_sqlite(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value).replace(tzinfo=UTC)


def _time_to_postgresql(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValueError("refusing a naive datetime: parrain stores only aware UTC times")
    return value


def _time_from_postgresql(value: datetime | None) -> datetime | None:
    return None if value is None else value.astimezone(UTC)


def _bool_to_sqlite(value: bool | None) -> int | None:
    return None if value is None else int(value)


def _bool_from_sqlite(value: int | None) -> bool | None:
    return None if value is None else bool(value)


class TableRows:
    """Driver-level reads and writes of one table for one dialect (see the module doc)."""

    def __init__(self, table: Table, dialect: str) -> None:
        self.table = table
        self.columns = [column.name for column in table.columns]
        self._mark = "?" if dialect == "sqlite" else "%s"
        sqlite = dialect == "sqlite"
        self._to: dict[str, _Convert] = {}
        self._from: list[_Convert] = []
        #: (position, converter) of the columns whose values change on the way in or out:
        #: the others are copied as they are, without a call per value.
        self._to_at: list[tuple[int, _Convert]] = []
        self._from_at: list[tuple[int, _Convert]] = []
        for column in table.columns:
            kind = column.type
            if isinstance(kind, JSON):
                raise TypeError(f"{table.name}.{column.name}: JSON columns are not supported")
            if isinstance(kind, Uuid):
                to, back = (_uuid_to_sqlite, _uuid_from_sqlite) if sqlite else (_same, _same)
            elif isinstance(kind, UTCDateTime):
                to, back = (
                    (_time_to_sqlite, _time_from_sqlite)
                    if sqlite
                    else (_time_to_postgresql, _time_from_postgresql)
                )
            elif isinstance(kind, Boolean):
                to, back = (_bool_to_sqlite, _bool_from_sqlite) if sqlite else (_same, _same)
            else:
                to, back = _same, _same
            if to is not _same:
                self._to_at.append((len(self._from), to))
            if back is not _same:
                self._from_at.append((len(self._from), back))
            self._to[column.name] = to
            self._from.append(back)
        self._values = itemgetter(*self.columns)
        self._from_by_name = dict(zip(self.columns, self._from, strict=True))
        names = ", ".join(self.columns)
        self._select = f"SELECT {names} FROM {table.name}"  # noqa: S608 (names from the model)
        marks = ", ".join(self._mark for _ in self.columns)
        self._insert = f"INSERT INTO {table.name} ({names}) VALUES ({marks})"  # noqa: S608
        self._updates: dict[tuple[str, ...], str] = {}

    @property
    def select_sql(self) -> str:
        """``SELECT <every column> FROM <table>``, for a caller's own ``WHERE``."""
        return self._select

    def encode(self, column: str, value: Any) -> Any:
        return self._to[column](value)

    def decode(self, row: Sequence[Any]) -> Row:
        values = list(row)
        for at, convert in self._from_at:
            values[at] = convert(values[at])
        return dict(zip(self.columns, values, strict=True))

    def decode_columns(self, columns: Sequence[str], row: Sequence[Any]) -> Row:
        """A row of ``columns`` only (a narrower ``SELECT``), decoded as :meth:`decode` does."""
        return {
            name: self._from_by_name[name](value) for name, value in zip(columns, row, strict=True)
        }

    def _encoded(self, row: Row) -> tuple[Any, ...]:
        values = self._values(row)
        if len(self.columns) == 1:
            values = (values,)
        if not self._to_at:
            return tuple(values)
        out = list(values)
        for at, convert in self._to_at:
            out[at] = convert(out[at])
        return tuple(out)

    def select(
        self,
        cursor: DriverCursor,
        *,
        column: str,
        values: Sequence[Any],
        equal: Mapping[str, Any] | None = None,
        among: Mapping[str, Sequence[Any]] | None = None,
    ) -> list[Row]:
        """Rows whose ``column`` is one of ``values``, each ``equal`` column equal to its
        value and each ``among`` column one of its values."""
        if not values:
            return []
        clauses: list[str] = []
        params: list[Any] = []
        for name, value in (equal or {}).items():
            clauses.append(f"{name} = {self._mark}")
            params.append(self.encode(name, value))
        for name, options in [*(among or {}).items(), (column, values)]:
            clauses.append(f"{name} IN ({', '.join(self._mark for _ in options)})")
            params.extend(self.encode(name, option) for option in options)
        sql = f"{self._select} WHERE {' AND '.join(clauses)}"
        return [self.decode(row) for row in cursor.query(sql, params)]

    def insert(self, cursor: DriverCursor, rows: Iterable[Row]) -> None:
        encoded = [self._encoded(row) for row in rows]
        if encoded:
            cursor.executemany(self._insert, encoded)

    def update(self, cursor: DriverCursor, columns: Sequence[str], rows: Iterable[Row]) -> None:
        """Write ``columns`` of each row, found by its ``id``."""
        key = tuple(columns)
        sql = self._updates.get(key)
        if sql is None:
            sets = ", ".join(f"{name} = {self._mark}" for name in columns)
            sql = f"UPDATE {self.table.name} SET {sets} WHERE id = {self._mark}"  # noqa: S608
            self._updates[key] = sql
        encoded = [
            (*(self._to[name](row[name]) for name in columns), self._to["id"](row["id"]))
            for row in rows
        ]
        if encoded:
            cursor.executemany(sql, encoded)


_cache: dict[tuple[str, str], TableRows] = {}


def rows_of(table: Table, dialect: str) -> TableRows:
    """The (cached) :class:`TableRows` of ``table`` for ``dialect``."""
    key = (table.name, dialect)
    found = _cache.get(key)
    if found is None:
        found = _cache[key] = TableRows(table, dialect)
    return found
