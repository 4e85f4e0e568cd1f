"""Read-only views of the audit chain: its entries and a full verification."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from parrain.audit import service as audit
from parrain.audit.schemas import AuditEntryRead, ChainReportRead
from parrain.web.deps import DatabaseDep, operator
from parrain.web.errors import error_responses

router = APIRouter(
    prefix="/audit",
    tags=["audit"],
    responses=error_responses(401, 403, 500),
    dependencies=[operator("audit.view")],
)

#: The largest sequence number a 64-bit column holds.
_MAX_SEQ = 2**63 - 1


@router.get("/entries", responses=error_responses(422))
def list_audit_entries(
    database: DatabaseDep,
    after_seq: Annotated[
        int, Query(ge=0, le=_MAX_SEQ, description="Only entries after this sequence number.")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=500, description="At most this many entries.")] = 100,
    subject: Annotated[
        str | None,
        Query(min_length=1, max_length=200, description="Only entries about this subject."),
    ] = None,
) -> list[AuditEntryRead]:
    """Entries in chain order. Page with ``after_seq`` set to the last ``seq`` received."""
    entries = database.read(
        lambda session: audit.list_entries(
            session=session, after_seq=after_seq, limit=limit, subject=subject
        )
    )
    return [AuditEntryRead.of(entry) for entry in entries]


@router.get("/verify")
def verify_audit_chain(database: DatabaseDep) -> ChainReportRead:
    """Recompute the whole chain; ``intact`` is false if any entry was edited, deleted or
    reordered, and ``breaks`` says where."""
    report = database.read(lambda session: audit.verify_chain(session=session))
    return ChainReportRead.of(report)
