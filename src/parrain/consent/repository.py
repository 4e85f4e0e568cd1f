"""Every query of consent."""

from __future__ import annotations

import functools
import json
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import (
    delete,
    select,
)
from sqlalchemy.orm import Session

from parrain.campaigns.models import Campaign
from parrain.consent.models import (
    ConsentChange,
    ConsentDeclaration,
    ConsentEvent,
    ConsentGrant,
    ConsentNotice,
    ConsentState,
)
from parrain.db.session import DriverCursor, is_read_only
from parrain.referrals.models import Enrolment


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


def all_declarations(session: Session) -> list[ConsentDeclaration]:
    """Every declaration version of every campaign, by campaign, then version."""
    statement = select(ConsentDeclaration).order_by(
        ConsentDeclaration.campaign_id, ConsentDeclaration.version
    )
    return list(session.scalars(statement))


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


def add(
    session: Session, *rows: ConsentDeclaration | ConsentNotice | ConsentEvent | ConsentGrant
) -> None:
    session.add_all(rows)
    session.flush()


# --- Consent events and the current state ---------------------------------------------------


def declaration_by_id(session: Session, declaration_id: UUID) -> ConsentDeclaration | None:
    return session.get(ConsentDeclaration, declaration_id)


def grant_for_update(
    session: Session,
    *,
    member_id: UUID,
    campaign_id: UUID,
    data_category: str,
    data_use: str,
    channel: str,
) -> ConsentGrant | None:
    """The current state of one consent, row-locked (PostgreSQL): changes to one consent take
    turns; the first insert of a row is ordered by its unique key instead."""
    statement = (
        select(ConsentGrant)
        .where(
            ConsentGrant.member_id == member_id,
            ConsentGrant.data_category == data_category,
            ConsentGrant.data_use == data_use,
            ConsentGrant.channel == channel,
            ConsentGrant.campaign_id == campaign_id,
        )
        .with_for_update()
    )
    return session.scalars(statement).one_or_none()


def was_shown(
    session: Session,
    *,
    member_id: UUID,
    declaration_id: UUID,
    notice_sha256: str,
    data_category: str,
    data_use: str,
    channel: str,
) -> bool:
    statement = (
        select(ConsentEvent.id)
        .where(
            ConsentEvent.member_id == member_id,
            ConsentEvent.notice_sha256 == notice_sha256,
            ConsentEvent.declaration_id == declaration_id,
            ConsentEvent.action == "shown",
            ConsentEvent.data_category == data_category,
            ConsentEvent.data_use == data_use,
            ConsentEvent.channel == channel,
        )
        .limit(1)
    )
    return session.scalars(statement).first() is not None


def grants_of_member(session: Session, member_id: UUID) -> list[ConsentGrant]:
    statement = (
        select(ConsentGrant)
        .where(ConsentGrant.member_id == member_id)
        .order_by(
            ConsentGrant.campaign_id,
            ConsentGrant.data_category,
            ConsentGrant.data_use,
            ConsentGrant.channel,
        )
    )
    return list(session.scalars(statement))


def events_of_member(session: Session, member_id: UUID) -> list[ConsentEvent]:
    statement = (
        select(ConsentEvent)
        .where(ConsentEvent.member_id == member_id)
        .order_by(ConsentEvent.occurred_at, ConsentEvent.id)
    )
    return list(session.scalars(statement))


def enrolled_campaigns(session: Session, member_id: UUID) -> list[UUID]:
    statement = (
        select(Enrolment.campaign_id)
        .where(Enrolment.member_id == member_id)
        .order_by(Enrolment.campaign_id)
    )
    return list(session.scalars(statement))


def due_grants(session: Session, *, now: datetime, limit: int) -> list[ConsentGrant]:
    """Granted consents whose expiry has passed, locked; rows another worker holds are
    skipped (PostgreSQL), so several workers expire different rows."""
    statement = (
        select(ConsentGrant)
        .where(ConsentGrant.status == "granted", ConsentGrant.expires_at <= now)
        .order_by(ConsentGrant.expires_at, ConsentGrant.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list(session.scalars(statement))


@dataclass(frozen=True, slots=True)
class CheckRow:
    """One row of :func:`check_rows`. ``kind`` ``g``: a consent's current state; ``m``: the
    member (``erased``) and, when enrolled, a campaign with its latest declaration
    (``campaign_id``, ``declaration_id``, ``declaration_version``)."""

    kind: str
    member_id: UUID
    campaign_id: UUID | None
    data_category: str | None
    data_use: str | None
    channel: str | None
    status: str | None
    granted_at: datetime | None
    expires_at: datetime | None
    territories: tuple[str, ...] | None
    declaration_version: int | None
    notice_sha256: str | None
    declaration_id: UUID | None
    erased: bool


# The statement of check_rows, in plain SQL on the driver's cursor: SQLAlchemy's processing
# of each value (UUIDs, timestamps, JSON) cost three times what the database took (see
# docs/performance.md, "Consent checks"). On PostgreSQL the members are one array parameter:
# a thousand separate parameters cost more to parse and plan than the query takes to run.
_CHECK_SQL = """
SELECT 'g', g.member_id, g.campaign_id, g.data_category, g.data_use, g.channel, g.status,
       g.granted_at, g.expires_at, g.territories{as_text}, g.declaration_version, g.notice_sha256,
       g.declaration_id, NULL
  FROM consent_grants g
 WHERE g.member_id {among}{filtered}
UNION ALL
SELECT 'm', m.id, e.campaign_id, NULL, NULL, NULL, NULL, NULL, NULL, NULL, d.version, NULL,
       d.id, m.erased_at
  FROM members m
  LEFT JOIN enrolments e ON e.member_id = m.id
  LEFT JOIN consent_declarations d ON d.campaign_id = e.campaign_id
   AND d.version = (SELECT max(l.version) FROM consent_declarations l
                     WHERE l.campaign_id = e.campaign_id)
 WHERE m.id {among}
"""


def _sqlite_uuid(value: Any) -> Any:
    return None if value is None else UUID(hex=value)


def _sqlite_time(value: Any) -> Any:
    return None if value is None else datetime.fromisoformat(value).replace(tzinfo=UTC)


def _postgresql_time(value: Any) -> Any:
    return None if value is None else value.astimezone(UTC)


def _same(value: Any) -> Any:  # a driver value that is already what it should be
    return value


@functools.lru_cache(maxsize=4096)
def _sqlite_id(value: str) -> UUID:
    """A campaign or declaration id (few of them, on many rows)."""
    return UUID(hex=value)


def _sqlite_few_uuid(value: Any) -> Any:
    return None if value is None else _sqlite_id(value)


@functools.lru_cache(maxsize=1024)
def _territories_of(text: str) -> tuple[str, ...]:
    return tuple(json.loads(text))


def _territories(value: str | list[str] | None) -> tuple[str, ...] | None:
    """JSON text on SQLite; psycopg has already decoded it on PostgreSQL."""
    if value is None:
        return None
    return _territories_of(value) if isinstance(value, str) else tuple(value)


def check_rows(
    session: Session,
    *,
    member_ids: Collection[UUID],
    data_categories: Collection[str] | None,
    data_uses: Collection[str] | None,
) -> list[CheckRow]:
    """Everything the checks of these members need, in one statement: their consents'
    current state for these categories and uses (``None``: every category, every use), and
    each member (known? erased?) with every campaign they are enrolled in and its latest
    declaration (its programme uses)."""
    categories = sorted(data_categories) if data_categories is not None else None
    uses = sorted(data_uses) if data_uses is not None else None
    with DriverCursor.of(session) as cursor:
        mark = "?" if cursor.dialect == "sqlite" else "%s"
        filtered = ""
        if categories is not None:
            filtered += f" AND g.data_category IN ({', '.join([mark] * len(categories))})"
        if uses is not None:
            filtered += f" AND g.data_use IN ({', '.join([mark] * len(uses))})"
        if cursor.dialect == "sqlite":
            asked = {member_id.hex: member_id for member_id in member_ids}
            ids: list[Any] = list(asked)
            among = f"IN ({', '.join('?' * len(ids))})"
            sql = _CHECK_SQL.format(among=among, filtered=filtered, as_text="")
            rows = cursor.query(sql, [*ids, *(categories or ()), *(uses or ()), *ids])
            # Every member id read is one asked for: the same UUID object, not a new one.
            uuid_of, few_uuid_of, time_of = asked.__getitem__, _sqlite_few_uuid, _sqlite_time
        else:
            # The territories as text: the few distinct lists are decoded once per process
            # (_territories_of), not once per row by the driver.
            sql = _CHECK_SQL.format(among="= ANY(%s)", filtered=filtered, as_text="::text")
            ids = list(member_ids)
            rows = cursor.query(sql, [ids, *(categories or ()), *(uses or ()), ids])
            uuid_of, few_uuid_of, time_of = _same, _same, _postgresql_time
    return [
        CheckRow(
            kind=row[0],
            member_id=uuid_of(row[1]),
            campaign_id=few_uuid_of(row[2]),
            data_category=row[3],
            data_use=row[4],
            channel=row[5],
            status=row[6],
            granted_at=time_of(row[7]),
            expires_at=time_of(row[8]),
            territories=_territories(row[9]),
            declaration_version=row[10],
            notice_sha256=row[11],
            declaration_id=few_uuid_of(row[12]),
            erased=row[13] is not None,
        )
        for row in rows
    ]


def declaration_with_notices(
    session: Session, declaration_id: UUID
) -> tuple[ConsentDeclaration, str, list[ConsentNotice]] | None:
    """A declaration, its campaign's market and its notices (all written once)."""
    declaration = session.get(ConsentDeclaration, declaration_id)
    if declaration is None:
        return None
    market = session.scalars(
        select(Campaign.market).where(Campaign.id == declaration.campaign_id)
    ).one()
    return declaration, market, notices_of(session, declaration_id)


# --- The version of what checks read (ADR 25) -------------------------------------------------


@dataclass(frozen=True, slots=True)
class CheckVersion:
    """The consent version and epoch (``consent_state``), and the members of the changes
    after the version asked about (``None``: every member), oldest first, read in one
    statement so that they come from one snapshot.

    ``complete``: ``changed`` holds every change after the version asked about (none was
    pruned, and there were no more than the limit).

    ``clean``: the transaction has written nothing, so what it reads is committed and may
    be kept by a cache (PostgreSQL: no transaction id assigned; SQLite: a read-only
    transaction of ``Database.read``)."""

    epoch: str
    version: int
    changed: list[UUID | None]
    complete: bool
    clean: bool


_VERSION_SQL = """
SELECT s.epoch, s.version, NULL, {clean} FROM consent_state s WHERE s.id = 1
UNION ALL
SELECT NULL, c.version, c.member_id, NULL
  FROM (SELECT version, member_id FROM consent_changes WHERE version > {mark}
         ORDER BY version LIMIT {mark}) c
"""


def check_version(session: Session, *, since: int, limit: int) -> CheckVersion | None:
    """The current :class:`CheckVersion` with at most ``limit`` changes after ``since``
    (``None`` if the state row is missing: a database emptied by hand)."""
    with DriverCursor.of(session) as cursor:
        if cursor.dialect == "sqlite":
            rows = cursor.query(_VERSION_SQL.format(clean=1, mark="?"), [since, limit])
            uuid_of = _sqlite_uuid
            clean = is_read_only(session)
        else:
            sql = _VERSION_SQL.format(clean="pg_current_xact_id_if_assigned() IS NULL", mark="%s")
            rows = cursor.query(sql, [since, limit])
            uuid_of, clean = _same, True
    state = next((row for row in rows if row[0] is not None), None)
    if state is None:
        return None
    version = int(state[1])
    changes = sorted((int(row[1]), row[2]) for row in rows if row[0] is None and row[1] <= version)
    # Versions are unique and every one from 1 up was logged: as many rows as versions
    # between ``since`` and ``version`` means none is missing.
    return CheckVersion(
        epoch=state[0],
        version=version,
        changed=[uuid_of(member) for _version, member in changes],
        complete=len(changes) == version - since,
        clean=clean and bool(state[3]),
    )


def prune_changes(session: Session, *, keep: int) -> int:
    """Delete the consent changes older than the last ``keep``; return how many."""
    current = select(ConsentState.version).where(ConsentState.id == 1).scalar_subquery()
    result = session.execute(
        delete(ConsentChange).where(ConsentChange.version <= current - keep),
        execution_options={"synchronize_session": False},
    )
    return int(getattr(result, "rowcount", 0) or 0)
