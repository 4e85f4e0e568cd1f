"""``parrain payouts``: pay members' cash to PayPal (``run``) and compare our books with
PayPal's (``reconcile``). See docs/adr/0018-payout-worker.md."""

from __future__ import annotations

import signal
import threading
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from parrain.cli.output import EXIT_PROBLEM, console, reports_errors
from parrain.cli.state import state_of
from parrain.kit.money import Money
from parrain.payouts.errors import PayoutsNotConfigured
from parrain.payouts.reconcile import reconcile as reconcile_books
from parrain.payouts.schemas import RoundReport
from parrain.payouts.worker import client_from_settings, run_round

app = typer.Typer(help="Payouts of members' cash to PayPal.", no_args_is_help=True)

_NOT_CONFIGURED = (
    "PayPal is not configured (PARRAIN_PAYOUTS_PAYPAL_BASE_URL, "
    "PARRAIN_PAYOUTS_PAYPAL_CLIENT_ID, PARRAIN_PAYOUTS_PAYPAL_CLIENT_SECRET)"
)


def _summary(report: RoundReport) -> str:
    return (
        f"prepared: {report.prepared_items} items in {report.prepared_batches} batches; "
        f"sent: {report.submitted} batches ({report.recovered} recovered, "
        f"{report.submit_failures} to retry, {report.denied} refused); "
        f"paid: {report.paid}; returned to members: {report.voided}; waiting: {report.waiting}; "
        f"skipped without PayPal receiver: {report.skipped_no_receiver}; "
        f"awaiting a new receiver: {report.awaiting_receiver_fix}; "
        f"below the minimum: {report.below_minimum}; batches in flight: {report.in_flight_batches}"
    )


@app.command()
@reports_errors
def run(
    ctx: typer.Context,
    once: Annotated[bool, typer.Option("--once", help="Run one round, then exit.")] = False,
    interval: Annotated[
        float,
        typer.Option("--interval", min=1.0, max=3600.0, help="Seconds between two rounds."),
    ] = 30.0,
) -> None:
    """Collect members' posted cash into batches, send them to PayPal, poll and settle them.
    Any number of these (and of `parrain worker run`) may run at once."""
    state = state_of(ctx)
    out = console()
    client = client_from_settings(state.settings.payouts, clock=state.clock)
    if client is None:
        out.print(f"{_NOT_CONFIGURED}: nothing to do")
        return
    stop = threading.Event()
    if not once:
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
    with (
        client,
        Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=out,
            transient=True,
        ) as bar,
    ):
        tasks = {
            "send": bar.add_task("sending batches", total=None),
            "poll": bar.add_task("polling batches", total=None),
        }

        def progress(what: str, done: int, total: int) -> None:
            bar.update(tasks[what], completed=done, total=total)

        while True:
            report = run_round(
                database=state.database,
                clock=state.clock,
                client=client,
                keys=state.member_keys,
                settings=state.settings.payouts,
                progress=progress,
            )
            out.print(_summary(report))
            if once or stop.wait(interval):
                return


@app.command()
@reports_errors
def reconcile(ctx: typer.Context) -> None:
    """Compare our payout tables and ledger with PayPal's batches; list every difference.
    Exit status 1 when there is one, 0 when the books agree."""
    state = state_of(ctx)
    out = console()
    client = client_from_settings(state.settings.payouts, clock=state.clock)
    if client is None:
        raise PayoutsNotConfigured(_NOT_CONFIGURED)
    with client:
        report = reconcile_books(database=state.database, client=client)
    totals = Table(
        "currency",
        "paid items",
        "paid",
        "pending items",
        "pending",
        "voided items",
        "taken back items",
        "taken back",
    )
    for total in report.totals:
        totals.add_row(
            total.currency,
            str(total.paid_items),
            Money(total.paid_minor, total.currency).plain(),
            str(total.pending_items),
            Money(total.pending_minor, total.currency).plain(),
            str(total.voided_items),
            str(total.taken_back_items),
            Money(total.taken_back_minor, total.currency).plain(),
        )
    if report.differences:
        for difference in report.differences:  # one line each: easy to grep and diff
            out.print(f"{difference.code}: {difference.message}")
        out.print(totals)
        out.print(
            f"{len(report.differences)} differences in {report.batches} batches, "
            f"{report.items} items"
        )
        raise typer.Exit(EXIT_PROBLEM)
    out.print(totals)
    out.print(f"clean: {report.batches} batches and {report.items} items agree with PayPal")
