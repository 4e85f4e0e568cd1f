from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import text

from parrain.access import service
from parrain.access.errors import (
    ApiKeyNameTaken,
    ApiKeyNotFound,
    ApiKeyScopeDenied,
    InvalidApiKey,
)
from parrain.access.schemas import ApiKeyCreate, ApiKeyRead, ApiKeyScope, CreatedApiKey
from parrain.audit import service as audit
from parrain.db.session import Database
from parrain.kit.clock import FrozenClock
from parrain.kit.ids import new_id

ACTOR = "operator:test"
KEY_FORMAT = re.compile(r"prn_[0-9a-hjkmnp-tv-z]{8}_[A-Za-z0-9_-]{43}")


def create(
    database: Database, clock: FrozenClock, name: str = "marketplace-backend", **changes: Any
) -> CreatedApiKey:
    fields: dict[str, Any] = {"name": name, "scopes": ["events"]}
    fields.update(changes)
    key_in = ApiKeyCreate.model_validate(fields)
    return database.run(
        lambda s: service.create_api_key(session=s, key_in=key_in, actor=ACTOR, clock=clock)
    )


def authenticate(
    database: Database, clock: FrozenClock, presented: str, scope: str = "events"
) -> ApiKeyRead:
    return database.run(
        lambda s: service.authenticate(session=s, presented=presented, scope=scope, clock=clock)
    )


def revoke(database: Database, clock: FrozenClock, created: CreatedApiKey) -> ApiKeyRead:
    return database.run(
        lambda s: service.revoke_api_key(
            session=s, key_id=created.api_key.id, actor=ACTOR, clock=clock
        )
    )


def stored_row(database: Database) -> dict[str, Any]:
    return database.read(lambda s: dict(s.execute(text("SELECT * FROM api_keys")).mappings().one()))


def test_a_created_key_is_shown_once_in_full_and_stored_only_as_a_hash(
    database: Database, clock: FrozenClock
) -> None:
    created = create(database, clock, scopes=["consent", "events"])
    assert KEY_FORMAT.fullmatch(created.key)
    read = created.api_key
    assert read.name == "marketplace-backend"
    assert created.key.startswith(f"prn_{read.prefix}_")
    assert read.scopes == [ApiKeyScope.CONSENT, ApiKeyScope.EVENTS]
    assert read.created_at == clock.now()
    assert read.last_used_at is None
    assert read.revoked_at is None
    assert read.id.version == 7
    assert created.key not in repr(created)

    row = stored_row(database)
    secret = created.key.split("_", 2)[2]
    assert row["secret_hash"] == service.hash_secret(secret)
    assert re.fullmatch(r"[0-9a-f]{64}", row["secret_hash"])
    assert secret not in json.dumps({k: str(v) for k, v in row.items()})


def test_two_keys_have_different_prefixes_and_secrets(
    database: Database, clock: FrozenClock
) -> None:
    first = create(database, clock, "one")
    second = create(database, clock, "two")
    assert first.api_key.prefix != second.api_key.prefix
    assert first.key.split("_", 2)[2] != second.key.split("_", 2)[2]


def test_the_right_key_authenticates_and_notes_its_use_at_most_once_a_minute(
    database: Database, clock: FrozenClock
) -> None:
    created = create(database, clock)
    first_use = clock.advance(timedelta(hours=1))
    read = authenticate(database, clock, created.key)
    assert read.id == created.api_key.id
    assert read.last_used_at == first_use
    assert read.actor == f"api_key:{created.api_key.prefix}"

    clock.advance(timedelta(seconds=59))
    assert authenticate(database, clock, created.key).last_used_at == first_use
    assert stored_row(database)["last_used_at"] is not None

    later = clock.advance(timedelta(seconds=1))
    assert authenticate(database, clock, created.key).last_used_at == later
    listed = database.read(lambda s: service.list_api_keys(session=s))
    assert [key.last_used_at for key in listed] == [later]


def test_record_use_false_writes_nothing(database: Database, clock: FrozenClock) -> None:
    created = create(database, clock)
    read = database.read(
        lambda s: service.authenticate(
            session=s, presented=created.key, scope="events", clock=clock, record_use=False
        )
    )
    assert read.last_used_at is None
    assert stored_row(database)["last_used_at"] is None


def test_an_unknown_key_is_refused(database: Database, clock: FrozenClock) -> None:
    create(database, clock)
    unknown = "prn_abcdefgh_" + "A" * 43
    with pytest.raises(InvalidApiKey) as caught:
        authenticate(database, clock, unknown)
    assert caught.value.code == "invalid_api_key"
    assert caught.value.status_code == 401
    assert caught.value.message == "the API key is not valid"


def test_a_tampered_secret_is_refused(database: Database, clock: FrozenClock) -> None:
    created = create(database, clock)
    last = created.key[-1]
    tampered = created.key[:-1] + ("B" if last != "B" else "C")
    with pytest.raises(InvalidApiKey, match="not valid"):
        authenticate(database, clock, tampered)
    # The prefix of one key with the secret of another is no key either.
    other = create(database, clock, "other")
    mixed = f"prn_{created.api_key.prefix}_{other.key.split('_', 2)[2]}"
    with pytest.raises(InvalidApiKey, match="not valid"):
        authenticate(database, clock, mixed)
    assert stored_row_count(database) == 2


def stored_row_count(database: Database) -> int:
    return int(database.read(lambda s: s.execute(text("SELECT COUNT(*) FROM api_keys")).scalar()))


@pytest.mark.parametrize(
    "presented",
    [
        "",
        "prn_",
        "Bearer prn_abcdefgh_" + "A" * 43,
        "prn_ABCDEFGH_" + "A" * 43,  # the prefix is lower case
        "prn_abcdefgi_" + "A" * 43,  # i is not in Crockford's alphabet
        "prn_abcdefg_" + "A" * 43,
        "prn_abcdefgh_" + "A" * 42,
        "prn_abcdefgh_" + "A" * 44,
        "prn_abcdefgh_" + "A" * 42 + "=",
        "xyz_abcdefgh_" + "A" * 43,
        "prn_abcdefgh_" + "A" * 10_000,
        " prn_abcdefgh_" + "A" * 43,
    ],
)
def test_a_malformed_key_is_refused_before_any_lookup(presented: str) -> None:
    with pytest.raises(InvalidApiKey, match="malformed") as caught:
        service.parse_api_key(presented)
    assert caught.value.code == "invalid_api_key"
    assert presented[5:] not in caught.value.message or not presented[5:]


def test_a_malformed_key_is_refused_by_authenticate(database: Database, clock: FrozenClock) -> None:
    created = create(database, clock)
    with pytest.raises(InvalidApiKey, match="malformed"):
        authenticate(database, clock, created.key + "x")


def test_a_revoked_key_is_refused_and_says_so(database: Database, clock: FrozenClock) -> None:
    created = create(database, clock)
    authenticate(database, clock, created.key)
    revoked_at = clock.advance(timedelta(days=2))
    revoked = revoke(database, clock, created)
    assert revoked.revoked_at == revoked_at
    assert revoked.revoked
    with pytest.raises(InvalidApiKey, match="was revoked") as caught:
        authenticate(database, clock, created.key)
    assert caught.value.status_code == 401
    assert caught.value.details["prefix"] == created.api_key.prefix
    # Without the secret, a revoked key is just not valid.
    wrong = f"prn_{created.api_key.prefix}_" + "A" * 43
    with pytest.raises(InvalidApiKey, match="not valid"):
        authenticate(database, clock, wrong)


def test_revoking_twice_is_fine_and_keeps_the_first_time(
    database: Database, clock: FrozenClock
) -> None:
    created = create(database, clock)
    first = revoke(database, clock, created)
    clock.advance(timedelta(hours=1))
    again = revoke(database, clock, created)
    assert again == first
    actions = [entry.action for entry in audit_entries(database)]
    assert actions == ["access.api_key_created", "access.api_key_revoked"]


def test_revoking_an_unknown_key_is_not_found(database: Database, clock: FrozenClock) -> None:
    missing = new_id()
    with pytest.raises(ApiKeyNotFound) as caught:
        database.run(
            lambda s: service.revoke_api_key(session=s, key_id=missing, actor=ACTOR, clock=clock)
        )
    assert caught.value.status_code == 404
    assert caught.value.code == "api_key_not_found"


def test_a_key_without_the_scope_is_denied(database: Database, clock: FrozenClock) -> None:
    created = create(database, clock, scopes=["consent"])
    with pytest.raises(ApiKeyScopeDenied) as caught:
        authenticate(database, clock, created.key, scope="events")
    assert caught.value.code == "api_key_scope_denied"
    assert caught.value.status_code == 403
    assert caught.value.details == {"scope": "events", "granted": ["consent"]}
    assert stored_row(database)["last_used_at"] is None
    assert authenticate(database, clock, created.key, scope="consent").id == created.api_key.id


def test_an_unknown_scope_is_a_programming_error(database: Database, clock: FrozenClock) -> None:
    created = create(database, clock)
    with pytest.raises(ValueError, match="unknown API key scope 'payouts'"):
        authenticate(database, clock, created.key, scope="payouts")


def test_a_duplicate_name_is_refused(database: Database, clock: FrozenClock) -> None:
    create(database, clock, "marketplace-backend")
    with pytest.raises(ApiKeyNameTaken) as caught:
        create(database, clock, " marketplace-backend ", scopes=["consent"])
    assert caught.value.code == "api_key_name_taken"
    assert caught.value.status_code == 409
    assert stored_row_count(database) == 1


@pytest.mark.parametrize(
    "fields",
    [
        {"name": "", "scopes": ["events"]},
        {"name": "   ", "scopes": ["events"]},
        {"name": "x" * 81, "scopes": ["events"]},
        {"name": "tab\there", "scopes": ["events"]},
        {"name": "backend", "scopes": []},
        {"name": "backend", "scopes": ["payouts"]},
        {"name": "backend", "scopes": ["events", "events"]},
        {"name": "backend", "scopes": ["events"], "secret": "mine"},
    ],
)
def test_bad_input_is_refused(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        ApiKeyCreate.model_validate(fields)


def test_a_name_of_80_characters_is_accepted(database: Database, clock: FrozenClock) -> None:
    assert create(database, clock, "n" * 80).api_key.name == "n" * 80


def audit_entries(database: Database) -> list[Any]:
    return database.read(lambda s: audit.list_entries(session=s))


def test_creating_and_revoking_are_audited_without_the_secret(
    database: Database, clock: FrozenClock
) -> None:
    created = create(database, clock, scopes=["events", "consent"])
    revoke(database, clock, created)
    entries = audit_entries(database)
    assert [(e.actor, e.action, e.subject) for e in entries] == [
        (ACTOR, "access.api_key_created", f"api_key:{created.api_key.id}"),
        (ACTOR, "access.api_key_revoked", f"api_key:{created.api_key.id}"),
    ]
    assert json.loads(entries[0].details) == {
        "name": "marketplace-backend",
        "prefix": created.api_key.prefix,
        "scopes": ["consent", "events"],
    }
    assert json.loads(entries[1].details) == {
        "name": "marketplace-backend",
        "prefix": created.api_key.prefix,
    }
    secret = created.key.split("_", 2)[2]
    secret_hash = service.hash_secret(secret)
    for entry in entries:
        for value in (entry.details, entry.subject, entry.actor):
            assert secret not in value
            assert secret_hash not in value
    assert database.read(lambda s: audit.verify_chain(session=s)).intact


def test_a_failed_create_writes_no_audit_entry(database: Database, clock: FrozenClock) -> None:
    create(database, clock)
    with pytest.raises(ApiKeyNameTaken):
        create(database, clock)
    assert len(audit_entries(database)) == 1


def test_keys_are_listed_oldest_first_revoked_included(
    database: Database, clock: FrozenClock
) -> None:
    first = create(database, clock, "first")
    clock.advance(timedelta(minutes=1))
    second = create(database, clock, "second", scopes=["consent"])
    revoke(database, clock, first)
    listed = database.read(lambda s: service.list_api_keys(session=s))
    assert [key.name for key in listed] == ["first", "second"]
    assert listed[0].revoked
    assert not listed[1].revoked
    assert listed[1] == second.api_key
    found = database.read(lambda s: service.find_by_prefix(session=s, prefix=second.api_key.prefix))
    assert found == second.api_key
    assert database.read(lambda s: service.find_by_prefix(session=s, prefix="zzzzzzzz")) is None
