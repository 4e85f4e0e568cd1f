"""Crash safety: a payout worker process killed with SIGKILL at many points while paying
many members; after restarts every member is paid exactly once, at the fake and in the
ledger, and reconciliation is clean.

The worker runs as separate processes (this module's ``__main__``), two at a time, against
the fake in the test process over loopback; a step hook kills each at its N-th step (after a
prepare, a claim, a send whose answer is not recorded yet, a record, a poll, a settlement).
20 processes are started to be killed while paying 1,000 members in batches of 50, two at a
time, each at another step; then two that finish."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

from parrain.db.session import Database
from parrain.kit.clock import FrozenClock
from parrain.payouts.providers.fake import FakePayPal
from parrain.payouts.providers.paypal import PayPalClient
from tests.payouts.test_worker_support import assert_paid_once, reconciled, winners

MEMBERS = 1_000
BATCH_ITEMS = 50
#: The step of a fresh process at which it is killed: two processes at once per pair, 20
#: kills in all, at step numbers that fall on every kind of step as the work progresses.
KILL_AT = ((2, 5), (3, 1), (4, 7), (9, 3), (12, 4), (6, 8), (1, 10), (5, 2), (7, 11), (3, 7))
ROOT = Path(__file__).resolve().parents[2]


def _workers(database_url: str, fake_url: str, *kill_at: int) -> list[tuple[int, str]]:
    """Run one worker process per kill point at once; (exit status, stderr) of each."""
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.payouts.test_worker_crash",
                database_url,
                fake_url,
                str(point),
            ],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PARRAIN_LOG_LEVEL": "warning"},
        )
        for point in kill_at
    ]
    out = []
    for process in processes:
        try:
            _, stderr = process.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()
            _, stderr = process.communicate()
        out.append((process.returncode, stderr))
    return out


def test_killed_workers_pay_every_member_exactly_once(
    database: Database,
    database_url: str,
    clock: FrozenClock,
    fake: FakePayPal,
    client: PayPalClient,
) -> None:
    people = winners(database, clock, MEMBERS)
    fake.settle_after = timedelta(0)
    killed_at: list[str] = []
    for pair in KILL_AT:
        for status, stderr in _workers(database_url, fake.base_url, *pair):
            if status == -signal.SIGKILL:
                killed_at.append(stderr.strip().splitlines()[-1])
            else:
                assert status == 0, stderr[-2000:]
    for status, stderr in _workers(database_url, fake.base_url, 0, 0):
        assert status == 0, stderr[-2000:]
    assert len(killed_at) == 2 * len(KILL_AT), killed_at
    # Killed after each kind of step: PayPal holding a batch whose id we had not recorded
    # (sent), between a poll and its settlement (polled), right after a settlement (applied).
    kinds = ("prepared", "claimed", "sent", "recorded", "polled", "applied")
    assert {f"kill {kind}" for kind in kinds} <= set(killed_at), killed_at
    assert fake.batch_count == MEMBERS // BATCH_ITEMS
    assert_paid_once(database, fake, people)
    assert reconciled(database, client).differences == []


def _main(database_url: str, fake_url: str, kill_at: int) -> None:
    from pydantic import SecretStr

    from parrain.config import DatabaseSettings, PayoutSettings
    from parrain.kit.clock import SystemClock
    from parrain.payouts.providers.fake import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET
    from parrain.payouts.worker import run_round
    from tests.referrals.programme import KEYS

    steps = 0

    def step(name: str) -> None:
        nonlocal steps
        steps += 1
        if steps == kill_at:
            print(f"kill {name}", file=sys.stderr, flush=True)
            os.kill(os.getpid(), signal.SIGKILL)

    settings = PayoutSettings(
        paypal_base_url=fake_url,
        paypal_client_id=DEFAULT_CLIENT_ID,
        paypal_client_secret=SecretStr(DEFAULT_CLIENT_SECRET),
        lease_seconds=1.0,  # a killed worker's batches are taken over a second later
        max_batch_items=BATCH_ITEMS,
    )
    database = Database(DatabaseSettings(url=database_url))
    clock = SystemClock()
    deadline = time.monotonic() + 90
    with PayPalClient(
        base_url=fake_url,
        client_id=DEFAULT_CLIENT_ID,
        client_secret=DEFAULT_CLIENT_SECRET,
        timeout=15.0,
    ) as paypal:
        while time.monotonic() < deadline:
            report = run_round(
                database=database,
                clock=clock,
                client=paypal,
                keys=KEYS,
                settings=settings,
                step=step,
            )
            if report.in_flight_batches == 0:
                database.dispose()
                return
            time.sleep(0.2)
    raise SystemExit("the worker did not finish in time")


if __name__ == "__main__":
    _main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
