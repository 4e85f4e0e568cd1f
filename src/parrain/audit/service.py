"""Append to the audit chain and verify it. Nothing here commits."""

from __future__ import annotations

from collections.abc import Mapping
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
    for name, value, limit in (
        ("actor", actor, 120),
        ("action", action, 80),
        ("subject", subject, 200),
    ):
        if not value or len(value) > limit:
            raise InvalidAuditEntry(f"an audit {name} is 1 to {limit} characters", field=name)
    try:
        details_json = canonical_json(dict(details or {}))
    except (TypeError, ValueError) as error:
        raise InvalidAuditEntry(f"audit details must be JSON data: {error}") from None
    head = repository.lock_head(session)
    seq, prev_hash = (head[0] + 1, head[1]) if head is not None else (1, GENESIS_HASH)
    occurred_at = clock.now()
    entry = StoredEntry(
        seq=seq,
        occurred_at=occurred_at,
        actor=actor,
        action=action,
        subject=subject,
        details=details_json,
        prev_hash=prev_hash,
        hash=entry_hash(
            prev_hash=prev_hash,
            occurred_at=occurred_at,
            actor=actor,
            action=action,
            subject=subject,
            details=details_json,
        ),
    )
    repository.insert_entry(session, entry, first=head is None)
    return entry


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
