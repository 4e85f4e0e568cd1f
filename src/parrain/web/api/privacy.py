"""Privacy rights over HTTP: a member's export and their erasure, asked by the marketplace's
backend on the member's behalf with an integration key granted the ``privacy`` scope.

The export carries the person's own personal data in the clear: it is answered with
``Cache-Control: no-store`` and never logged.
"""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Response

from parrain.privacy import service as privacy
from parrain.privacy.schemas import ErasureRead, MemberExport
from parrain.web.deps import ClockDep, DatabaseDep, MemberKeysDep, PrivacyKeyDep
from parrain.web.errors import error_responses

router = APIRouter(tags=["privacy"], responses=error_responses(401, 403, 404, 422, 500))


@router.get("/members/{member_id}/export")
def export_member(
    member_id: UUID,
    response: Response,
    database: DatabaseDep,
    clock: ClockDep,
    keys: MemberKeysDep,
    key: PrivacyKeyDep,
) -> MemberExport:
    """Everything parrain holds about a member (GDPR Art. 15 and 20), machine readable: their
    personal data (unless erased), enrolments, invited friends (pseudonymous), prizes down to
    each ledger transfer, and their own signup. The request is written to the audit chain."""
    response.headers["Cache-Control"] = "no-store"
    return database.run(
        lambda session: privacy.export_member(
            session=session, member_id=member_id, keys=keys, actor=key.actor, clock=clock
        )
    )


@router.post("/members/{member_id}/erasure")
def erase_member(
    member_id: UUID, database: DatabaseDep, clock: ClockDep, key: PrivacyKeyDep
) -> ErasureRead:
    """Erase a member (GDPR Art. 17) by crypto-shredding: their data key is destroyed, so their
    personal data can no longer be read anywhere it was copied; prizes, ledger and audit keep
    their pseudonymous rows. Erasing again answers the first erasure. Written to the audit
    chain."""
    erased = database.run(
        lambda session: privacy.erase_member(
            session=session, member_id=member_id, actor=key.actor, clock=clock
        )
    )
    if not erased.already_erased:
        database.truncate_log()  # the old page versions leave the SQLite log now, if it can
    return erased
