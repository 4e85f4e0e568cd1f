"""``parrain worker``: the background jobs (applying the events received for later (ADR
28), voiding timed-out pending transfers, posting held rewards whose holding period has
passed (and issuing their coupons), expiring consents and coupons whose time is up, erasing
members whose retention has passed and discarding queued events set aside too long
(hourly), delivering the outbox's webhooks)."""

from __future__ import annotations

import signal
import threading
from datetime import timedelta
from typing import Annotated

import httpx
import typer

from parrain.cli.output import EXIT_REFUSED, console, report_refusal, reports_errors
from parrain.cli.state import state_of
from parrain.kit.errors import KeysNotConfigured
from parrain.worker.jobs import (
    DrainRound,
    deliver_webhooks,
    discard_parked_events,
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
    """Run the jobs in rounds until stopped (Ctrl-C or SIGTERM finishes the round first).

    With events queued and no master key configured, each round says so on stderr and
    runs the other jobs; the worker then exits with status 2 when it stops."""
    state = state_of(ctx)
    out = console()
    stop = threading.Event()
    if not once:
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
    next_sweep = state.clock.now()
    with httpx.Client() as client:
        while True:
            try:
                drained: DrainRound | None = drain_queued_events(
                    database=state.database,
                    keys=lambda: state.member_keys,
                    clock=state.clock,
                    batch_size=state.settings.referrals.drain_batch_size,
                )
            except KeysNotConfigured as error:
                # Said on stderr every round; the other jobs need no key and still run.
                report_refusal(error)
                drained = None
            expired = expire_pending_transfers(database=state.database, clock=state.clock)
            released = release_held_rewards(database=state.database, clock=state.clock)
            consents = expire_consents(database=state.database, clock=state.clock)
            expired_coupons = expire_coupons(database=state.database, clock=state.clock)
            erased = discarded = 0
            if state.clock.now() >= next_sweep:  # the retention sweep reads every member
                erased = sweep_retention(
                    database=state.database,
                    clock=state.clock,
                    default_days=state.settings.consent.max_days,
                )
                discarded = discard_parked_events(
                    database=state.database,
                    clock=state.clock,
                    keep_days=state.settings.referrals.parked_keep_days,
                )
                next_sweep = state.clock.now() + RETENTION_SWEEP_EVERY
            hooks = deliver_webhooks(
                database=state.database,
                clock=state.clock,
                settings=state.settings.webhooks,
                client=client,
            )
            out.print(
                f"{_drained(drained)}; "
                f"expired pending transfers: {expired}; rewards posted: {released}; "
                f"consents expired: {consents}; coupons expired: {expired_coupons}; "
                f"members erased (retention): {erased}; "
                f"events set aside too long, discarded: {discarded}; "
                f"webhooks delivered: {hooks.delivered}, failed: {hooks.failed}, "
                f"waiting: {hooks.waiting}"
            )
            if once or stop.wait(interval):
                if drained is None:  # the last round could not apply the queued events
                    raise typer.Exit(EXIT_REFUSED)
                return


def _drained(drained: DrainRound | None) -> str:
    if drained is None:
        return "queued events not applied (no master key configured, see the error above)"
    stalled = ", stalled: every event tried failed, see the log" if drained.stalled else ""
    return (
        f"queued events applied: {drained.applied} (failed: {drained.failed}, "
        f"waiting: {drained.waiting}, set aside: {drained.parked}{stalled})"
    )
