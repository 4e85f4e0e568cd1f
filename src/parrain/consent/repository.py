"""Every query of consent."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import select
from sqlalchemy.orm import Session

from parrain.consent.models import ConsentDeclaration, ConsentNotice


def latest_declaration(session: Session, campaign_id: UUID) -> ConsentDeclaration | None:
    statement = (
        select(ConsentDeclaration)
        .where(ConsentDeclaration.campaign_id == campaign_id)
        .order_by(ConsentDeclaration.version.desc())
        .limit(1)
    )
    return session.scalars(statement).one_or_none()


def declaration_version(
    session: Session, campaign_id: UUID, version: int
) -> ConsentDeclaration | None:
    statement = select(ConsentDeclaration).where(
        ConsentDeclaration.campaign_id == campaign_id, ConsentDeclaration.version == version
    )
    return session.scalars(statement).one_or_none()


def notices_of(session: Session, declaration_id: UUID) -> list[ConsentNotice]:
    statement = (
        select(ConsentNotice)
        .where(ConsentNotice.declaration_id == declaration_id)
        .order_by(ConsentNotice.language)
    )
    return list(session.scalars(statement))


def notice(session: Session, declaration_id: UUID, language: str) -> ConsentNotice | None:
    statement = select(ConsentNotice).where(
        ConsentNotice.declaration_id == declaration_id, ConsentNotice.language == language
    )
    return session.scalars(statement).one_or_none()


def add(session: Session, *rows: ConsentDeclaration | ConsentNotice) -> None:
    session.add_all(rows)
    session.flush()
