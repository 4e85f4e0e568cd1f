"""The ``parrain`` command: global options, the command groups, and ``main()``."""

from __future__ import annotations

from typing import Annotated

import typer
from pydantic import ValidationError

from parrain.cli.commands import (
    apikey,
    audit,
    campaign,
    consent,
    db,
    demo,
    fake_paypal,
    ledger,
    member,
    operator,
    payouts,
    referral,
    worker,
)
from parrain.cli.output import EXIT_REFUSED, describe_validation, error_line, reports_errors
from parrain.cli.state import CliState
from parrain.config import Settings
from parrain.errors import InvalidInput
from parrain.logging import configure_logging

app = typer.Typer(
    name="parrain",
    help="Referral cash-rewards campaigns with consent you can prove.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals may hold a database password
)
app.add_typer(db.app, name="db")
app.add_typer(campaign.app, name="campaign")
app.add_typer(consent.app, name="consent")
app.add_typer(ledger.app, name="ledger")
app.add_typer(audit.app, name="audit")
app.add_typer(referral.app, name="referral")
app.add_typer(member.app, name="member")
app.add_typer(worker.app, name="worker")
app.add_typer(apikey.app, name="apikey")
app.add_typer(payouts.app, name="payouts")
app.add_typer(operator.app, name="operator")
app.command("demo")(demo.demo)
app.command("serve")(demo.serve)
app.command("fake-paypal")(fake_paypal.fake_paypal)


@app.callback()
@reports_errors
def configure(
    ctx: typer.Context,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="SQLAlchemy URL of the database (default: PARRAIN_DATABASE_URL, "
            "else sqlite:///parrain.sqlite3).",
            show_default=False,
        ),
    ] = None,
    actor: Annotated[
        str | None,
        typer.Option(
            "--actor",
            help="Who the audit log names for this command (default: PARRAIN_ACTOR, "
            "else operator:cli).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Referral cash-rewards campaigns with consent you can prove."""
    settings = Settings()
    if database_url is not None:
        settings = settings.model_copy(
            update={"database": settings.database.model_copy(update={"url": database_url})}
        )
    state = CliState(settings=settings, actor=actor if actor is not None else settings.actor)
    ctx.obj = state
    ctx.call_on_close(state.close)


def main() -> None:
    """The console script: configure logging from the environment, then run the command."""
    try:
        configure_logging(Settings().log)
    except ValidationError as error:
        error_line(InvalidInput.code, describe_validation(error))
        raise SystemExit(EXIT_REFUSED) from None
    app()


if __name__ == "__main__":
    main()
