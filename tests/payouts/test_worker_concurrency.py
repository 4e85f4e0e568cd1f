"""Two workers at once: each member is paid once."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

from parrain.db.session import Database
from parrain.kit.clock import FrozenClock
from parrain.payouts.providers.fake import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, FakePayPal
from parrain.payouts.providers.paypal import PayPalClient
from tests.payouts.test_worker_support import (
    assert_paid_once,
    reconciled,
    run,
    settings_for,
    winners,
)


def test_two_workers_at_once_pay_each_member_once(
    database: Database, clock: FrozenClock, fake: FakePayPal, client: PayPalClient
) -> None:
    people = winners(database, clock, 40)
    fake.settle_after = timedelta(0)
    settings = settings_for(fake, max_batch_items=4)
    errors: list[BaseException] = []
    rounds: dict[str, int] = {}

    def worker(name: str) -> None:
        try:
            with PayPalClient(
                base_url=fake.base_url,
                client_id=DEFAULT_CLIENT_ID,
                client_secret=DEFAULT_CLIENT_SECRET,
                clock=clock,
                timeout=15.0,
            ) as own:
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    rounds[name] = rounds.get(name, 0) + 1
                    report = run(database, clock, own, settings, owner=name)
                    if report.in_flight_batches == 0:
                        return
                    time.sleep(0.01)
                raise AssertionError(f"{name} did not finish")
        except BaseException as error:  # reported by the main thread
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(f"w{n}",)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=90)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    assert fake.batch_count == 10
    assert_paid_once(database, fake, people)
    assert reconciled(database, client).differences == []
