"""Export and erasure: everything held about a person, and crypto-shredding that leaves the
books balanced. On SQLite and PostgreSQL, the raw bytes of the database are searched."""

from __future__ import annotations

import subprocess
from datetime import timedelta
from pathlib import Path
from uuid import UUID

import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from parrain.audit import service as audit
from parrain.db.session import Database
from parrain.kit.clock import FrozenClock
from parrain.members import service as members
from parrain.members.errors import MemberErased, MemberNotFound
from parrain.members.models import Member
from parrain.members.schemas import PaypalReceiverUpdate
from parrain.privacy import service as privacy
from parrain.privacy.schemas import ErasureRead, MemberExport
from parrain.referrals.schemas import EnrolmentRead
from tests.referrals.programme import KEYS, Programme, friend_names

ACTOR = "operator:privacy-test"
RECEIVER = "ann.paypal.receiver@example.net"


def _winner(programme: Programme) -> EnrolmentRead:
    """Ann enrols, gives a PayPal receiver, and five friends win her the prize (held)."""
    enrolment = programme.enrol("ann")
    programme.database.run(
        lambda s: members.update_paypal_receiver(
            session=s,
            member_id=enrolment.member_id,
            receiver_in=PaypalReceiverUpdate.model_validate({"paypal_receiver": RECEIVER}),
            keys=KEYS,
            clock=programme.clock,
        )
    )
    programme.invite_many(enrolment, friend_names("friend", 5))
    return enrolment


def _export(database: Database, member_id: UUID, clock: FrozenClock) -> MemberExport:
    return database.run(
        lambda s: privacy.export_member(
            session=s, member_id=member_id, keys=KEYS, actor=ACTOR, clock=clock
        )
    )


def _erase(database: Database, member_id: UUID, clock: FrozenClock) -> ErasureRead:
    return database.run(
        lambda s: privacy.erase_member(session=s, member_id=member_id, actor=ACTOR, clock=clock)
    )


def _audit_actions(database: Database, subject: str) -> list[str]:
    return database.read(
        lambda s: [e.action for e in audit.list_entries(session=s, subject=subject, limit=100)]
    )


def test_an_export_holds_the_persons_data_enrolments_friends_and_prize_down_to_the_ledger(
    database: Database, clock: FrozenClock
) -> None:
    programme = Programme.launch(database, clock, friend_welcome_minor=500)
    enrolment = _winner(programme)

    export = _export(database, enrolment.member_id, clock)
    assert export.format == "parrain.member-export/1"
    assert export.personal_data is not None
    assert export.personal_data.email == "ann@example.org"
    assert export.personal_data.paypal_receiver == RECEIVER
    assert not export.erased
    [record] = export.enrolments
    assert record.code == enrolment.code
    assert record.campaign_name == programme.campaign.name
    assert record.clicks == 5
    assert len(record.friends) == 5
    assert {friend.status for friend in record.friends} == {"qualified"}
    [prize] = record.prizes
    assert prize.status == "held"
    kinds = sorted(part.kind for part in prize.parts)
    assert kinds == ["cash", "coupon", *["welcome"] * 5]
    cash = next(part for part in prize.parts if part.kind == "cash")
    assert cash.amount_minor == 2000
    assert cash.currency == "GBP"
    [hold] = cash.ledger
    assert (hold.transfer_id, hold.phase, hold.status) == (cash.id, "pending", "pending")
    assert export.as_friend is None
    # About the friends, only pseudonymous ids: no friend's email or username.
    text = export.model_dump_json()
    assert "friend1@example.org" not in text
    assert "user-friend1" not in text
    assert _audit_actions(database, f"member:{enrolment.member_id}")[-1] == "member.exported"

    # A friend's own export: their signup through Ann's link and their welcome reward.
    friend = next(iter(record.friends))
    friend_member = database.read(lambda s: s.get(Member, _friend_member_id(s, friend.friend_id)))
    assert friend_member is not None
    theirs = _export(database, friend_member.id, clock)
    assert theirs.as_friend is not None
    assert theirs.as_friend.enrolment_id == enrolment.id
    assert theirs.as_friend.hashed_identifiers[:2] == ["device id", "email"]
    [welcome] = theirs.as_friend.welcome
    assert (welcome.kind, welcome.amount_minor, welcome.status) == ("welcome", 500, "held")
    assert theirs.enrolments == []


def _friend_member_id(session: Session, friend_id: UUID) -> UUID:
    from parrain.referrals.models import Friend

    friend = session.get(Friend, friend_id)
    assert friend is not None
    return friend.member_id


def test_posted_prizes_show_their_post_in_the_export(
    database: Database, clock: FrozenClock
) -> None:
    programme = Programme.launch(database, clock)
    enrolment = _winner(programme)
    clock.advance(timedelta(days=8))
    assert programme.release_due() == 1
    [record] = _export(database, enrolment.member_id, clock).enrolments
    [prize] = record.prizes
    assert prize.status == "posted"
    for part in prize.parts:
        assert [entry.phase for entry in part.ledger] == ["pending", "post_pending"]
        assert part.ledger[0].status == "posted"


def test_erasure_shreds_the_person_and_keeps_the_books(
    database: Database, clock: FrozenClock
) -> None:
    programme = Programme.launch(database, clock)
    enrolment = _winner(programme)
    member_id = enrolment.member_id
    budget_before = programme.budget()

    erased = _erase(database, member_id, clock)
    assert not erased.already_erased
    assert erased.erased_at == clock.now()
    again = _erase(database, member_id, clock)
    assert again.already_erased
    assert again.erased_at == erased.erased_at

    with pytest.raises(MemberErased):
        database.read(lambda s: members.get_member(session=s, member_id=member_id, keys=KEYS))
    found = database.read(
        lambda s: members.find_by_email(session=s, market="GB", email="ann@example.org", keys=KEYS)
    )
    assert found == []
    export = _export(database, member_id, clock)
    assert export.erased
    assert export.personal_data is None
    assert export.erased_at == erased.erased_at
    # The prize, its ledger transfers and the books are untouched.
    [prize] = export.enrolments[0].prizes
    assert prize.status == "held"
    assert programme.budget() == budget_before
    assert programme.discrepancies() == []
    clock.advance(timedelta(days=8))
    assert programme.release_due() == 1
    assert programme.discrepancies() == []
    actions = _audit_actions(database, f"member:{member_id}")
    assert actions.count("member.erased") == 1
    assert database.read(lambda s: audit.verify_chain(session=s)).intact


def test_erasing_an_unknown_member_is_a_clear_404(database: Database, clock: FrozenClock) -> None:
    with pytest.raises(MemberNotFound):
        _erase(database, UUID(int=7), clock)


def _sealed(database: Database, member_id: UUID) -> list[bytes]:
    """The member's wrapped key and sealed fields as stored, to look for in raw bytes."""
    row = database.read(lambda s: s.get(Member, member_id))
    assert row is not None
    assert row.wrapped_key is not None
    assert row.paypal_receiver is not None
    return [row.wrapped_key, row.email, row.paypal_receiver, row.marketplace_user_id]


def _raw_bytes(database: Database, backend: str, tmp_path: Path) -> bytes:
    """Everything the database holds, as bytes: the SQLite file and its log, or a
    PostgreSQL dump (pg_dump, plain format, data only)."""
    url = make_url(database.engine.url)
    if backend == "sqlite":
        path = Path(str(url.database))
        files = [path, path.with_name(path.name + "-wal")]
        return b"".join(p.read_bytes() for p in files if p.exists())
    dump = tmp_path / "dump.sql"
    subprocess.run(
        [
            "pg_dump",
            "--data-only",
            "--no-owner",
            "-h",
            str(url.host or "127.0.0.1"),
            "-p",
            str(url.port or 5432),
            "-U",
            str(url.username or "root"),
            "-f",
            str(dump),
            str(url.database),
        ],
        check=True,
    )
    return dump.read_bytes()


def _forms(blob: bytes) -> list[bytes]:
    """How a stored blob appears in raw bytes: as itself (SQLite) or as hex (a dump)."""
    return [blob, blob.hex().encode()]


def test_after_erasure_nothing_of_the_person_is_left_in_the_raw_database(
    database: Database, clock: FrozenClock, backend: str, tmp_path: Path
) -> None:
    programme = Programme.launch(database, clock)
    enrolment = _winner(programme)
    sealed = _sealed(database, enrolment.member_id)
    plain = [b"ann@example.org", RECEIVER.encode(), b"user-ann"]

    before = _raw_bytes(database, backend, tmp_path)
    # Encrypted at rest: the plaintext never reached the disk...
    assert not [value for value in plain if value in before]
    # ...and the search does find what is there (the sealed values), so it can fail.
    assert all(any(form in before for form in _forms(blob)) for blob in sealed)

    _erase(database, enrolment.member_id, clock)
    assert database.truncate_log()
    after = _raw_bytes(database, backend, tmp_path)
    assert not [value for value in plain if value in after]
    left = [blob for blob in sealed if any(form in after for form in _forms(blob))]
    assert left == [], "an erased member's key or sealed field is still in the database"
    assert programme.discrepancies() == []


def test_the_export_lists_the_persons_coupons(database: Database, clock: FrozenClock) -> None:
    programme = Programme.launch(database, clock)
    enrolment = _winner(programme)
    assert _export(database, enrolment.member_id, clock).coupons == []  # held: none yet
    clock.advance(timedelta(days=8))
    assert programme.release_due() == 1
    export = _export(database, enrolment.member_id, clock)
    [coupon] = export.coupons
    assert (coupon.amount_minor, coupon.currency, coupon.status) == (3000, "GBP", "issued")
    assert export.payouts == []  # nothing paid to PayPal yet
