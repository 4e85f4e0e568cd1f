"""``parrain operator``: the console's accounts. ``create`` makes the first admin.

The password is read from a hidden prompt, typed twice, or from standard input with
``--password-stdin`` (for scripts); it is never an option, so it stays out of shell history
and process lists. parrain keeps only its argon2id hash.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import typer
from pydantic import SecretStr
from rich.table import Table
from sqlalchemy.orm import Session

from parrain.cli.output import build, console, reports_errors, show_moment
from parrain.cli.state import state_of
from parrain.operators import service as operators
from parrain.operators.errors import OperatorNotFound, UnknownRole, UsernameTaken, WeakPassword
from parrain.operators.roles import Role, parse_role
from parrain.operators.schemas import OperatorCreate, OperatorRead, SessionKind, SignInPolicy

app = typer.Typer(
    help="Console operators: create, list, unlock, disable, enable.", no_args_is_help=True
)

#: The option that sets each field of OperatorCreate, to name in errors.
OPTION_OF_FIELD = {"username": "--username", "password": "password", "role": "--role"}

_ROLES = ", ".join(role.value for role in Role)


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        text = typer.get_text_stream("stdin").readline()
        return text.removesuffix("\n").removesuffix("\r")
    value: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return value


@app.command()
@reports_errors
def create(
    ctx: typer.Context,
    username: Annotated[
        str, typer.Option(help="Unique, any case: 3 to 64 letters, digits and . _ @ -.")
    ],
    role: Annotated[str, typer.Option(help=f"What the operator may do: {_ROLES}.")],
    password_stdin: Annotated[
        bool,
        typer.Option(
            "--password-stdin",
            help="Read the password from the first line of standard input instead of a prompt.",
        ),
    ] = False,
) -> None:
    """Create an operator who signs in to the console (the first one is an admin)."""
    state = state_of(ctx)
    try:
        chosen = parse_role(role)
    except ValueError as error:
        raise UnknownRole(f"--role: {error}", role=role.strip()[:40]) from None
    probe = build(
        OperatorCreate,
        OPTION_OF_FIELD,
        username=username,
        password=SecretStr(""),
        role=chosen,
    )
    if state.database.read(lambda s: operators.find_operator(session=s, username=probe.username)):
        raise UsernameTaken(
            f"an operator called {probe.username!r} already exists", username=probe.username
        )
    password = _read_password(password_stdin)
    if not password:
        raise WeakPassword("no password was given")
    operator_in = probe.model_copy(update={"password": SecretStr(password)})
    created = state.database.run(
        lambda session: operators.create_operator(
            session=session, operator_in=operator_in, actor=state.actor, clock=state.clock
        )
    )
    console().print(
        f"Created operator {created.username!r} ({created.id}) with the role {created.role.value}."
        " They can sign in at /console/sign-in."
    )


@app.command("list")
@reports_errors
def list_(ctx: typer.Context) -> None:
    """List the operators with their role and state. Passwords are never shown."""
    state = state_of(ctx)
    found = state.database.read(lambda session: operators.list_operators(session=session))
    if not found:
        console().print("No operators. Create the first admin with `parrain operator create`.")
        return
    table = Table(title="Operators")
    table.add_column("Username", overflow="fold")
    table.add_column("Role")
    table.add_column("State")
    table.add_column("Created")
    table.add_column("Last sign-in")
    for operator in found:
        table.add_row(
            operator.username,
            operator.role.value,
            "disabled" if operator.disabled else "active",
            show_moment(operator.created_at),
            show_moment(operator.last_sign_in_at),
        )
    console().print(table)


UsernameArgument = Annotated[
    str, typer.Argument(metavar="USERNAME", help="The operator (any case).")
]


def _find(session: Session, username: str) -> OperatorRead:
    found = operators.find_operator(session=session, username=username)
    if found is None:
        raise OperatorNotFound(
            f"no operator is called {username.strip()[:64]!r}", username=username.strip()[:64]
        )
    return found


@app.command()
@reports_errors
def unlock(ctx: typer.Context, username: UsernameArgument) -> None:
    """End a lockout after too many wrong passwords now, instead of waiting for it."""
    state = state_of(ctx)
    done = state.database.run(
        lambda session: operators.unlock(
            session=session,
            operator_id=_find(session, username).id,
            actor=state.actor,
            clock=state.clock,
        )
    )
    console().print(f"Operator {done.username!r} can sign in again.")


def _set_disabled(ctx: typer.Context, username: str, *, disabled: bool) -> OperatorRead:
    state = state_of(ctx)
    return state.database.run(
        lambda session: operators.set_disabled(
            session=session,
            operator_id=_find(session, username).id,
            disabled=disabled,
            actor=state.actor,
            clock=state.clock,
        )
    )


@app.command()
@reports_errors
def disable(ctx: typer.Context, username: UsernameArgument) -> None:
    """Stop an operator from signing in; their open sessions end at once."""
    done = _set_disabled(ctx, username, disabled=True)
    console().print(f"Operator {done.username!r} is disabled and signed out everywhere.")


@app.command()
@reports_errors
def enable(ctx: typer.Context, username: UsernameArgument) -> None:
    """Let a disabled operator sign in again."""
    done = _set_disabled(ctx, username, disabled=False)
    console().print(f"Operator {done.username!r} can sign in again.")


@app.command()
@reports_errors
def token(
    ctx: typer.Context,
    username: UsernameArgument,
    days: Annotated[
        int,
        typer.Option(
            min=1,
            max=operators.MAX_API_TOKEN_LIFETIME.days,
            help="How many days the token lives (it can be revoked sooner: disable the operator).",
        ),
    ] = operators.DEFAULT_API_TOKEN_LIFETIME.days,
) -> None:
    """Print a token for the management API (`Authorization: Bearer <token>`), acting as
    this operator with their role. Shown once; stored hashed; audited."""
    state = state_of(ctx)
    started = state.database.run(
        lambda session: operators.start_session(
            session=session,
            operator_id=_find(session, username).id,
            policy=SignInPolicy.from_settings(state.settings.console),
            clock=state.clock,
            kind=SessionKind.API,
            lifetime=timedelta(days=days),
        )
    )
    typer.echo(started.token)
    typer.echo(
        f"API token of {started.operator.username!r} ({started.operator.role.value}), "
        f"valid until {show_moment(started.session.expires_at)}",
        err=True,
    )
