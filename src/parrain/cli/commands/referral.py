"""``parrain referral``: enrol a member in a campaign, look up a sponsorship code, show a
member's progress. Personal data typed here is encrypted before it is stored and never
printed back."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import typer
from rich.table import Table
from sqlalchemy.orm import Session

from parrain.cli.output import build, console, reports_errors, show_moment
from parrain.cli.state import resolve_campaign, state_of
from parrain.errors import InvalidInput
from parrain.members.schemas import MemberCreate
from parrain.referrals import queue as event_queue
from parrain.referrals import service as referrals
from parrain.referrals.schemas import EnrolmentCreate, EnrolmentRead, ProgressRead

app = typer.Typer(help="Members' enrolments, sponsorship codes and progress.", no_args_is_help=True)

OPTION_OF_FIELD = {
    "member.market": "--market",
    "member.marketplace_user_id": "--user-id",
    "member.email": "--email",
    "member.username": "--username",
    "member.photo_ref": "--photo",
    "member.paypal_receiver": "--paypal",
}

EnrolmentArgument = Annotated[
    str,
    typer.Argument(
        metavar="ENROLMENT", help="The enrolment's id, or its sponsorship code as typed."
    ),
]


@app.command()
@reports_errors
def enrol(
    ctx: typer.Context,
    campaign: Annotated[str, typer.Argument(help="The campaign's exact name or its id.")],
    user_id: Annotated[str, typer.Option(help="The member's marketplace user id.")],
    email: Annotated[str, typer.Option(help="The member's email address.")],
    username: Annotated[str, typer.Option(help="The member's public username.")],
    photo: Annotated[
        str | None, typer.Option(help="Reference of the profile photo.", show_default=False)
    ] = None,
    paypal: Annotated[
        str | None, typer.Option(help="PayPal receiver for cash rewards.", show_default=False)
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the enrolment as JSON.")] = False,
) -> None:
    """Enrol a member in a live campaign of their market and print their link."""
    state = state_of(ctx)
    keys = state.member_keys
    link_base = state.settings.referrals.link_base_url

    def work(session: Session) -> EnrolmentRead:
        found = resolve_campaign(session, campaign)
        enrolment_in = build(
            EnrolmentCreate,
            OPTION_OF_FIELD,
            member=build(
                MemberCreate,
                {name.removeprefix("member."): option for name, option in OPTION_OF_FIELD.items()},
                market=found.market,
                marketplace_user_id=user_id,
                email=email,
                username=username,
                photo_ref=photo,
                paypal_receiver=paypal,
            ),
        )
        return referrals.enrol(
            session=session,
            campaign_id=found.id,
            enrolment_in=enrolment_in,
            keys=keys,
            clock=state.clock,
            link_base_url=link_base,
        )

    enrolment = state.database.run(work)
    if as_json:
        typer.echo(enrolment.model_dump_json(indent=2))
        return
    console().print(
        f"Enrolled ({enrolment.id}). Code {enrolment.code_display}, link {enrolment.link}; "
        f"friends count until {show_moment(enrolment.deadline_at)}."
    )


def _enrolment_id(session: Session, reference: str, link_base: str) -> UUID:
    text = reference.strip()
    try:
        return UUID(text)
    except ValueError:
        pass
    if not text:
        raise InvalidInput("ENROLMENT: give an enrolment id or a sponsorship code")
    return referrals.find_enrolment_by_code(
        session=session, code_text=text, link_base_url=link_base
    ).id


@app.command()
@reports_errors
def progress(
    ctx: typer.Context,
    enrolment: EnrolmentArgument,
    as_json: Annotated[bool, typer.Option("--json", help="Print the progress as JSON.")] = False,
) -> None:
    """A member's progress: friends so far, the deadline, the reward's state."""
    state = state_of(ctx)
    link_base = state.settings.referrals.link_base_url

    def work(session: Session) -> ProgressRead:
        return referrals.progress(
            session=session,
            enrolment_id=_enrolment_id(session, enrolment, link_base),
            clock=state.clock,
            link_base_url=link_base,
        )

    read = state.database.read(work)
    if as_json:
        typer.echo(read.model_dump_json(indent=2))
        return
    out = console()
    deadline = "passed" if read.deadline_passed else "open"
    out.print(
        f"Code {read.enrolment.code_display}: {read.friends_counted} of {read.friends_needed} "
        f"friends; deadline {show_moment(read.enrolment.deadline_at)} ({deadline}); "
        f"campaign {read.campaign_status}."
    )
    if read.friends:
        table = Table(title="Friends")
        for column in ("Friend", "Signed up", "Status", "Why", "Counts"):
            table.add_column(column)
        for friend in read.friends:
            table.add_row(
                str(friend.id)[:8],
                show_moment(friend.signed_up_at),
                friend.status,
                friend.reason or "",
                "yes" if friend.counts else "no",
            )
        out.print(table)
    out.print(read.reward.message if read.reward else "No reward yet.")


@app.command()
@reports_errors
def queued(
    ctx: typer.Context,
    retry_parked: Annotated[
        bool,
        typer.Option(
            "--retry-parked",
            help="Give the events left aside after failed drains their attempts back, so "
            "the next drain tries them again (once what failed them is mended).",
        ),
    ] = False,
) -> None:
    """The marketplace events received for later and not applied yet (ADR 28): waiting for
    a drain, and left aside after failing too many drains (discarded by ``parrain worker``
    once received more than PARRAIN_REFERRALS_PARKED_KEEP_DAYS ago)."""
    state = state_of(ctx)
    out = console()
    if retry_parked:
        count = state.database.run(lambda session: event_queue.retry_parked(session=session))
        out.print(f"events given their attempts back: {count}")
    counts = state.database.read(lambda session: event_queue.queue_counts(session=session))
    out.print(f"queued events waiting: {counts.waiting}; set aside: {counts.parked}")
