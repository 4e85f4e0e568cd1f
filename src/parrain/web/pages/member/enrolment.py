"""``GET/POST /m/enrol``: the offer of the live campaign of the member's market, in plain
words, and the two things the programme needs: the username invited friends see, and the
PayPal address the cash goes to (also the member's contact email, as the programme's
declaration says). A refusal (paused, ended, out of budget, already enrolled...) is shown
as a sentence on the page."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from parrain.campaigns.schemas import CampaignStatus
from parrain.members import service as members
from parrain.members.schemas import (
    MAX_PAYPAL_RECEIVER,
    MAX_USERNAME,
    MemberCreate,
    PaypalReceiverUpdate,
)
from parrain.referrals import service as referrals
from parrain.referrals.errors import EnrolmentRefused
from parrain.referrals.schemas import EnrolmentCreate, EnrolmentRead
from parrain.web.deps import ClockDep, DatabaseDep, MemberKeysDep, SettingsDep
from parrain.web.pages.member.common import (
    CsrfField,
    Standing,
    member_route,
    no_session,
    page,
    redirect,
    require_csrf,
    standing,
)
from parrain.web.pages.member.session import SessionDep, set_cookie

router = APIRouter()


def _context(found: Standing, **extra: Any) -> dict[str, Any]:
    member = found.member
    return {
        "campaign": found.campaign,
        "member_known": member is not None,
        "username": member.username.reveal() if member is not None else "",
        "paypal": (
            member.paypal_receiver.reveal()
            if member is not None and member.paypal_receiver is not None
            else ""
        ),
        "max_username": MAX_USERNAME,
        "max_paypal": MAX_PAYPAL_RECEIVER,
        "errors": {},
        "refusal": None,
        **extra,
    }


@router.get("/enrol", name="member_enrol")
@member_route
def enrolment_page(
    request: Request,
    who: SessionDep,
    database: DatabaseDep,
    clock: ClockDep,
    settings: SettingsDep,
    keys: MemberKeysDep,
) -> Response:
    """The offer and the enrolment form; a member already enrolled goes to their progress."""
    if who is None:
        return no_session(request, settings)
    now = clock.now()
    found = database.read(
        lambda session: standing(
            session, who, keys=keys, link_base_url=settings.referrals.link_base_url, now=now
        )
    )
    if found.enrolled_in_open_campaign:
        return redirect(request, "/m")
    paused = found.campaign is not None and found.campaign.status is CampaignStatus.PAUSED
    context = _context(found, refusal="paused" if paused else None)
    return page(request, "member/enrol.html", context, who=who)


def _field_errors(error: ValidationError) -> dict[str, str]:
    """Which form field each problem is about (the words are the template's)."""
    fields = {"username": "username", "email": "paypal", "paypal_receiver": "paypal"}
    found: dict[str, str] = {}
    for problem in error.errors():
        location = [str(part) for part in problem.get("loc", ())]
        for part in location:
            if part in fields:
                found[fields[part]] = "invalid"
    return found or {"paypal": "invalid"}


@router.post("/enrol", name="member_enrol_submit")
@member_route
def enrol(
    request: Request,
    who: SessionDep,
    database: DatabaseDep,
    clock: ClockDep,
    settings: SettingsDep,
    keys: MemberKeysDep,
    csrf_token: CsrfField = None,
    username: Annotated[str, Form(max_length=MAX_USERNAME * 4)] = "",
    paypal: Annotated[str, Form(max_length=MAX_PAYPAL_RECEIVER * 4)] = "",
) -> Response:
    """Enrol the session's person in the live campaign of their market."""
    if who is None:
        return no_session(request, settings)
    require_csrf(who, csrf_token)
    now = clock.now()
    link_base_url = settings.referrals.link_base_url
    found = database.read(
        lambda session: standing(session, who, keys=keys, link_base_url=link_base_url, now=now)
    )
    campaign = found.campaign
    if campaign is None:
        return page(request, "member/enrol.html", _context(found), who=who, status_code=409)
    member = found.member
    try:
        if member is None:
            assert who.user_id is not None  # a session without a member keeps the user id
            member_in = MemberCreate.model_validate(
                {
                    "market": who.market,
                    "marketplace_user_id": who.user_id.reveal(),
                    "email": paypal,
                    "username": username,
                    "paypal_receiver": paypal,
                }
            )
            receiver_in = None
        else:
            member_in = MemberCreate.model_validate(
                {
                    "market": member.market,
                    "marketplace_user_id": member.marketplace_user_id.reveal(),
                    "email": member.email.reveal(),
                    "username": member.username.reveal(),
                }
            )
            receiver_in = PaypalReceiverUpdate.model_validate({"paypal_receiver": paypal})
    except ValidationError as error:
        context = _context(found, errors=_field_errors(error), username=username, paypal=paypal)
        return page(request, "member/enrol.html", context, who=who, status_code=422)

    def work(session: Session) -> EnrolmentRead:
        if member is not None and receiver_in is not None:
            members.update_paypal_receiver(
                session=session,
                member_id=member.id,
                receiver_in=receiver_in,
                keys=keys,
                clock=clock,
            )
        return referrals.enrol(
            session=session,
            campaign_id=campaign.id,
            enrolment_in=EnrolmentCreate(member=member_in),
            keys=keys,
            clock=clock,
            link_base_url=link_base_url,
        )

    try:
        enrolment = database.run(work)
    except EnrolmentRefused as refused:
        reason = str(refused.details.get("reason", refused.code))
        context = _context(found, refusal=reason, username=username, paypal=paypal)
        return page(request, "member/enrol.html", context, who=who, status_code=409)
    response = redirect(request, "/m")
    set_cookie(response, who.as_member(enrolment.member_id), settings, now)
    return response
