"""Member operations: register, read, find by keyed hash, change the PayPal receiver.

Nothing commits (the edges run each call in :meth:`parrain.db.session.Database.run`), and
nothing is logged here: a log line would be one more place for personal data to leak.

Each member has a random data key, stored wrapped under the current master key with
``member:<id>`` as subject; each personal field is encrypted under it with
``member:<id>:<field>`` as context, so a ciphertext copied to another row or column does not
open. Lookups use HMAC hashes: ``marketplace_user_id`` of the normalised id (unique per
market) and ``email`` of the normalised email.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy.orm import Session

from parrain.config import CryptoSettings
from parrain.kit.clock import Clock
from parrain.kit.crypto import (
    LookupKey,
    MasterKeyring,
    WrappedKey,
    decrypt_field,
    encrypt_field,
    lookup_hash,
    new_data_key,
    normalise_email,
    normalise_identifier,
    unwrap_data_key,
    wrap_data_key,
)
from parrain.kit.ids import new_id
from parrain.kit.pii import Pii
from parrain.members import repository
from parrain.members.errors import MemberErased, MemberNotFound
from parrain.members.models import Member
from parrain.members.schemas import MemberCreate, MemberRead, PaypalReceiverUpdate

#: Lookup hash purposes: one value hashed for two roles never gives the same hash.
MARKETPLACE_USER_PURPOSE = "marketplace_user_id"
EMAIL_PURPOSE = "email"


@dataclass(frozen=True, slots=True)
class MemberKeys:
    """The keys member data needs; built by the edges, never read from the database."""

    keyring: MasterKeyring
    lookup: LookupKey

    @classmethod
    def from_settings(cls, settings: CryptoSettings) -> MemberKeys:
        return cls(keyring=settings.build_master_keyring(), lookup=settings.build_lookup_key())


def _subject(member_id: UUID) -> str:
    return f"member:{member_id}"


def _context(member_id: UUID, field: str) -> str:
    return f"member:{member_id}:{field}"


def marketplace_user_hash(keys: MemberKeys, marketplace_user_id: str) -> str:
    return lookup_hash(
        keys.lookup, normalise_identifier(marketplace_user_id), purpose=MARKETPLACE_USER_PURPOSE
    )


def email_hash(keys: MemberKeys, email: str) -> str:
    return lookup_hash(keys.lookup, normalise_email(email), purpose=EMAIL_PURPOSE)


def _data_key(member: Member, keys: MemberKeys) -> bytes:
    if member.wrapped_key is None:
        raise MemberErased(
            f"member {member.id} was erased: their personal data is gone",
            member_id=str(member.id),
        )
    wrapped = WrappedKey.from_bytes(member.wrapped_key)
    return unwrap_data_key(keys.keyring, wrapped, subject=_subject(member.id))


def _seal(data_key: bytes, member_id: UUID, field: str, value: Pii | None) -> bytes | None:
    if value is None:
        return None
    return encrypt_field(data_key, value.reveal(), context=_context(member_id, field))


def _open(data_key: bytes, member_id: UUID, field: str, ciphertext: bytes | None) -> Pii | None:
    if ciphertext is None:
        return None
    return Pii(decrypt_field(data_key, ciphertext, context=_context(member_id, field)))


def _open_required(data_key: bytes, member_id: UUID, field: str, ciphertext: bytes) -> Pii:
    return Pii(decrypt_field(data_key, ciphertext, context=_context(member_id, field)))


def to_read(member: Member, keys: MemberKeys) -> MemberRead:
    """Decrypt ``member`` into masked values; :class:`MemberErased` once its key is gone."""
    data_key = _data_key(member, keys)
    return MemberRead(
        id=member.id,
        market=member.market,
        marketplace_user_id=_open_required(
            data_key, member.id, "marketplace_user_id", member.marketplace_user_id
        ),
        email=_open_required(data_key, member.id, "email", member.email),
        username=_open_required(data_key, member.id, "username", member.username),
        photo_ref=_open(data_key, member.id, "photo_ref", member.photo_ref),
        paypal_receiver=_open(data_key, member.id, "paypal_receiver", member.paypal_receiver),
        created_at=member.created_at,
        updated_at=member.updated_at,
    )


def register_member(
    *, session: Session, member_in: MemberCreate, keys: MemberKeys, clock: Clock
) -> MemberRead:
    """Register a marketplace user in a market, or return the member they already are.

    Idempotent by (market, marketplace user id): a repeated call returns the existing member
    and updates nothing, even if the email, username, photo or PayPal receiver differ (those
    change through their own operations). Two concurrent first registrations meet on the
    UNIQUE (market, marketplace_user_hash) constraint: on PostgreSQL the loser's transaction
    is retried by ``Database.run`` and then finds the winner; SQLite serialises writers.
    """
    user_hash = marketplace_user_hash(keys, member_in.marketplace_user_id.reveal())
    existing = repository.get_by_marketplace_user(
        session, market=member_in.market, user_hash=user_hash
    )
    if existing is not None:
        return to_read(existing, keys)
    member = build_member(member_in=member_in, keys=keys, clock=clock, user_hash=user_hash)
    repository.add(session, member)
    return to_read(member, keys)


def build_member(
    *, member_in: MemberCreate, keys: MemberKeys, clock: Clock, user_hash: str | None = None
) -> Member:
    """A new member row (not added to any session): a fresh data key wrapped under the
    current master key, every personal field sealed under it."""
    return Member(**member_values(member_in=member_in, keys=keys, clock=clock, user_hash=user_hash))


def member_values(
    *,
    member_in: MemberCreate,
    keys: MemberKeys,
    clock: Clock,
    user_hash: str | None = None,
    email_lookup_hash: str | None = None,
) -> dict[str, Any]:
    """The column values of :func:`build_member`'s row, for callers that insert many members
    at once with one statement after checking none exists (``register_member`` is the usual
    path). ``user_hash`` and ``email_lookup_hash``, when the caller has them already, are
    :func:`marketplace_user_hash` and :func:`email_hash` of the member's values."""
    if user_hash is None:
        user_hash = marketplace_user_hash(keys, member_in.marketplace_user_id.reveal())
    if email_lookup_hash is None:
        email_lookup_hash = email_hash(keys, member_in.email.reveal())
    member_id = new_id()
    data_key = new_data_key()
    now = clock.now()
    return {
        "id": member_id,
        "market": member_in.market,
        "marketplace_user_hash": user_hash,
        "email_hash": email_lookup_hash,
        "wrapped_key": wrap_data_key(
            keys.keyring, data_key, subject=_subject(member_id)
        ).to_bytes(),
        "marketplace_user_id": encrypt_field(
            data_key,
            member_in.marketplace_user_id.reveal(),
            context=_context(member_id, "marketplace_user_id"),
        ),
        "email": encrypt_field(
            data_key, member_in.email.reveal(), context=_context(member_id, "email")
        ),
        "username": encrypt_field(
            data_key, member_in.username.reveal(), context=_context(member_id, "username")
        ),
        "photo_ref": _seal(data_key, member_id, "photo_ref", member_in.photo_ref),
        "paypal_receiver": _seal(data_key, member_id, "paypal_receiver", member_in.paypal_receiver),
        "created_at": now,
        "updated_at": now,
    }


def existing_by_marketplace_user(
    *, session: Session, market: str, user_hashes: Collection[str]
) -> dict[str, UUID]:
    """The member id of each of ``user_hashes`` that is a member of ``market``."""
    return repository.ids_by_marketplace_user(session, market=market, user_hashes=user_hashes)


def _load(session: Session, member_id: UUID, *, for_update: bool = False) -> Member:
    member = repository.get(session, member_id, for_update=for_update)
    if member is None:
        raise MemberNotFound(f"member {member_id} does not exist", member_id=str(member_id))
    return member


def get_member(*, session: Session, member_id: UUID, keys: MemberKeys) -> MemberRead:
    return to_read(_load(session, member_id), keys)


def find_by_marketplace_user(
    *, session: Session, market: str, marketplace_user_id: str, keys: MemberKeys
) -> MemberRead | None:
    """The member of ``market`` with this marketplace user id (trimmed, case kept), if any."""
    member = repository.get_by_marketplace_user(
        session, market=market.upper(), user_hash=marketplace_user_hash(keys, marketplace_user_id)
    )
    return None if member is None else to_read(member, keys)


def find_by_email(
    *, session: Session, market: str, email: str, keys: MemberKeys
) -> list[MemberRead]:
    """Every member of ``market`` with this email (trimmed, case-insensitive), oldest first.

    An email is not unique: one address may hold several marketplace accounts.
    """
    members = repository.list_by_email(
        session, market=market.upper(), email_hash=email_hash(keys, email)
    )
    return [to_read(member, keys) for member in members]


def update_paypal_receiver(
    *,
    session: Session,
    member_id: UUID,
    receiver_in: PaypalReceiverUpdate,
    keys: MemberKeys,
    clock: Clock,
) -> MemberRead:
    """Set (or with ``None`` remove) the PayPal receiver future payouts go to."""
    member = _load(session, member_id, for_update=True)
    data_key = _data_key(member, keys)
    member.paypal_receiver = _seal(
        data_key, member.id, "paypal_receiver", receiver_in.paypal_receiver
    )
    member.updated_at = clock.now()
    session.flush()
    return to_read(member, keys)


#: What the lookup hashes of an erased member become: unique, and no longer anyone's hash.
ERASED_HASH_PREFIX = "erased:"


def erase(*, session: Session, member_id: UUID, clock: Clock) -> tuple[datetime, bool]:
    """Crypto-shred a member: destroy the wrapped data key, blank every sealed field and
    replace the lookup hashes with a tombstone, so that nothing in the database can be
    decrypted or matched to the person again. The row and its pseudonymous id stay: the
    ledger, prizes and audit entries keep pointing at it (ADR 5, ADR 14).

    Returns when the member was erased and whether it was already (erasing twice is a
    no-op)."""
    member = _load(session, member_id, for_update=True)
    if member.erased_at is not None:
        return member.erased_at, True
    now = clock.now()
    tombstone = f"{ERASED_HASH_PREFIX}{member.id.hex}"
    member.wrapped_key = None
    member.marketplace_user_id = b""
    member.email = b""
    member.username = b""
    member.photo_ref = None
    member.paypal_receiver = None
    member.marketplace_user_hash = tombstone
    member.email_hash = tombstone
    member.erased_at = now
    member.updated_at = now
    session.flush()
    return now, False


def get_row(*, session: Session, member_id: UUID) -> Member:
    """The member's row as stored (sealed fields, hashes): for domains that decide
    themselves what to decrypt, such as an export."""
    return _load(session, member_id)
