"""Consent tables: declaration versions and the notices rendered from each, the consent
events of members, and the current state those events lead to.

Declarations, notices and events are written once and never changed: a change of declaration
is a new version, with new notices; a change of mind is a new event. The ORM refuses to
update or delete them. ``consent_grants`` is the one mutable table: the current state per
member, campaign, data category, data use and channel, kept in step with the events in the
same transaction, so a check reads one row instead of a history.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    event,
)
from sqlalchemy.orm import Mapped, mapped_column

from parrain.db.base import Base, UTCDateTime


class ConsentDeclaration(Base):
    """One version of a campaign's data-use declaration; ``body`` is its items as JSON."""

    __tablename__ = "consent_declarations"
    __table_args__ = (
        UniqueConstraint("campaign_id", "version"),
        CheckConstraint("version >= 1", name="version_positive"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    campaign_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("campaigns.id"))
    version: Mapped[int] = mapped_column(Integer)
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ConsentNotice(Base):
    """A declaration version's notice in one language: the exact text and its SHA-256.

    ``sha256`` is indexed, not unique: the same text may come back (a declaration changed,
    then changed back), and each version keeps its own row.
    """

    __tablename__ = "consent_notices"
    __table_args__ = (
        UniqueConstraint("declaration_id", "language"),
        CheckConstraint("language IN ('en', 'fr')", name="language_known"),
        CheckConstraint(
            "readability_formula IN ('flesch_reading_ease', 'kandel_moles')",
            name="readability_formula_known",
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    declaration_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("consent_declarations.id"))
    language: Mapped[str] = mapped_column(String(2))
    content: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    readability_score: Mapped[float] = mapped_column(Float)
    readability_formula: Mapped[str] = mapped_column(String(32))
    rendered_at: Mapped[datetime] = mapped_column(UTCDateTime)


#: What a member did (or what happened to their consent), in the words the tables store.
EVENT_ACTIONS = ("shown", "granted", "refused", "withdrawn", "expired")
#: The states of a consent: the last event about it other than ``shown``.
GRANT_STATUSES = ("granted", "refused", "withdrawn", "expired")


def _listed(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{value}'" for value in values)


class ConsentEvent(Base):
    """One consent event of one member about one optional item of a campaign's declaration,
    on one channel: the notice shown (``shown``), a yes (``granted``, with its expiry), a no
    (``refused``), a yes taken back (``withdrawn``) or run out (``expired``).

    ``notice_sha256`` is the SHA-256 of the notice text the member was shown (a stored notice
    of ``declaration_id`` in ``language``); ``method`` is the screen and button. A grant or a
    withdrawal keeps its signed receipt file (ADR 13) in ``receipt``.
    """

    __tablename__ = "consent_events"
    __table_args__ = (
        CheckConstraint(f"action IN ({_listed(EVENT_ACTIONS)})", name="action_known"),
        CheckConstraint(
            "(action = 'granted' AND expires_at IS NOT NULL) "
            "OR (action <> 'granted' AND expires_at IS NULL)",
            name="expiry_with_grant",
        ),
        CheckConstraint("language IN ('en', 'fr')", name="language_known"),
        Index("ix_consent_events_member_id_occurred_at", "member_id", "occurred_at"),
        Index("ix_consent_events_member_id_notice_sha256", "member_id", "notice_sha256"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id"))
    campaign_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("campaigns.id"))
    declaration_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("consent_declarations.id"))
    declaration_version: Mapped[int] = mapped_column(Integer)
    data_category: Mapped[str] = mapped_column(String(200))
    data_use: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(40))
    action: Mapped[str] = mapped_column(String(16))
    notice_sha256: Mapped[str] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(2))
    method: Mapped[str] = mapped_column(String(120))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    receipt: Mapped[str | None] = mapped_column(Text)


class ConsentGrant(Base):
    """The current state of one member's consent to one optional item on one channel, for
    one campaign: what the last event other than ``shown`` says (``last_event_id``).

    The unique key starts with what a check asks (member, category, use, channel), so a
    check is one index range; ``ix_consent_grants_due`` finds the grants to expire.
    """

    __tablename__ = "consent_grants"
    __table_args__ = (
        UniqueConstraint(
            "member_id",
            "data_category",
            "data_use",
            "channel",
            "campaign_id",
            name="uq_consent_grants_item",  # the conventional name passes PostgreSQL's 63
        ),
        CheckConstraint(f"status IN ({_listed(GRANT_STATUSES)})", name="status_known"),
        CheckConstraint(
            "status <> 'granted' OR (granted_at IS NOT NULL AND expires_at IS NOT NULL)",
            name="granted_has_window",
        ),
        Index("ix_consent_grants_due", "status", "expires_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id"))
    campaign_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("campaigns.id"))
    data_category: Mapped[str] = mapped_column(String(200))
    data_use: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(16))
    declaration_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("consent_declarations.id"))
    declaration_version: Mapped[int] = mapped_column(Integer)
    notice_sha256: Mapped[str] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(2))
    territories: Mapped[list[str]] = mapped_column(JSON)
    granted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_event_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("consent_events.id"))


class ConsentState(Base):
    """One row (``id`` 1): the consent version, which database triggers add one to on every
    write that can change a consent check's answer (a consent's state, an erasure, an
    enrolment, a new declaration version), and the ``epoch``, a random text drawn when the
    row is created, so a cache can tell a re-created database from the one it read (ADR 25).
    Never written by the application."""

    __tablename__ = "consent_state"
    __table_args__ = (CheckConstraint("id = 1", name="one_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    version: Mapped[int] = mapped_column(BigInteger)
    epoch: Mapped[str] = mapped_column(String(32))


class ConsentChange(Base):
    """Which member's check answer version ``version`` may have changed (``member_id``
    NULL: every member's, e.g. a new declaration version). Written by the triggers, pruned
    by the consent expiry job (ADR 25)."""

    __tablename__ = "consent_changes"

    version: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    member_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)


@event.listens_for(ConsentDeclaration, "before_update")
@event.listens_for(ConsentNotice, "before_update")
@event.listens_for(ConsentEvent, "before_update")
@event.listens_for(ConsentDeclaration, "before_delete")
@event.listens_for(ConsentNotice, "before_delete")
@event.listens_for(ConsentEvent, "before_delete")
def _written_once(_mapper: Any, _connection: Any, target: Base) -> None:
    raise RuntimeError(f"{type(target).__name__} rows are written once and never changed")
