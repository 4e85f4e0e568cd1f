"""Consent tables: declaration versions and the notices rendered from each.

Both are written once and never changed: a change of declaration is a new version, with new
notices; the old ones stay readable as they were. The ORM refuses to update or delete them.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Float,
    ForeignKey,
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


@event.listens_for(ConsentDeclaration, "before_update")
@event.listens_for(ConsentNotice, "before_update")
@event.listens_for(ConsentDeclaration, "before_delete")
@event.listens_for(ConsentNotice, "before_delete")
def _written_once(_mapper: Any, _connection: Any, target: Base) -> None:
    raise RuntimeError(f"{type(target).__name__} rows are written once and never changed")
