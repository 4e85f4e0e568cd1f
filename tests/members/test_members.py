from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from uuid import UUID

import pytest
import structlog
from pydantic import ValidationError
from sqlalchemy import func, select, text, update

from parrain.config import CryptoSettings, LogSettings
from parrain.db.session import Database
from parrain.kit.clock import FrozenClock
from parrain.kit.crypto import (
    LookupKey,
    MasterKey,
    MasterKeyring,
    development_keyring,
    development_lookup_key,
)
from parrain.kit.errors import DecryptionFailed, UnknownKeyId
from parrain.kit.pii import MASK, Pii
from parrain.logging import configure_logging, get_logger
from parrain.members import service
from parrain.members.errors import MemberErased, MemberNotFound
from parrain.members.models import Member
from parrain.members.schemas import MemberCreate, MemberRead, PaypalReceiverUpdate
from parrain.members.service import MemberKeys

KEYS = MemberKeys(keyring=development_keyring(), lookup=development_lookup_key())

USER_ID = "mkt-user-8812734"
EMAIL = "Ann.Lee+cash@Example.org"
USERNAME = "annlee_vintage"
PHOTO = "https://cdn.example.org/u/8812734/avatar.jpg"
PAYPAL = "ann.lee.payouts@example.net"
PLAINTEXTS = (USER_ID, EMAIL, USERNAME, PHOTO, PAYPAL, EMAIL.lower())


def ann(**changes: Any) -> MemberCreate:
    fields: dict[str, Any] = {
        "market": "GB",
        "marketplace_user_id": USER_ID,
        "email": EMAIL,
        "username": USERNAME,
        "photo_ref": PHOTO,
        "paypal_receiver": PAYPAL,
    }
    fields.update(changes)
    return MemberCreate.model_validate(fields)


def register(database: Database, clock: FrozenClock, member_in: MemberCreate) -> MemberRead:
    return database.run(
        lambda session: service.register_member(
            session=session, member_in=member_in, keys=KEYS, clock=clock
        )
    )


def get(database: Database, member_id: UUID, keys: MemberKeys = KEYS) -> MemberRead:
    return database.read(
        lambda session: service.get_member(session=session, member_id=member_id, keys=keys)
    )


def count_members(database: Database) -> int:
    return database.read(
        lambda session: session.scalars(select(func.count()).select_from(Member)).one()
    )


def test_a_registered_member_reads_back_every_field(database: Database, clock: FrozenClock) -> None:
    created = register(database, clock, ann())
    read = get(database, created.id)
    assert read == created
    assert read.id.version == 7
    assert read.market == "GB"
    assert read.marketplace_user_id.reveal() == USER_ID
    assert read.email.reveal() == EMAIL
    assert read.username.reveal() == USERNAME
    assert read.photo_ref == Pii(PHOTO)
    assert read.paypal_receiver == Pii(PAYPAL)
    assert read.created_at == read.updated_at == clock.now()


def test_optional_fields_may_be_left_out(database: Database, clock: FrozenClock) -> None:
    created = register(database, clock, ann(photo_ref=None, paypal_receiver=None))
    read = get(database, created.id)
    assert read.photo_ref is None
    assert read.paypal_receiver is None


def test_the_stored_row_holds_no_plaintext_and_hex_hashes(
    database: Database, clock: FrozenClock
) -> None:
    register(database, clock, ann())
    row = database.read(lambda s: s.execute(text("SELECT * FROM members")).mappings().one())
    stored = b"".join(
        bytes(value) if isinstance(value, bytes | memoryview) else str(value).encode()
        for value in row.values()
    )
    for plaintext in PLAINTEXTS:
        assert plaintext.encode() not in stored
        assert plaintext.encode().hex().encode() not in stored
    for column in ("marketplace_user_hash", "email_hash"):
        assert re.fullmatch(r"[0-9a-f]{64}", row[column])
    assert row["marketplace_user_hash"] != row["email_hash"]
    assert row["erased_at"] is None


def test_registering_the_same_user_twice_returns_the_same_member_unchanged(
    database: Database, clock: FrozenClock
) -> None:
    first = register(database, clock, ann())
    clock.advance(timedelta(minutes=1))
    again = register(database, clock, ann(email="other@example.org", username="someone_else"))
    assert again.id == first.id
    assert again.email.reveal() == EMAIL
    assert again.username.reveal() == USERNAME
    assert again.updated_at == first.updated_at
    assert count_members(database) == 1


def test_the_same_user_in_another_market_is_another_member(
    database: Database, clock: FrozenClock
) -> None:
    gb = register(database, clock, ann())
    fr = register(database, clock, ann(market="fr"))
    assert fr.id != gb.id
    assert fr.market == "FR"
    assert count_members(database) == 2


def test_find_by_marketplace_user(database: Database, clock: FrozenClock) -> None:
    created = register(database, clock, ann())

    def find(market: str, user_id: str) -> MemberRead | None:
        return database.read(
            lambda s: service.find_by_marketplace_user(
                session=s, market=market, marketplace_user_id=user_id, keys=KEYS
            )
        )

    found = find("gb", f"  {USER_ID} ")
    assert found == created
    assert find("FR", USER_ID) is None
    assert find("GB", USER_ID.upper()) is None  # the marketplace decides case: kept


def test_find_by_email_is_case_insensitive_and_returns_every_member_of_the_market(
    database: Database, clock: FrozenClock
) -> None:
    first = register(database, clock, ann())
    second = register(database, clock, ann(marketplace_user_id="mkt-user-2", username="ann2"))
    register(database, clock, ann(market="FR"))
    register(database, clock, ann(marketplace_user_id="mkt-user-3", email="bob@example.org"))

    found = database.read(
        lambda s: service.find_by_email(
            session=s, market="GB", email="  ann.lee+CASH@EXAMPLE.ORG", keys=KEYS
        )
    )
    assert [member.id for member in found] == [first.id, second.id]
    assert {member.email.reveal() for member in found} == {EMAIL}
    nobody = database.read(
        lambda s: service.find_by_email(
            session=s, market="GB", email="ann.lee@example.org", keys=KEYS
        )
    )
    assert nobody == []


def test_a_ciphertext_moved_to_another_row_or_column_does_not_open(
    database: Database, clock: FrozenClock
) -> None:
    ann_read = register(database, clock, ann())
    bob_read = register(database, clock, ann(marketplace_user_id="bob-1", email="bob@example.org"))

    def copy(source: str, target: str, to_member: UUID) -> None:
        def work(session: Any) -> None:
            value = session.scalar(select(getattr(Member, source)).where(Member.id == ann_read.id))
            session.execute(update(Member).where(Member.id == to_member).values({target: value}))

        database.run(work)

    copy("email", "email", bob_read.id)
    with pytest.raises(DecryptionFailed):
        get(database, bob_read.id)
    copy("email", "username", ann_read.id)
    with pytest.raises(DecryptionFailed):
        get(database, ann_read.id)


def test_a_wrapped_key_moved_to_another_member_does_not_open(
    database: Database, clock: FrozenClock
) -> None:
    ann_read = register(database, clock, ann())
    bob_read = register(database, clock, ann(marketplace_user_id="bob-1"))

    def work(session: Any) -> None:
        key = session.scalar(select(Member.wrapped_key).where(Member.id == ann_read.id))
        session.execute(update(Member).where(Member.id == bob_read.id).values(wrapped_key=key))

    database.run(work)
    with pytest.raises(DecryptionFailed):
        get(database, bob_read.id)


def test_a_keyring_without_the_members_key_id_cannot_read_it(
    database: Database, clock: FrozenClock
) -> None:
    created = register(database, clock, ann())
    other = MemberKeys(
        keyring=MasterKeyring(keys=(MasterKey("k2026", b"\x01" * 32),), current_kid="k2026"),
        lookup=development_lookup_key(),
    )
    with pytest.raises(UnknownKeyId, match="unknown key id 'dev'") as caught:
        get(database, created.id, keys=other)
    assert caught.value.code == "unknown_key_id"


def test_a_rotated_keyring_still_reads_old_members(database: Database, clock: FrozenClock) -> None:
    created = register(database, clock, ann())
    dev = development_keyring().keys[0]
    rotated = MemberKeys(
        keyring=MasterKeyring(keys=(dev, MasterKey("k2026", b"\x01" * 32)), current_kid="k2026"),
        lookup=development_lookup_key(),
    )
    assert get(database, created.id, keys=rotated).email.reveal() == EMAIL


def test_another_lookup_key_finds_nothing(database: Database, clock: FrozenClock) -> None:
    register(database, clock, ann())
    other = MemberKeys(keyring=development_keyring(), lookup=LookupKey(b"\x02" * 32))
    found = database.read(
        lambda s: service.find_by_email(session=s, market="GB", email=EMAIL, keys=other)
    )
    assert found == []


def test_a_member_read_shows_no_personal_data_as_text(
    database: Database, clock: FrozenClock
) -> None:
    read = register(database, clock, ann())
    for shown in (
        repr(read),
        str(read),
        f"{read}",
        read.model_dump_json(),
        json.dumps(read.model_dump(mode="json")),
    ):
        for plaintext in PLAINTEXTS:
            assert plaintext not in shown
    assert read.model_dump(mode="json")["email"] == MASK
    assert isinstance(read.model_dump()["email"], Pii)


@pytest.fixture
def restored_structlog() -> Iterator[None]:
    saved = structlog.get_config()
    yield
    structlog.contextvars.clear_contextvars()
    structlog.configure(**saved)


@pytest.mark.parametrize("json_lines", [True, False])
@pytest.mark.usefixtures("restored_structlog")
def test_a_logged_member_shows_no_personal_data(
    json_lines: bool, database: Database, clock: FrozenClock, capsys: pytest.CaptureFixture[str]
) -> None:
    read = register(database, clock, ann())
    configure_logging(LogSettings(level="DEBUG", json_lines=json_lines))
    get_logger("test").info("member_seen", member=read, fields=read.model_dump(), email=read.email)
    output = capsys.readouterr().err
    assert "member_seen" in output
    assert str(read.id) in output
    for plaintext in PLAINTEXTS:
        assert plaintext not in output


@pytest.mark.parametrize(
    "changes",
    [
        {"email": "not-an-email"},
        {"email": "ann@localhost"},
        {"email": "ann lee@example.org"},
        {"email": "a@b@example.org"},
        {"marketplace_user_id": ""},
        {"marketplace_user_id": "   "},
        {"marketplace_user_id": "x" * 201},
        {"username": "u" * 101},
        {"username": "ann\x00lee"},
        {"photo_ref": "p" * 2049},
        {"paypal_receiver": ""},
        {"market": "XX"},
        {"market": "GBR"},
        {"nickname": "ann-the-great"},
        {"email": 42},
    ],
)
def test_bad_input_is_refused_before_anything_is_written(
    changes: dict[str, Any], database: Database
) -> None:
    with pytest.raises(ValidationError) as caught:
        ann(**changes)
    message = str(caught.value)
    for value in changes.values():
        if isinstance(value, str) and len(value) > 3:
            assert value not in message  # rejected input is personal data too
    assert count_members(database) == 0


def test_identifiers_are_trimmed_before_storing(database: Database, clock: FrozenClock) -> None:
    created = register(
        database, clock, ann(marketplace_user_id=f"  {USER_ID}\t", email=f" {EMAIL} ")
    )
    assert created.marketplace_user_id.reveal() == USER_ID
    assert created.email.reveal() == EMAIL
    again = register(database, clock, ann())
    assert again.id == created.id


def test_two_concurrent_registrations_of_one_user_make_one_member(
    database: Database, clock: FrozenClock
) -> None:
    barrier = threading.Barrier(2)
    results: list[UUID] = []
    errors: list[BaseException] = []

    def work(session: Any) -> MemberRead:
        return service.register_member(session=session, member_in=ann(), keys=KEYS, clock=clock)

    def racer() -> None:
        try:
            barrier.wait(5)
            results.append(database.run(work).id)
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=racer) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert len(results) == 2
    assert results[0] == results[1]
    assert count_members(database) == 1


def test_the_paypal_receiver_can_be_changed_and_removed(
    database: Database, clock: FrozenClock
) -> None:
    created = register(database, clock, ann())

    def change(receiver: str | None) -> MemberRead:
        return database.run(
            lambda s: service.update_paypal_receiver(
                session=s,
                member_id=created.id,
                receiver_in=PaypalReceiverUpdate(paypal_receiver=receiver),
                keys=KEYS,
                clock=clock,
            )
        )

    changed = change("+447700900123")
    assert changed.paypal_receiver == Pii("+447700900123")
    assert get(database, created.id).paypal_receiver == Pii("+447700900123")
    assert get(database, created.id).email.reveal() == EMAIL
    removed = change(None)
    assert removed.paypal_receiver is None
    assert get(database, created.id).paypal_receiver is None


def test_an_unknown_member_is_not_found(database: Database, clock: FrozenClock) -> None:
    missing = UUID("01900000-0000-7000-8000-000000000000")
    with pytest.raises(MemberNotFound) as caught:
        get(database, missing)
    assert caught.value.code == "member_not_found"
    assert caught.value.status_code == 404
    with pytest.raises(MemberNotFound):
        database.run(
            lambda s: service.update_paypal_receiver(
                session=s,
                member_id=missing,
                receiver_in=PaypalReceiverUpdate(paypal_receiver=None),
                keys=KEYS,
                clock=clock,
            )
        )


def test_a_member_whose_key_is_gone_reads_as_erased(database: Database, clock: FrozenClock) -> None:
    created = register(database, clock, ann())
    database.run(
        lambda s: s.execute(update(Member).where(Member.id == created.id).values(wrapped_key=None))
    )
    with pytest.raises(MemberErased) as caught:
        get(database, created.id)
    assert caught.value.status_code == 410


def test_member_keys_come_from_the_crypto_settings() -> None:
    keys = MemberKeys.from_settings(CryptoSettings(allow_development_keys=True))
    assert keys.keyring.development
    assert keys.lookup.development
