"""``parrain audit``: verify the tamper-evident audit chain."""

from __future__ import annotations

import typer

from parrain.audit import service as audit
from parrain.cli.output import EXIT_PROBLEM, console, reports_errors
from parrain.cli.state import state_of

app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)


@app.command()
@reports_errors
def verify(ctx: typer.Context) -> None:
    """Recompute the whole hash chain; exit 1 and name each edited, deleted or reordered
    entry if it is broken."""
    state = state_of(ctx)
    report = state.database.read(lambda session: audit.verify_chain(session=session))
    out = console()
    if report.intact:
        out.print(f"{report.entries} entries checked: the audit chain is intact.")
        return
    out.print(
        f"{report.entries} entries checked: the audit chain is BROKEN "
        f"({len(report.breaks)} {'break' if len(report.breaks) == 1 else 'breaks'})."
    )
    for chain_break in report.breaks:
        out.print(f"  #{chain_break.seq} {chain_break.kind.value}: {chain_break.message}")
    raise typer.Exit(EXIT_PROBLEM)
