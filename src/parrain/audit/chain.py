"""Pure hash-chain rules: canonical content, entry hashes, and finding breaks in a chain."""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

GENESIS_HASH = "0" * 64


def canonical_json(value: Any) -> str:
    """One spelling per value: sorted keys, no spaces, UTF-8 kept as is."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def entry_hash(
    *, prev_hash: str, occurred_at: datetime, actor: str, action: str, subject: str, details: str
) -> str:
    """SHA-256 over the previous hash and the entry's canonical content.

    The sequence number is deliberately left out: the chain itself fixes the order, and
    leaving it out lets the verifier tell an entry that moved from one that was edited.
    """
    content = canonical_json(
        {
            "occurred_at": occurred_at.isoformat(),
            "actor": actor,
            "action": action,
            "subject": subject,
            "details": json.loads(details),
        }
    )
    return hashlib.sha256(f"{prev_hash}\n{content}".encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class StoredEntry:
    seq: int
    occurred_at: datetime
    actor: str
    action: str
    subject: str
    details: str
    prev_hash: str
    hash: str


class BreakKind(enum.StrEnum):
    EDITED = "edited"
    DELETED = "deleted"
    REORDERED = "reordered"


@dataclass(frozen=True, slots=True)
class ChainBreak:
    seq: int
    kind: BreakKind
    message: str


def _recomputed(entry: StoredEntry) -> str | None:
    try:
        return entry_hash(
            prev_hash=entry.prev_hash,
            occurred_at=entry.occurred_at,
            actor=entry.actor,
            action=entry.action,
            subject=entry.subject,
            details=entry.details,
        )
    except (ValueError, TypeError):  # details no longer valid JSON: edited
        return None


def find_breaks(
    entries: Iterable[StoredEntry],
    *,
    seq_by_hash: Mapping[str, int],
    head: tuple[int, str] | None,
) -> list[ChainBreak]:
    """Walk ``entries`` in sequence order and name every edited, deleted or moved entry.

    ``seq_by_hash`` maps each stored hash to its entry's sequence number (to say where a
    moved entry really belongs); ``head`` is the recorded last (seq, hash), if any.
    """
    breaks: list[ChainBreak] = []
    expected_seq, expected_prev = 1, GENESIS_HASH
    for entry in entries:
        if entry.seq > expected_seq:
            first, last = expected_seq, entry.seq - 1
            span = f"#{first}" if first == last else f"#{first} to #{last}"
            breaks.append(ChainBreak(first, BreakKind.DELETED, f"entry {span} is missing: deleted"))
        if _recomputed(entry) != entry.hash:
            breaks.append(
                ChainBreak(
                    entry.seq,
                    BreakKind.EDITED,
                    f"entry #{entry.seq} ({entry.action}) was edited: "
                    "its content no longer matches its hash",
                )
            )
        elif entry.prev_hash != expected_prev:
            belongs_after = seq_by_hash.get(entry.prev_hash)
            if belongs_after is not None and belongs_after != entry.seq - 1:
                breaks.append(
                    ChainBreak(
                        entry.seq,
                        BreakKind.REORDERED,
                        f"entry #{entry.seq} ({entry.action}) is out of order: "
                        f"it was written right after entry #{belongs_after}",
                    )
                )
            elif entry.prev_hash == GENESIS_HASH and entry.seq != 1:
                breaks.append(
                    ChainBreak(
                        entry.seq,
                        BreakKind.REORDERED,
                        f"entry #{entry.seq} ({entry.action}) is out of order: "
                        "it was written as the first entry",
                    )
                )
            elif not breaks or breaks[-1].seq != entry.seq - 1:
                breaks.append(
                    ChainBreak(
                        entry.seq,
                        BreakKind.DELETED,
                        f"the entry written before #{entry.seq} ({entry.action}) is missing: "
                        "deleted",
                    )
                )
        expected_seq, expected_prev = entry.seq + 1, entry.hash
    if head is not None:
        head_seq, head_hash = head
        if expected_seq - 1 < head_seq:
            first = expected_seq
            span = f"#{first}" if first == head_seq else f"#{first} to #{head_seq}"
            breaks.append(ChainBreak(first, BreakKind.DELETED, f"entry {span} is missing: deleted"))
        elif expected_seq - 1 == head_seq and expected_prev != head_hash:
            breaks.append(
                ChainBreak(
                    head_seq,
                    BreakKind.EDITED,
                    f"entry #{head_seq} does not match the recorded chain head",
                )
            )
    return breaks
