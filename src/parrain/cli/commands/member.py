"""``parrain member``: a member's export and erasure (privacy rights), for an operator acting
on a person's request. The export holds the person's personal data in the clear: it is
written to the file given, or to standard output when asked, never to a log."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from uuid import UUID

import typer

from parrain.cli.output import console, reports_errors, show_moment
from parrain.cli.state import state_of
from parrain.errors import InvalidInput
from parrain.privacy import service as privacy

app = typer.Typer(help="Privacy rights: a member's export and erasure.", no_args_is_help=True)

MemberArgument = Annotated[str, typer.Argument(metavar="MEMBER", help="The member's id.")]


class InvalidMemberId(InvalidInput):
    code = "invalid_member_id"


class OutputRequired(InvalidInput):
    code = "output_required"


class ErasureNotConfirmed(InvalidInput):
    code = "erasure_not_confirmed"


def _member_id(text: str) -> UUID:
    try:
        return UUID(text.strip())
    except ValueError:
        raise InvalidMemberId(f"{text!r} is not a member id (a UUID)", field="member") from None


@app.command()
@reports_errors
def export(
    ctx: typer.Context,
    member: MemberArgument,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Write the export (JSON) to this file; '-' prints it.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Everything parrain holds about a member, as JSON (GDPR Art. 15 and 20)."""
    state = state_of(ctx)
    member_id = _member_id(member)
    if output is None:
        raise OutputRequired(
            "say where the export goes: --output FILE (or --output - to print it)",
            field="output",
        )
    exported = state.database.run(
        lambda session: privacy.export_member(
            session=session,
            member_id=member_id,
            keys=state.member_keys,
            actor=state.actor,
            clock=state.clock,
        )
    )
    text = exported.model_dump_json(indent=2)
    if str(output) == "-":
        typer.echo(text)
        return
    output.write_text(text + "\n", encoding="utf-8")
    output.chmod(0o600)
    console().print(f"Export of member {member_id} written to {output} (readable by you only).")


@app.command()
@reports_errors
def erase(
    ctx: typer.Context,
    member: MemberArgument,
    yes: Annotated[
        bool, typer.Option("--yes", help="Confirm: the personal data cannot be brought back.")
    ] = False,
) -> None:
    """Erase a member by crypto-shredding (GDPR Art. 17); prizes and the ledger stay."""
    state = state_of(ctx)
    member_id = _member_id(member)
    if not yes:
        raise ErasureNotConfirmed("erasure cannot be undone: add --yes to confirm", field="yes")
    erased = state.database.run(
        lambda session: privacy.erase_member(
            session=session, member_id=member_id, actor=state.actor, clock=state.clock
        )
    )
    state.database.truncate_log()
    when = show_moment(erased.erased_at)
    if erased.already_erased:
        console().print(f"Member {member_id} was already erased on {when}.")
    else:
        console().print(
            f"Member {member_id} erased on {when}: their personal data "
            "can no longer be read; their prizes and the ledger are kept."
        )
