"""Fixtures: a PayPal fake on 127.0.0.1:0 whose every answer is checked against PayPal's
spec, and a client of it that records its waits instead of sleeping."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from parrain.kit.clock import FrozenClock
from parrain.payouts.providers.fake import FakePayPal
from parrain.payouts.providers.paypal import PayPalClient, RetryPolicy
from tests.payouts.spec_check import SpecRecorder

#: Long enough for a loaded CI machine checking 1,000 items a page against the spec; the
#: tests of timeouts use their own, impatient client.
CLIENT_TIMEOUT = 15.0
IMPATIENT_TIMEOUT = 0.3


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))


@pytest.fixture
def spec_recorder() -> SpecRecorder:
    return SpecRecorder()


@pytest.fixture
def fake(clock: FrozenClock, spec_recorder: SpecRecorder) -> Iterator[FakePayPal]:
    paypal = FakePayPal(clock=clock, hang_seconds=3.0, on_response=spec_recorder)
    with paypal:
        yield paypal
    assert spec_recorder.problems == [], "the fake sent answers that PayPal's spec refuses"


class RecordedSleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> RecordedSleeps:
    return RecordedSleeps()


def impatient_client(
    fake: FakePayPal, clock: FrozenClock, sleeps: RecordedSleeps, *, max_attempts: int = 2
) -> PayPalClient:
    return PayPalClient(
        base_url=fake.base_url,
        client_id="fake-client-id",
        client_secret="fake-client-secret",
        clock=clock,
        sleep=sleeps,
        timeout=IMPATIENT_TIMEOUT,
        retry=RetryPolicy(max_attempts=max_attempts, base_delay=0.1),
    )


@pytest.fixture
def client(fake: FakePayPal, clock: FrozenClock, sleeps: RecordedSleeps) -> Iterator[PayPalClient]:
    with PayPalClient(
        base_url=fake.base_url,
        client_id="fake-client-id",
        client_secret="fake-client-secret",
        clock=clock,
        sleep=sleeps,
        timeout=CLIENT_TIMEOUT,
        retry=RetryPolicy(max_attempts=4, base_delay=0.5, max_delay=8.0, max_retry_after=30.0),
    ) as paypal:
        yield paypal
