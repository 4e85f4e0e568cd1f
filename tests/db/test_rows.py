"""Driver-level rows agree with SQLAlchemy's: what one writes, the other reads unchanged."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import JSON, Column, MetaData, String, Table, select
from sqlalchemy.orm import Session

from parrain.db.rows import TableRows, rows_of
from parrain.db.session import Database, DriverCursor
from parrain.kit.ids import new_id
from parrain.referrals.models import Order

ORDERS: Table = Order.__table__  # type: ignore[assignment]


def _order(**changes: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": new_id(),
        "market": "GB",
        "order_ref": f"o-{new_id().hex[:8]}",
        "user_hash": "ab" * 32,
        "amount_minor": 2**62,
        "currency": "GBP",
        "status": "completed",
        "ordered_at": datetime(2026, 3, 1, 9, 30, 15, 123456, tzinfo=UTC),
        "refunded_minor": 0,
        "fully_refunded": True,
        "refunded_at": None,
        "charged_back_at": None,
    }
    row.update(changes)
    return row


def test_rows_written_on_the_driver_read_back_through_sqlalchemy(database: Database) -> None:
    paris = timezone(timedelta(hours=1))
    written = _order(refunded_at=datetime(2026, 3, 2, 10, 0, tzinfo=paris))

    def write(session: Session) -> None:
        with DriverCursor.of(session) as cursor:
            rows_of(ORDERS, database.dialect).insert(cursor, [written])

    database.run(write)
    read = database.read(lambda s: dict(s.execute(select(ORDERS)).one()._mapping))
    assert read == {**written, "refunded_at": datetime(2026, 3, 2, 9, 0, tzinfo=UTC)}


def test_rows_written_by_sqlalchemy_read_back_on_the_driver_and_update(
    database: Database,
) -> None:
    stored = _order(fully_refunded=False, user_hash=None, ordered_at=None)
    database.run(lambda s: s.execute(ORDERS.insert(), [stored]))
    rows = rows_of(ORDERS, database.dialect)

    def read_and_change(session: Session) -> list[dict[str, Any]]:
        with DriverCursor.of(session) as cursor:
            found = rows.select(
                cursor, column="order_ref", values=[stored["order_ref"]], equal={"market": "GB"}
            )
            rows.update(cursor, ["status", "fully_refunded"], [{**found[0], "status": "cancelled"}])
            return found

    assert database.run(read_and_change) == [stored]
    again = database.read(
        lambda s: s.execute(select(ORDERS.c.status, ORDERS.c.fully_refunded)).one()
    )
    assert tuple(again) == ("cancelled", False)


def test_a_naive_time_is_refused(database: Database) -> None:
    rows = rows_of(ORDERS, database.dialect)
    with pytest.raises(ValueError, match="naive"):
        rows.encode("ordered_at", datetime(2026, 3, 1, 9, 0))  # noqa: DTZ001


def test_json_columns_are_not_supported() -> None:
    table = Table("t", MetaData(), Column("id", String, primary_key=True), Column("j", JSON))
    with pytest.raises(TypeError, match="JSON"):
        TableRows(table, "sqlite")
