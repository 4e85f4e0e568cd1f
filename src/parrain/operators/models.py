"""The operators and operator_sessions tables.

``username_key`` is the username in lower case and carries the UNIQUE constraint, so
``Alice`` and ``alice`` cannot both exist, while ``username`` keeps the spelling chosen.
A session row holds the SHA-256 of its token, never the token: the token lives only in the
operator's cookie, so a copy of the table signs nobody in.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Integer, LargeBinary, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from parrain.db.base import Base, UTCDateTime


class Operator(Base):
    __tablename__ = "operators"
    __table_args__ = (
        CheckConstraint(
            "role IN ('admin', 'marketer', 'reviewer', 'finance', 'auditor')", name="role_known"
        ),
        CheckConstraint("failed_attempts >= 0", name="failed_attempts_not_negative"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    username: Mapped[str] = mapped_column(String(64))
    username_key: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    disabled: Mapped[bool] = mapped_column(Boolean)
    failed_attempts: Mapped[int] = mapped_column(Integer)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_sign_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class OperatorSession(Base):
    __tablename__ = "operator_sessions"
    __table_args__ = (CheckConstraint("kind IN ('console', 'api')", name="kind_known"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    operator_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("operators.id"), index=True)
    csrf_secret: Mapped[bytes] = mapped_column(LargeBinary(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: ``console``: a browser's cookie (idles out); ``api``: a token for the management API
    #: (``parrain operator token``; lives until it expires or is revoked). Neither opens the
    #: other's door.
    kind: Mapped[str] = mapped_column(String(8), default="console")
