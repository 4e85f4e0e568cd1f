"""What the member pages share: who the session is, the campaign they see, rendering.

Every page is keyed from the session cookie alone: no member id ever appears in an
address, so one member can never ask for another's page.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, ParamSpec, cast

from babel.dates import format_timedelta
from fastapi import Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from parrain.campaigns import service as campaigns
from parrain.campaigns.schemas import CampaignRead, CampaignStatus
from parrain.config import Settings
from parrain.members import service as members
from parrain.members.errors import MemberErased, MemberNotFound
from parrain.members.schemas import MemberRead
from parrain.members.service import MemberKeys
from parrain.referrals import service as referrals
from parrain.referrals.schemas import EnrolmentRead
from parrain.web.forms import FIELD, check_csrf, csrf_token
from parrain.web.pages.member.session import MemberSession, clear_cookie
from parrain.web.templating import BABEL_LOCALES, locale_of, render

P = ParamSpec("P")

#: Pages carrying a token or personal data never tell the next site where the visitor was.
PRIVATE_HEADERS = {"Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}


@dataclass(frozen=True, slots=True)
class Standing:
    """The member as the pages see them: who, the campaign of their market that is open
    now (if any) and their enrolment (in that campaign, else their latest one)."""

    member: MemberRead | None
    campaign: CampaignRead | None
    enrolment: EnrolmentRead | None

    @property
    def enrolled_in_open_campaign(self) -> bool:
        return (
            self.campaign is not None
            and self.enrolment is not None
            and self.enrolment.campaign_id == self.campaign.id
        )

    @property
    def may_enrol(self) -> bool:
        """A campaign is open and they are not in it (yet)."""
        return self.campaign is not None and not self.enrolled_in_open_campaign


def open_campaign(session: Session, *, market: str, now: datetime) -> CampaignRead | None:
    """The campaign of ``market`` whose window is open at ``now``: a live one (the latest
    started when there are several), else a paused one (the pages say it is paused)."""
    open_now = [
        campaign
        for campaign in campaigns.list_campaigns(session=session)
        if campaign.market == market
        and campaign.status in (CampaignStatus.LIVE, CampaignStatus.PAUSED)
        and campaign.starts_at <= now < campaign.ends_at
    ]
    return max(
        open_now,
        key=lambda campaign: (campaign.status is CampaignStatus.LIVE, campaign.starts_at),
        default=None,
    )


class SessionEnded(Exception):
    """The session names a member who is gone (erased): it no longer opens anything."""


def member_route(endpoint: Callable[P, Response]) -> Callable[P, Response]:
    """Answer a session whose member is gone like no session at all (FastAPI reads the
    route's parameters through ``functools.wraps``)."""

    @functools.wraps(endpoint)
    def route(*args: P.args, **kwargs: P.kwargs) -> Response:
        try:
            return endpoint(*args, **kwargs)
        except SessionEnded:
            return no_session(cast(Request, kwargs["request"]), cast(Settings, kwargs["settings"]))

    return route


def find_member(session: Session, who: MemberSession, keys: MemberKeys) -> MemberRead | None:
    """The session's member; ``None`` before they are one. :class:`SessionEnded` when the
    member it names was erased."""
    if who.member_id is not None:
        try:
            member = members.get_member(session=session, member_id=who.member_id, keys=keys)
        except (MemberErased, MemberNotFound):
            raise SessionEnded from None
        if member.market != who.market:
            raise SessionEnded
        return member
    try:
        if who.user_id is not None:
            return members.find_by_marketplace_user(
                session=session,
                market=who.market,
                marketplace_user_id=who.user_id.reveal(),
                keys=keys,
            )
    except (MemberErased, MemberNotFound):
        return None
    return None


def standing(
    session: Session, who: MemberSession, *, keys: MemberKeys, link_base_url: str, now: datetime
) -> Standing:
    member = find_member(session, who, keys)
    campaign = open_campaign(session, market=who.market, now=now)
    enrolment = None
    if member is not None:
        enrolments = referrals.enrolments_of_member(
            session=session, member_id=member.id, link_base_url=link_base_url
        )
        current = [e for e in enrolments if campaign is not None and e.campaign_id == campaign.id]
        enrolment = current[0] if current else (enrolments[-1] if enrolments else None)
    return Standing(member=member, campaign=campaign, enrolment=enrolment)


def page(
    request: Request,
    name: str,
    context: Mapping[str, Any] | None = None,
    *,
    who: MemberSession | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """A member page: the session's CSRF token for its forms, and private headers."""
    values = dict(context or {})
    values["csrf_field"] = FIELD
    values["csrf_token"] = csrf_token(who.csrf_secret) if who is not None else ""
    values["signed_in"] = who is not None
    return render(request, name, values, status_code=status_code, headers=PRIVATE_HEADERS)


def no_session(request: Request, settings: Settings) -> HTMLResponse:
    """No (valid) session: say to open the pages from the app again (HTTP 401)."""
    response = page(request, "member/no_session.html", status_code=401)
    clear_cookie(response, settings)
    return response


def redirect(request: Request, path: str, *, query: str = "") -> RedirectResponse:
    """A 303 to ``path`` (with ``query``) that keeps the ``?lang=`` the visitor chose."""
    lang = request.query_params.get("lang")
    parts = [query] if query else []
    if lang in ("en", "fr"):
        parts.append(f"lang={lang}")
    target = f"{path}?{'&'.join(parts)}" if parts else path
    return RedirectResponse(target, status_code=303, headers=PRIVATE_HEADERS)


#: The hidden field of every form: ``csrf_token: CsrfField``.
CsrfField = Annotated[str | None, Form(alias=FIELD, max_length=200)]


def require_csrf(who: MemberSession, submitted: str | None) -> None:
    """Refuse (403 ``csrf_failed``) a form not sent from a page of this session."""
    check_csrf(who.csrf_secret, submitted)


def time_left(request: Request, deadline: datetime, now: datetime) -> str | None:
    """How long until ``deadline`` in words of the page's language ("3 hours"), or ``None``
    once it passed."""
    left = deadline - now
    if left <= timedelta(0):
        return None
    return str(
        format_timedelta(
            left, threshold=1.5, format="long", locale=BABEL_LOCALES[locale_of(request)]
        )
    )
