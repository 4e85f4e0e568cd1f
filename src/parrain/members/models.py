"""The members table: a pseudonymous id, keyed lookup hashes and encrypted personal fields.

Each ``*_hash`` column is an HMAC lookup hash (64 hex); each ``LargeBinary`` personal column
is an AES-GCM ciphertext under the member's data key, bound to ``member:<id>:<field>``.
``wrapped_key`` is that data key sealed by a master key; erasure will set it to NULL.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import LargeBinary, String, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from parrain.db.base import Base, UTCDateTime


class Member(Base):
    __tablename__ = "members"
    __table_args__ = (UniqueConstraint("market", "marketplace_user_hash"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    market: Mapped[str] = mapped_column(String(2))
    marketplace_user_hash: Mapped[str] = mapped_column(String(64))
    email_hash: Mapped[str] = mapped_column(String(64), index=True)
    wrapped_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    marketplace_user_id: Mapped[bytes] = mapped_column(LargeBinary)
    email: Mapped[bytes] = mapped_column(LargeBinary)
    username: Mapped[bytes] = mapped_column(LargeBinary)
    photo_ref: Mapped[bytes | None] = mapped_column(LargeBinary)
    paypal_receiver: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
