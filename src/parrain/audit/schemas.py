"""Pydantic shapes of the audit log for the web and CLI edges."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from parrain.audit.chain import ChainBreak, StoredEntry
from parrain.audit.service import ChainReport


class AuditEntryRead(BaseModel):
    seq: int
    occurred_at: datetime
    actor: str
    action: str
    subject: str
    details: dict[str, Any]
    prev_hash: str
    hash: str

    @classmethod
    def of(cls, entry: StoredEntry) -> AuditEntryRead:
        return cls(
            seq=entry.seq,
            occurred_at=entry.occurred_at,
            actor=entry.actor,
            action=entry.action,
            subject=entry.subject,
            details=json.loads(entry.details),
            prev_hash=entry.prev_hash,
            hash=entry.hash,
        )


class ChainBreakRead(BaseModel):
    seq: int
    kind: str
    message: str

    @classmethod
    def of(cls, item: ChainBreak) -> ChainBreakRead:
        return cls(seq=item.seq, kind=item.kind.value, message=item.message)


class ChainReportRead(BaseModel):
    intact: bool
    entries: int
    breaks: list[ChainBreakRead]

    @classmethod
    def of(cls, report: ChainReport) -> ChainReportRead:
        return cls(
            intact=report.intact,
            entries=report.entries,
            breaks=[ChainBreakRead.of(b) for b in report.breaks],
        )
