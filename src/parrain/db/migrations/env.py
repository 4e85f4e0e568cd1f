"""Alembic environment: the same migrations on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy import create_engine

from parrain.db.base import UTCDateTime
from parrain.db.metadata import metadata

config = context.config


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
        with engine.begin() as own_connection:
            _migrate(own_connection)
        engine.dispose()
    else:
        _migrate(connection)


def _render_item(kind: str, item: Any, _context: AutogenContext) -> str | Literal[False]:
    # Migrations must not import application code: UTCDateTime is a timezone-aware DateTime.
    if kind == "type" and isinstance(item, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _migrate(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=metadata,
        render_as_batch=True,  # SQLite alters tables by copying them
        compare_type=True,
        render_item=_render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("parrain runs its migrations online only")
run()
