"""``GET /r/{code}``: the sponsorship link a member shares.

A visit records the click (one per link and device; crawlers and link previewers are not
counted), issues the deferred deep-link token, and sends the visitor on to the campaign's
app-store or landing URL with the token as ``parrain_token``. Without such a URL it shows
the invitation itself: who invites (username, and profile photo when its reference is an
https address), what the friend gets and by when, how to accept. A mistyped or unknown code
gets a friendly page (HTTP 404) that says what to check, never an error document. Every
word comes from the catalogues (``web/locale``), in the visitor's language.

The device is told apart by a first-party cookie. A visitor without one gets a value
derived from their address and user agent (keyed, so it reveals neither), and the cookie is
set to it: a browser that refuses cookies still counts once per address and agent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from parrain.campaigns import service as campaigns
from parrain.campaigns.schemas import CampaignRead
from parrain.kit.crypto import lookup_hash
from parrain.members import service as members
from parrain.members.errors import MemberErased
from parrain.members.service import MemberKeys
from parrain.referrals import service as referrals
from parrain.referrals.errors import InvalidCode, UnknownCode
from parrain.referrals.schemas import ClickResult
from parrain.web.deps import ClockDep, DatabaseDep, MemberKeysDep, SettingsDep
from parrain.web.errors import error_responses
from parrain.web.ratelimit import limit
from parrain.web.templating import render

router = APIRouter(include_in_schema=True, tags=["links"])

#: How long the device cookie lives: a year, the longest a visitor is plausibly one device.
COOKIE_SECONDS = 365 * 24 * 3600


@dataclass(frozen=True, slots=True)
class Invitation:
    """What the invited friend sees: who invites them, the offer and the deadline."""

    username: str | None
    photo_url: str | None
    campaign: CampaignRead
    deadline_at: datetime
    code: str


def _invitation(
    session: Session, click: ClickResult, keys: MemberKeys, link_base_url: str
) -> Invitation:
    enrolment = referrals.get_enrolment(
        session=session, enrolment_id=click.enrolment_id, link_base_url=link_base_url
    )
    campaign = campaigns.get(session=session, campaign_id=click.campaign_id)
    try:
        member = members.get_member(session=session, member_id=enrolment.member_id, keys=keys)
    except MemberErased:
        username, photo = None, None
    else:
        username = member.username.reveal()
        photo = member.photo_ref.reveal() if member.photo_ref is not None else None
    return Invitation(
        username=username,
        # Only an https address is shown as an image: a reference in another form is the
        # marketplace's own, not something a browser can fetch.
        photo_url=photo if photo is not None and photo.startswith("https://") else None,
        campaign=campaign,
        deadline_at=enrolment.deadline_at,
        code=enrolment.code_display,
    )


def _device(request: Request, cookie_name: str, keys: MemberKeysDep) -> str:
    presented = request.cookies.get(cookie_name, "")
    if presented and len(presented) <= 64 and presented.isalnum():
        return presented
    address = request.client.host if request.client else ""
    agent = request.headers.get("user-agent", "")
    return lookup_hash(keys.lookup, f"{address}\x1f{agent}", purpose="link_visitor")[:40]


@router.get(
    "/r/{code}",
    response_class=HTMLResponse,
    status_code=302,
    dependencies=[Depends(limit("links"))],
    responses={
        200: {"description": "The invitation (no landing URL configured)."},
        404: {"description": "A friendly page: the code is mistyped or unknown."},
        **error_responses(422, 429, 500),
    },
)
def follow_link(
    code: str,
    request: Request,
    database: DatabaseDep,
    clock: ClockDep,
    settings: SettingsDep,
    keys: MemberKeysDep,
    user_agent: Annotated[str | None, Header()] = None,
) -> Response:
    """Record the click, then redirect to the app store or landing page with the token."""
    cookie_name = settings.referrals.device_cookie
    device = _device(request, cookie_name, keys)

    def work(session: Session) -> tuple[ClickResult, Invitation | None]:
        click = referrals.record_click(
            session=session,
            code_text=code,
            device=device,
            user_agent=user_agent,
            keys=keys,
            clock=clock,
        )
        if click.redirect_to is not None:
            return click, None
        return click, _invitation(session, click, keys, settings.referrals.link_base_url)

    try:
        click, invitation = database.run(work)
    except (InvalidCode, UnknownCode) as problem:
        return render(
            request,
            "links/unknown.html",
            {"mistyped": isinstance(problem, InvalidCode)},
            status_code=404,
            headers={"Referrer-Policy": "no-referrer"},
        )
    response: Response
    if click.redirect_to is not None or invitation is None:
        response = RedirectResponse(click.redirect_to or "/", status_code=302)
    else:
        response = render(
            request,
            "links/invited.html",
            {"invitation": invitation, "token": click.token},
        )
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    if request.cookies.get(cookie_name) != device:
        response.set_cookie(
            cookie_name,
            device,
            max_age=COOKIE_SECONDS,
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
        )
    return response
