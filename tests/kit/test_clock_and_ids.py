"""The injectable clock and time-ordered ids."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from parrain.kit.clock import FrozenClock, SystemClock, as_utc
from parrain.kit.ids import derived_id, id_timestamp_ms, new_id


def test_a_frozen_clock_moves_only_when_told() -> None:
    clock = FrozenClock(datetime(2026, 3, 1, tzinfo=UTC))
    assert clock.now() == clock.now() == datetime(2026, 3, 1, tzinfo=UTC)
    assert clock.advance(timedelta(hours=24)) == datetime(2026, 3, 2, tzinfo=UTC)
    clock.set(datetime(2027, 1, 1, tzinfo=UTC))
    assert clock.now().year == 2027


def test_clocks_refuse_naive_times() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        FrozenClock(datetime(2026, 3, 1))  # noqa: DTZ001


def test_the_system_clock_is_utc() -> None:
    assert SystemClock().now().utcoffset() == timedelta(0)


def test_naive_database_times_are_read_as_utc() -> None:
    assert as_utc(datetime(2026, 3, 1, 12)) == datetime(2026, 3, 1, 12, tzinfo=UTC)  # noqa: DTZ001


def test_new_ids_are_version_7_and_sort_in_creation_order() -> None:
    ids = [new_id() for _ in range(5000)]
    assert all(i.version == 7 and i.variant == uuid.RFC_4122 for i in ids)
    assert ids == sorted(ids)
    assert len(set(ids)) == 5000
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    assert abs(id_timestamp_ms(ids[-1]) - now_ms) < 5000


def test_derived_ids_are_stable_and_distinct() -> None:
    assert derived_id("reward", 1, "cash") == derived_id("reward", 1, "cash")
    assert derived_id("reward", 1, "cash") != derived_id("reward", 1, "coupon")
    assert derived_id("a", "bc") != derived_id("ab", "c")
