from __future__ import annotations

from sqlalchemy import inspect

from parrain.db.migrate import check, current_revision, head_revision
from parrain.db.session import Database


def test_the_database_is_at_the_head_revision(database: Database) -> None:
    assert current_revision(database.engine) == head_revision() == "0012"


def test_the_models_match_the_migrations(database: Database) -> None:
    # alembic check: raises if a model changed without its migration
    check(database.engine)


def test_every_domain_table_exists(database: Database) -> None:
    tables = set(inspect(database.engine).get_table_names())
    assert {
        "ledger_accounts",
        "ledger_transfers",
        "campaigns",
        "audit_entries",
        "audit_head",
    } <= tables
