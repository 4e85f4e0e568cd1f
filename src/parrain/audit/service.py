"""Append to the audit chain and verify it. Nothing here commits."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from parrain.audit import repository
from parrain.audit.chain import (
    GENESIS_HASH,
    ChainBreak,
    StoredEntry,
    canonical_json,
    entry_hash,
    find_breaks,
)
from parrain.audit.errors import InvalidAuditEntry
from parrain.kit.clock import Clock


@dataclass(frozen=True, slots=True)
class NewEntry:
    """What one audit entry says; :func:`record_all` gives it its place in the chain.

    ``details`` must be JSON data without personal data: ids, codes, amounts."""

    actor: str
    action: str
    subject: str
    details: Mapping[str, Any] | None = None


def record(
    *,
    session: Session,
    actor: str,
    action: str,
    subject: str,
    details: Mapping[str, Any] | None = None,
    clock: Clock,
) -> StoredEntry:
    """Append one entry after the current head, in the caller's transaction.

    ``details`` must be JSON data without personal data: ids, codes, amounts.
    """
    [entry] = record_all(
        session=session, entries=[NewEntry(actor, action, subject, details)], clock=clock
    )
    return entry


def record_all(*, session: Session, entries: Sequence[NewEntry], clock: Clock) -> list[StoredEntry]:
    """Append ``entries``, in order, after the current head: one lock of the head, one
    insert of them all. Nothing is written when one of them is invalid."""
    prepared = [(entry, _details_json(entry)) for entry in entries]
    if not prepared:
        return []
    head = repository.lock_head(session)
    seq, prev_hash = (head[0] + 1, head[1]) if head is not None else (1, GENESIS_HASH)
    occurred_at = clock.now()
    stored: list[StoredEntry] = []
    for entry, details_json in prepared:
        digest = entry_hash(
            prev_hash=prev_hash,
            occurred_at=occurred_at,
            actor=entry.actor,
            action=entry.action,
            subject=entry.subject,
            details=details_json,
        )
        stored.append(
            StoredEntry(
                seq=seq,
                occurred_at=occurred_at,
                actor=entry.actor,
                action=entry.action,
                subject=entry.subject,
                details=details_json,
                prev_hash=prev_hash,
                hash=digest,
            )
        )
        seq, prev_hash = seq + 1, digest
    repository.insert_entries(session, stored, first=head is None)
    return stored


def _details_json(entry: NewEntry) -> str:
    for name, value, limit in (
        ("actor", entry.actor, 120),
        ("action", entry.action, 80),
        ("subject", entry.subject, 200),
    ):
        if not value or len(value) > limit:
            raise InvalidAuditEntry(f"an audit {name} is 1 to {limit} characters", field=name)
    try:
        return canonical_json(dict(entry.details or {}))
    except (TypeError, ValueError) as error:
        raise InvalidAuditEntry(f"audit details must be JSON data: {error}") from None


@dataclass(frozen=True, slots=True)
class ChainReport:
    entries: int
    breaks: list[ChainBreak]

    @property
    def intact(self) -> bool:
        return not self.breaks


def verify_chain(*, session: Session) -> ChainReport:
    """Recompute the whole chain and report every edited, deleted or reordered entry."""
    index = repository.hash_index(session)
    breaks = find_breaks(
        repository.iter_entries(session), seq_by_hash=index, head=repository.read_head(session)
    )
    return ChainReport(entries=len(index), breaks=breaks)


def list_entries(
    *, session: Session, after_seq: int = 0, limit: int = 100, subject: str | None = None
) -> list[StoredEntry]:
    return repository.list_entries(session, after_seq=after_seq, limit=limit, subject=subject)
