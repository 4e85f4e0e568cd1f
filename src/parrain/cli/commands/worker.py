"""``parrain worker``: the background jobs (applying the events received for later (ADR
28), voiding timed-out pending transfers, posting held rewards whose holding period has
passed (and issuing their coupons), expiring consents and coupons whose time is up, erasing
members whose retention has passed (hourly), delivering the outbox's webhooks)."""

from __future__ import annotations

import signal
import threading
from datetime import timedelta
from typing import Annotated

import httpx
import typer

from parrain.cli.output import console, reports_errors
from parrain.cli.state import state_of
from parrain.worker.jobs import (
    deliver_webhooks,
    drain_queued_events,
    expire_consents,
    expire_coupons,
    expire_pending_transfers,
    release_held_rewards,
    sweep_retention,
)

app = typer.Typer(help="Background jobs.", no_args_is_help=True)

#: How often a running worker sweeps for members whose retention has passed.
RETENTION_SWEEP_EVERY = timedelta(hours=1)


@app.command()
@reports_errors
def run(
    ctx: typer.Context,
    once: Annotated[bool, typer.Option("--once", help="Run every job once, then exit.")] = False,
    interval: Annotated[
        float,
        typer.Option("--interval", min=1.0, max=3600.0, help="Seconds between two rounds."),
    ] = 30.0,
) -> None:
    """Run the jobs in rounds until stopped (Ctrl-C or SIGTERM finishes the round first)."""
    state = state_of(ctx)
    out = console()
    stop = threading.Event()
    if not once:
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
    next_sweep = state.clock.now()
    with httpx.Client() as client:
        while True:
            drained = drain_queued_events(
                database=state.database,
                keys=lambda: state.member_keys,
                clock=state.clock,
                batch_size=state.settings.referrals.drain_batch_size,
            )
            expired = expire_pending_transfers(database=state.database, clock=state.clock)
            released = release_held_rewards(database=state.database, clock=state.clock)
            consents = expire_consents(database=state.database, clock=state.clock)
            expired_coupons = expire_coupons(database=state.database, clock=state.clock)
            erased = 0
            if state.clock.now() >= next_sweep:  # the retention sweep reads every member
                erased = sweep_retention(
                    database=state.database,
                    clock=state.clock,
                    default_days=state.settings.consent.max_days,
                )
                next_sweep = state.clock.now() + RETENTION_SWEEP_EVERY
            hooks = deliver_webhooks(
                database=state.database,
                clock=state.clock,
                settings=state.settings.webhooks,
                client=client,
            )
            out.print(
                f"queued events applied: {drained.applied} (failed: {drained.failed}, "
                f"waiting: {drained.waiting}, set aside: {drained.parked}"
                f"{', stalled: every event tried failed, see the log' if drained.stalled else ''}"
                "); "
                f"expired pending transfers: {expired}; rewards posted: {released}; "
                f"consents expired: {consents}; coupons expired: {expired_coupons}; "
                f"members erased (retention): {erased}; "
                f"webhooks delivered: {hooks.delivered}, failed: {hooks.failed}, "
                f"waiting: {hooks.waiting}"
            )
            if once or stop.wait(interval):
                return
