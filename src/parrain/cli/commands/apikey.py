"""``parrain apikey``: create, list and revoke the API keys integrations call parrain with.

A key is printed once, when it is created; parrain keeps only a hash of its secret.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import typer
from rich.table import Table
from sqlalchemy.orm import Session

from parrain.access import service as access
from parrain.access.errors import ApiKeyNotFound
from parrain.access.schemas import ApiKeyCreate, ApiKeyRead, ApiKeyScope
from parrain.cli.output import build, console, reports_errors, show_moment
from parrain.cli.state import state_of

app = typer.Typer(
    help="Integration API keys: create (shown once), list, revoke.", no_args_is_help=True
)

#: The option that sets each field of ApiKeyCreate, to name in errors.
OPTION_OF_FIELD = {"name": "--name", "scopes": "--scope"}

_SCOPES = ", ".join(scope.value for scope in ApiKeyScope)


@app.command()
@reports_errors
def create(
    ctx: typer.Context,
    name: Annotated[
        str, typer.Option(help="A unique name for who holds the key, e.g. 'marketplace-backend'.")
    ],
    scope: Annotated[
        list[str] | None,
        typer.Option(
            "--scope",
            help=f"What the key may call ({_SCOPES}); repeat for several.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Create a key and print it once: it cannot be shown again."""
    state = state_of(ctx)
    key_in = build(
        ApiKeyCreate,
        OPTION_OF_FIELD,
        name=name,
        scopes=[part.strip().lower() for part in scope or []],
    )
    created = state.database.run(
        lambda session: access.create_api_key(
            session=session, key_in=key_in, actor=state.actor, clock=state.clock
        )
    )
    api_key = created.api_key
    out = console()
    out.print(
        f"Created API key {api_key.name!r} ({api_key.id}), prefix {api_key.prefix}, "
        f"scopes: {_scopes(api_key)}."
    )
    out.print(created.key)
    out.print(
        "Store this key now: it will not be shown again. Send it as 'Authorization: Bearer <key>'."
    )


@app.command("list")
@reports_errors
def list_(ctx: typer.Context) -> None:
    """List every key, revoked ones included. Secrets are never shown."""
    state = state_of(ctx)
    found = state.database.read(lambda session: access.list_api_keys(session=session))
    if not found:
        console().print("No API keys.")
        return
    table = Table(title="API keys")
    table.add_column("Name", overflow="fold")  # a name is never cut short
    table.add_column("Prefix", no_wrap=True)
    table.add_column("Scopes")
    for moment in ("Created", "Last used", "Revoked"):
        table.add_column(moment)
    for api_key in found:
        table.add_row(
            api_key.name,
            api_key.prefix,
            _scopes(api_key),
            show_moment(api_key.created_at),
            show_moment(api_key.last_used_at),
            show_moment(api_key.revoked_at),
        )
    console().print(table)


@app.command()
@reports_errors
def revoke(
    ctx: typer.Context,
    key: Annotated[
        str,
        typer.Argument(
            metavar="KEY_ID_OR_PREFIX",
            help="The key's id or its prefix (as `parrain apikey list` shows it).",
        ),
    ],
) -> None:
    """Revoke a key for good; calls made with it are refused within seconds."""
    state = state_of(ctx)

    def work(session: Session) -> tuple[ApiKeyRead, bool]:
        target = _resolve(session, key)
        revoked = access.revoke_api_key(
            session=session, key_id=target.id, actor=state.actor, clock=state.clock
        )
        return revoked, target.revoked

    revoked, already = state.database.run(work)
    if already:
        console().print(
            f"API key {revoked.name!r} ({revoked.prefix}) was already revoked "
            f"({show_moment(revoked.revoked_at)})."
        )
        return
    console().print(
        f"Revoked API key {revoked.name!r} ({revoked.prefix}): calls made with it are refused "
        f"within {access.CACHE_SECONDS:g} seconds."
    )


def _resolve(session: Session, reference: str) -> ApiKeyRead:
    """The key whose id or prefix is ``reference`` (``prn_<prefix>`` is read as a prefix)."""
    text = reference.strip()
    try:
        key_id = UUID(text)
    except ValueError:
        pass
    else:
        return access.get_api_key(session=session, key_id=key_id)
    prefix = text.lower().removeprefix(f"{access.KEY_TAG}_").split("_", 1)[0]
    found = access.find_by_prefix(session=session, prefix=prefix)
    if found is None:
        # Only the prefix is echoed: what was typed may hold a secret.
        raise ApiKeyNotFound(f"no API key has the id or prefix {prefix[:40]!r}", prefix=prefix[:40])
    return found


def _scopes(api_key: ApiKeyRead) -> str:
    return ", ".join(scope.value for scope in api_key.scopes)
