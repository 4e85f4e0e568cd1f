"""``GET /m``: the member's progress: friends who count so far out of the goal, the
deadline and the time left (server-rendered), the reward's state (held until a date,
posted, paid) with its coupons, and the link to share."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from parrain.campaigns import service as campaigns
from parrain.campaigns.schemas import CampaignRead
from parrain.coupons import service as coupons
from parrain.coupons.schemas import CouponRead
from parrain.payouts import service as payouts
from parrain.payouts.models import PayoutItem
from parrain.referrals import service as referrals
from parrain.referrals.schemas import ProgressRead
from parrain.web.deps import ClockDep, DatabaseDep, MemberKeysDep, SettingsDep
from parrain.web.pages.member.common import (
    member_route,
    no_session,
    page,
    redirect,
    standing,
    time_left,
)
from parrain.web.pages.member.session import SessionDep

router = APIRouter()


@dataclass(frozen=True, slots=True)
class _Progress:
    progress: ProgressRead
    may_enrol: bool
    campaign: CampaignRead
    coupons: list[CouponRead]
    payouts: list[PayoutItem]


@router.get("", name="member_progress")
@member_route
def progress_page(
    request: Request,
    who: SessionDep,
    database: DatabaseDep,
    clock: ClockDep,
    settings: SettingsDep,
    keys: MemberKeysDep,
) -> Response:
    """Where the member stands; someone not enrolled yet goes to the enrolment page."""
    if who is None:
        return no_session(request, settings)
    now = clock.now()
    link_base_url = settings.referrals.link_base_url

    def work(session: Session) -> _Progress | None:
        found = standing(session, who, keys=keys, link_base_url=link_base_url, now=now)
        if found.member is None or found.enrolment is None:
            return None
        enrolment = found.enrolment
        return _Progress(
            may_enrol=found.may_enrol,
            progress=referrals.progress(
                session=session, enrolment_id=enrolment.id, clock=clock, link_base_url=link_base_url
            ),
            campaign=campaigns.get(session=session, campaign_id=enrolment.campaign_id),
            coupons=[
                coupon
                for coupon in coupons.of_member(session=session, member_id=found.member.id)
                if coupon.campaign_id == enrolment.campaign_id
            ],
            payouts=payouts.items_of_member(session=session, member_id=found.member.id),
        )

    loaded = database.read(work)
    if loaded is None:
        return redirect(request, "/m/enrol")
    enrolment = loaded.progress.enrolment
    paid = [item for item in loaded.payouts if item.status == "paid"]
    paying = [item for item in loaded.payouts if item.status == "pending"]
    return page(
        request,
        "member/progress.html",
        {
            "progress": loaded.progress,
            "campaign": loaded.campaign,
            "enrolment": enrolment,
            "coupons": loaded.coupons,
            "paid": paid,
            "paying": paying,
            "time_left": time_left(request, enrolment.deadline_at, now),
            "may_enrol": loaded.may_enrol,
            "friends_missing": max(
                0, loaded.progress.friends_needed - loaded.progress.friends_counted
            ),
        },
        who=who,
    )
