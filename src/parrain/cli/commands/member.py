"""``parrain member``: a member's export and erasure (privacy rights), for an operator acting
on a person's request. The export holds the person's personal data in the clear: it is
written to the file given, or to standard output when asked, never to a log.

``parrain member token`` mints the link to a person's member pages, as the marketplace's
backend does (docs/member-tokens.md): for the demo and for support. Each one is audited."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from uuid import UUID

import typer

from parrain.audit import service as audit
from parrain.cli.output import console, reports_errors, show_moment
from parrain.cli.state import state_of
from parrain.errors import InvalidInput
from parrain.members import service as members
from parrain.members.tokens import MAX_LIFETIME_SECONDS, mint_member_token
from parrain.privacy import service as privacy

app = typer.Typer(
    help="Privacy rights (a member's export and erasure); links to a member's pages.",
    no_args_is_help=True,
)

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


@app.command()
@reports_errors
def token(
    ctx: typer.Context,
    user: Annotated[
        str,
        typer.Argument(metavar="USER", help="The marketplace's own user id of the person."),
    ],
    market: Annotated[
        str, typer.Option("--market", help="The person's market (ISO 3166 code: GB, FR...).")
    ],
    lifetime: Annotated[
        int,
        typer.Option(
            "--lifetime",
            min=30,
            max=MAX_LIFETIME_SECONDS,
            help="How long the link works, in seconds (at most ten minutes).",
        ),
    ] = 300,
    base_url: Annotated[
        str | None,
        typer.Option(
            "--base-url",
            help="Where the pages are served; default PARRAIN_REFERRALS_LINK_BASE_URL.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Print a link that opens USER's member pages, signed with PARRAIN_MEMBERS_TOKEN_SECRET.

    Whoever holds the link is that person on the pages until it expires: hand it to them
    only. The minting is written to the audit log (who, which market, never the user id).
    """
    state = state_of(ctx)
    settings = state.settings
    secret = settings.members.token_secret_bytes(settings.crypto)
    now = state.clock.now()
    try:
        minted = mint_member_token(
            secret=secret, subject=user.strip(), market=market, now=now, lifetime_seconds=lifetime
        )
    except ValueError as problem:
        raise InvalidInput(str(problem), field="market") from None
    user_hash = members.marketplace_user_hash(state.member_keys, user.strip())
    state.database.run(
        lambda session: audit.record(
            session=session,
            actor=state.actor,
            action="member.token_minted",
            subject=f"marketplace_user:{user_hash}",
            details={"market": market.upper(), "lifetime_seconds": lifetime},
            clock=state.clock,
        )
    )
    base = (base_url or settings.referrals.link_base_url).rstrip("/")
    typer.echo(f"{base}/m/enter?token={minted}")
    console().print(f"The link works for {lifetime} seconds.", style="dim")
