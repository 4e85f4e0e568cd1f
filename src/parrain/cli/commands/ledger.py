"""``parrain ledger``: the accounts' balances and the proof that the books balance."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from uuid import UUID

import typer
from rich.table import Table
from sqlalchemy.orm import Session

from parrain.campaigns import service as campaigns
from parrain.cli.output import EXIT_PROBLEM, console, parse_currency, reports_errors
from parrain.cli.state import resolve_campaign, state_of
from parrain.kit.money import Money
from parrain.ledger import service as ledger
from parrain.ledger.postings import Account, Delta

app = typer.Typer(help="The double-entry ledger.", no_args_is_help=True)

#: Amounts in the ledger view are shown the same way whatever the campaign's market.
LEDGER_LOCALE = "en_GB"


@dataclass(frozen=True, slots=True)
class LedgerView:
    accounts: list[tuple[str, Account]]
    totals: dict[str, Delta]
    discrepancies: list[str]


def _labels(session: Session) -> dict[UUID, str]:
    """Every campaign account, named after the campaign it belongs to."""
    return {
        account_id: f"{campaign.name} · {kind}"
        for campaign in campaigns.list_campaigns(session=session)
        for kind, account_id in campaign.accounts.model_dump().items()
    }


def _label(account: Account, reference: str | None, labels: dict[UUID, str]) -> str:
    if account.id in labels:
        return labels[account.id]
    if reference == campaigns.funding_account_reference(account.currency):
        return f"operator funding {account.currency}"
    return reference or f"{account.kind} {account.id}"


def _gather(session: Session, *, currency: str | None, campaign: str | None) -> LedgerView:
    code = parse_currency(currency, option="--currency") if currency is not None else None
    only: set[UUID] | None = None
    if campaign is not None:
        target = resolve_campaign(session, campaign)
        only = set(target.accounts.model_dump().values())
        code = code or target.currency
    labels = _labels(session)
    accounts = [
        (_label(account, reference, labels), account)
        for account, reference in ledger.list_accounts(session=session, currency=code)
        if only is None or account.id in only
    ]
    totals = {
        name: total
        for name, total in ledger.balance_totals(session=session).items()
        if code is None or name == code
    }
    return LedgerView(accounts, totals, ledger.find_discrepancies(session=session))


def _money(minor: int, currency: str) -> str:
    return Money(minor, currency).format(LEDGER_LOCALE)


@app.command()
@reports_errors
def balance(
    ctx: typer.Context,
    currency: Annotated[
        str | None, typer.Option(help="Only accounts in this currency, e.g. GBP.")
    ] = None,
    campaign: Annotated[
        str | None,
        typer.Option(help="Only this campaign's accounts (its name or id).", show_default=False),
    ] = None,
) -> None:
    """Every account's four balances, the totals per currency, and whether the books balance.

    Exits 1 if a stored balance disagrees with the transfers or debits differ from credits.
    """
    state = state_of(ctx)
    view = state.database.read(
        lambda session: _gather(session, currency=currency, campaign=campaign)
    )
    out = console()
    if view.accounts:
        table = Table(title="Ledger accounts")
        table.add_column("Account")
        for heading in ("Debits\npending", "Debits\nposted", "Credits\npending", "Credits\nposted"):
            table.add_column(heading, justify="right", no_wrap=True)
        for label, account in view.accounts:
            table.add_row(
                label,
                _money(account.debits_pending, account.currency),
                _money(account.debits_posted, account.currency),
                _money(account.credits_pending, account.currency),
                _money(account.credits_posted, account.currency),
            )
        out.print(table)
    else:
        out.print("No ledger accounts.")
    for code, total in sorted(view.totals.items()):
        balanced = (
            total.debits_posted == total.credits_posted
            and total.debits_pending == total.credits_pending
        )
        out.print(
            f"{code}: debits {_money(total.debits_posted, code)} posted, "
            f"{_money(total.debits_pending, code)} pending; credits "
            f"{_money(total.credits_posted, code)} posted, "
            f"{_money(total.credits_pending, code)} pending: "
            + ("balanced" if balanced else "NOT balanced")
        )
    if view.discrepancies:
        out.print(f"{len(view.discrepancies)} discrepancies in the books:")
        for problem in view.discrepancies:
            out.print(f"  - {problem}")
        raise typer.Exit(EXIT_PROBLEM)
    out.print("Books balanced: every stored balance matches its transfers.")
