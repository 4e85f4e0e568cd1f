"""``/m/data``: "my data". What parrain holds about the member, readable; the same as a
download (the privacy export of this member only); and erasure by crypto-shredding, after a
confirmation, which ends the session and says what stays (the ledger and the prizes,
pseudonymous). Every export and erasure is written to the audit chain by the privacy
service, with the member as the actor."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from parrain.db.session import Database
from parrain.kit.clock import Clock
from parrain.members.service import MemberKeys
from parrain.privacy import service as privacy
from parrain.privacy.schemas import ErasureRead, MemberExport
from parrain.web.deps import ClockDep, DatabaseDep, MemberKeysDep, SettingsDep
from parrain.web.pages.member.common import (
    PRIVATE_HEADERS,
    CsrfField,
    find_member,
    member_route,
    no_session,
    page,
    require_csrf,
)
from parrain.web.pages.member.session import MemberSession, SessionDep, clear_cookie

router = APIRouter()


def _actor(member_id: object) -> str:
    return f"member:{member_id}"


def _export(
    database: Database, who: MemberSession, keys: MemberKeys, clock: Clock
) -> MemberExport | None:
    def work(session: Session) -> MemberExport | None:
        member = find_member(session, who, keys)
        if member is None:
            return None
        return privacy.export_member(
            session=session,
            member_id=member.id,
            keys=keys,
            actor=_actor(member.id),
            clock=clock,
        )

    return database.run(work)


@router.get("/data", name="member_data")
@member_route
def data_page(
    request: Request,
    who: SessionDep,
    database: DatabaseDep,
    clock: ClockDep,
    settings: SettingsDep,
    keys: MemberKeysDep,
) -> Response:
    """Everything held about the member, in words and tables."""
    if who is None:
        return no_session(request, settings)
    export = _export(database, who, keys, clock)
    return page(request, "member/data.html", {"export": export}, who=who)


@router.get("/data/export.json", name="member_data_export")
@member_route
def download_export(
    request: Request,
    who: SessionDep,
    database: DatabaseDep,
    clock: ClockDep,
    settings: SettingsDep,
    keys: MemberKeysDep,
) -> Response:
    """The member's privacy export as a JSON file (GDPR Art. 15 and 20)."""
    if who is None:
        return no_session(request, settings)
    export = _export(database, who, keys, clock)
    if export is None:
        return page(request, "member/data.html", {"export": None}, who=who, status_code=404)
    filename = f"parrain-export-{export.generated_at.date().isoformat()}.json"
    return Response(
        export.model_dump_json(indent=2),
        media_type="application/json",
        headers={**PRIVATE_HEADERS, "Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get("/data/erase", name="member_data_erase_confirm")
@member_route
def confirm_erasure(request: Request, who: SessionDep, settings: SettingsDep) -> Response:
    """What erasure removes and what it keeps, and the button that does it."""
    if who is None:
        return no_session(request, settings)
    return page(request, "member/erase.html", {"error": False}, who=who)


@router.post("/data/erase", name="member_data_erase")
@member_route
def erase(
    request: Request,
    who: SessionDep,
    database: DatabaseDep,
    clock: ClockDep,
    settings: SettingsDep,
    keys: MemberKeysDep,
    csrf_token: CsrfField = None,
    confirm: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    """Crypto-shred the member after they confirmed; the session ends."""
    if who is None:
        return no_session(request, settings)
    require_csrf(who, csrf_token)
    if confirm != "yes":
        return page(request, "member/erase.html", {"error": True}, who=who, status_code=422)

    def work(session: Session) -> ErasureRead | None:
        member = find_member(session, who, keys)
        if member is None:
            return None
        return privacy.erase_member(
            session=session, member_id=member.id, actor=_actor(member.id), clock=clock
        )

    erased = database.run(work)
    if erased is not None and not erased.already_erased:
        database.truncate_log()  # the old page versions leave the SQLite log now, if it can
    response = page(request, "member/erased.html", {"erased": erased})
    clear_cookie(response, settings)
    return response
