"""``GET /m/enter?token=…``: the way in from the marketplace's app.

The token is checked (:mod:`parrain.members.tokens`), the person found by the keyed hash of
their marketplace user id, a session cookie set, and the browser sent on at once (303) to
their progress, or to the enrolment page when they are not enrolled yet, so the token
leaves the address bar. Each client address may come in ``member_enter_rate_per_minute``
times a minute (someone trying tokens gets 429). No log line names the request's address
(uvicorn's access log is off; the error middleware logs the route's name only) and nothing
here logs the token.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from parrain.members import service as members
from parrain.members.errors import (
    MemberTokenExpired,
    MemberTokenMalformed,
    MemberTokenNotYetValid,
    MemberTokenRefused,
    MemberTokenTampered,
    MemberTokenTooLongLived,
    MemberTokenWrongAudience,
)
from parrain.members.tokens import verify_member_token
from parrain.web.deps import ClockDep, DatabaseDep, MemberKeysDep, SettingsDep
from parrain.web.pages.member.common import page, redirect, standing
from parrain.web.pages.member.session import new_session, set_cookie
from parrain.web.ratelimit import limit

router = APIRouter()


@router.get("/enter", name="member_enter", dependencies=[Depends(limit("member_enter"))])
def enter(
    request: Request,
    database: DatabaseDep,
    clock: ClockDep,
    settings: SettingsDep,
    keys: MemberKeysDep,
    token: str = "",  # any length: an oversized one is refused like any malformed token
) -> Response:
    """Check the marketplace's token, open a session, and go to the member's page."""
    now = clock.now()
    tokens = settings.members
    try:
        claims = verify_member_token(
            token,
            secret=tokens.token_secret_bytes(settings.crypto),
            now=now,
            clock_skew_seconds=tokens.token_clock_skew_seconds,
            max_lifetime_seconds=tokens.token_max_lifetime_seconds,
        )
    except MemberTokenRefused as refused:
        # Away from the token's address too: the refusal page links to itself (language).
        return redirect(request, "/m/refused", query=f"reason={refused.code}")
    user_hash = members.marketplace_user_hash(keys, claims.subject.reveal())
    who = new_session(
        user_hash=user_hash,
        market=claims.market,
        member_id=None,
        user_id=claims.subject,
        now=now,
        seconds=tokens.session_seconds,
    )
    found = database.read(
        lambda session: standing(
            session, who, keys=keys, link_base_url=settings.referrals.link_base_url, now=now
        )
    )
    if found.member is not None:
        who = who.as_member(found.member.id)
    # Someone not enrolled in the open campaign is offered it first; their past ones are
    # one tap away on the progress page.
    needs_enrolment = found.enrolment is None or found.may_enrol
    response = redirect(request, "/m/enrol" if needs_enrolment else "/m")
    set_cookie(response, who, settings, now)
    return response


#: The refusals the page explains; anything else reads as malformed.
_REASONS = frozenset(
    error.code
    for error in (
        MemberTokenExpired,
        MemberTokenMalformed,
        MemberTokenNotYetValid,
        MemberTokenTampered,
        MemberTokenTooLongLived,
        MemberTokenWrongAudience,
    )
)


@router.get("/refused", name="member_entry_refused")
def entry_refused(request: Request, reason: Annotated[str, Query(max_length=60)] = "") -> Response:
    """Why the link from the app did not open the pages (HTTP 401)."""
    known = reason if reason in _REASONS else MemberTokenMalformed.code
    return page(request, "member/entry_refused.html", {"reason": known}, status_code=401)
