"""Every query of the audit log."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, cast

from sqlalchemy import Table, insert, select, update
from sqlalchemy.orm import Session

from parrain.audit.chain import StoredEntry
from parrain.audit.models import AuditEntry, AuditHead

_entries = cast(Table, AuditEntry.__table__)
_head = cast(Table, AuditHead.__table__)


_LOCK_HEAD = select(_head.c.seq, _head.c.hash).where(_head.c.id == 1).with_for_update()
_INSERT_ENTRIES = insert(_entries)
_MOVE_HEAD = update(_head).where(_head.c.id == 1)


def lock_head(session: Session) -> tuple[int, str] | None:
    row = session.execute(_LOCK_HEAD).first()
    return (row.seq, row.hash) if row is not None else None


def read_head(session: Session) -> tuple[int, str] | None:
    row = session.execute(select(_head.c.seq, _head.c.hash).where(_head.c.id == 1)).first()
    return (row.seq, row.hash) if row is not None else None


def insert_entries(session: Session, entries: Sequence[StoredEntry], *, first: bool) -> None:
    """Insert consecutive entries (one statement) and move the head to the last one."""
    session.execute(
        _INSERT_ENTRIES,
        [
            {
                "seq": entry.seq,
                "occurred_at": entry.occurred_at,
                "actor": entry.actor,
                "action": entry.action,
                "subject": entry.subject,
                "details": entry.details,
                "prev_hash": entry.prev_hash,
                "hash": entry.hash,
            }
            for entry in entries
        ],
    )
    last = entries[-1]
    if first:
        session.execute(insert(_head).values(id=1, seq=last.seq, hash=last.hash))
    else:
        session.execute(_MOVE_HEAD, {"seq": last.seq, "hash": last.hash})


def _stored(row: Any) -> StoredEntry:
    return StoredEntry(
        seq=row.seq,
        occurred_at=row.occurred_at,
        actor=row.actor,
        action=row.action,
        subject=row.subject,
        details=row.details,
        prev_hash=row.prev_hash,
        hash=row.hash,
    )


def iter_entries(session: Session, *, batch: int = 1000) -> Iterator[StoredEntry]:
    """All entries in sequence order, read in batches by keyset (no OFFSET)."""
    after = 0
    while True:
        rows = session.execute(
            select(_entries).where(_entries.c.seq > after).order_by(_entries.c.seq).limit(batch)
        ).all()
        if not rows:
            return
        for row in rows:
            yield _stored(row)
        after = rows[-1].seq


def hash_index(session: Session) -> dict[str, int]:
    return {h: s for s, h in session.execute(select(_entries.c.seq, _entries.c.hash))}


def list_entries(
    session: Session, *, after_seq: int = 0, limit: int = 100, subject: str | None = None
) -> list[StoredEntry]:
    statement = select(_entries).where(_entries.c.seq > after_seq)
    if subject is not None:
        statement = statement.where(_entries.c.subject == subject)
    rows = session.execute(statement.order_by(_entries.c.seq).limit(limit)).all()
    return [_stored(row) for row in rows]
