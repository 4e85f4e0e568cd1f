"""``GET/POST /m/consent``: the member's optional consents, asked one use at a time.

Showing the page records that the notice of the campaign's latest declaration was shown
(``shown`` events with its hash): that is the proof a later grant rests on. Each optional
use on each channel has its own switch, unticked unless it is granted now. Saving records a
grant for each switch turned on, a withdrawal for each granted one turned off, and a
refusal for each one left off that was not refused already; ``POST /m/consent/withdraw``
takes one grant back with one tap. The reward never depends on any of it (ADR 15).
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from parrain.config import Settings
from parrain.consent import service as consent
from parrain.consent import wording
from parrain.consent.errors import ConsentNotGranted, DeclarationNotFound
from parrain.consent.schemas import (
    ConsentChoice,
    ConsentStatus,
    ConsentWithdrawal,
    LegalBasis,
    NoticeLanguage,
    NoticeShownCreate,
)
from parrain.errors import InvalidInput
from parrain.kit.clock import Clock
from parrain.members.service import MemberKeys
from parrain.web.deps import ClockDep, DatabaseDep, MemberKeysDep, SettingsDep
from parrain.web.pages.member.common import (
    CsrfField,
    member_route,
    no_session,
    page,
    redirect,
    require_csrf,
    standing,
)
from parrain.web.pages.member.session import MemberSession, SessionDep
from parrain.web.templating import locale_of

router = APIRouter()

#: The ``method`` of the events each button records: the screen and the button, as ids.
SHOWN_METHOD = "member_pages:consent:shown"
SAVE_METHOD = "member_pages:consent:save"
WITHDRAW_METHOD = "member_pages:consent:withdraw"
#: Where the short notice ends and its detail begins (a line of its own, per language).
_DETAIL_HEADING = re.compile(r"^(?:IN DETAIL|EN DÉTAIL)\s*$", re.MULTILINE)
_IN_FORCE = (ConsentStatus.GRANTED, ConsentStatus.RENEWAL_DUE)
_MAX_SWITCHES = 200

UsesField = Annotated[list[str], Form(alias="use", max_length=_MAX_SWITCHES)]


@dataclass(frozen=True, slots=True)
class Switch:
    """One optional use on one channel, as the page shows it."""

    key: str
    data_category: str
    data_use: str
    channel: str
    what: str
    why: str
    where: str
    duration: str | None
    status: str
    on: bool
    expires_at: Any


def _key(data_category: str, data_use: str, channel: str) -> str:
    return f"{data_category}|{data_use}|{channel}"


def _issuer(settings: Settings) -> consent.ReceiptIssuer:
    return consent.ReceiptIssuer(
        signing_key=settings.crypto.build_signing_key(),
        notice_base_url=settings.referrals.link_base_url,
    )


def _switches(
    session: Session, member_id: UUID, campaign_id: UUID, language: NoticeLanguage, clock: Clock
) -> list[Switch]:
    declaration = consent.get_declaration(session=session, campaign_id=campaign_id)
    states = {
        _key(state.data_category, state.data_use, state.channel): state
        for state in consent.member_consents(
            session=session, member_id=member_id, clock=clock
        ).items
        if state.campaign_id == campaign_id
    }
    switches = []
    for item in declaration.items:
        if item.legal_basis is not LegalBasis.CONSENT:
            continue
        purpose = (item.purpose or {}).get(language)
        for channel in sorted(set(item.channels)):
            key = _key(item.data_category, item.data_use, channel)
            state = states.get(key)
            status = state.status if state is not None else ConsentStatus.NOT_ASKED
            switches.append(
                Switch(
                    key=key,
                    data_category=item.data_category,
                    data_use=item.data_use,
                    channel=channel,
                    what=wording.category_words(item.data_category, language),
                    why=purpose.rstrip(". ")
                    if purpose
                    else wording.use_words(item.data_use, language),
                    where=wording.channel_words(channel, language),
                    duration=(
                        wording.duration_words(item.max_days, language)
                        if item.max_days is not None
                        else None
                    ),
                    status=status.value,
                    on=status in _IN_FORCE,
                    expires_at=state.expires_at if state is not None else None,
                )
            )
    return switches


def _campaign_of(
    session: Session, who: MemberSession, settings: Settings, clock: Clock, keys: MemberKeys
) -> tuple[UUID, UUID] | None:
    found = standing(
        session, who, keys=keys, link_base_url=settings.referrals.link_base_url, now=clock.now()
    )
    if found.member is None or found.enrolment is None:
        return None
    return found.member.id, found.enrolment.campaign_id


@router.get("/consent", name="member_consent")
@member_route
def consent_page(
    request: Request,
    who: SessionDep,
    database: DatabaseDep,
    clock: ClockDep,
    settings: SettingsDep,
    keys: MemberKeysDep,
) -> Response:
    """The notice (short first, the detail one tap away) and one switch per optional use."""
    if who is None:
        return no_session(request, settings)
    language = NoticeLanguage(locale_of(request))

    def work(session: Session) -> dict[str, Any] | None:
        ids = _campaign_of(session, who, settings, clock, keys)
        if ids is None:
            return None
        member_id, campaign_id = ids
        try:
            shown = consent.show_notice(
                session=session,
                member_id=member_id,
                shown_in=NoticeShownCreate(
                    campaign_id=campaign_id, language=language, method=SHOWN_METHOD
                ),
                clock=clock,
            )
        except DeclarationNotFound:
            return {"notice": None, "short": "", "detail": "", "switches": []}
        short, _heading, detail = _split(shown.notice.content)
        return {
            "notice": shown.notice,
            "short": short,
            "detail": detail,
            "switches": _switches(session, member_id, campaign_id, language, clock),
        }

    context = database.run(work)
    if context is None:
        return redirect(request, "/m/enrol")
    context["saved"] = request.query_params.get("saved")
    return page(request, "member/consent.html", context, who=who)


def _split(content: str) -> tuple[str, str, str]:
    found = _DETAIL_HEADING.search(content)
    if found is None:
        return content.strip(), "", ""
    return content[: found.start()].strip(), found.group(0), content[found.end() :].strip()


class UnknownUse(InvalidInput):
    """A withdrawal form naming no use this page could have shown."""

    code = "consent_use_unknown"


class _NoticeChanged(Exception):
    """The declaration changed since the page was shown: show the new notice first."""


@router.post("/consent", name="member_consent_save")
@member_route
def save_consents(
    request: Request,
    who: SessionDep,
    database: DatabaseDep,
    clock: ClockDep,
    settings: SettingsDep,
    keys: MemberKeysDep,
    csrf_token: CsrfField = None,
    uses: UsesField = [],  # noqa: B006 - FastAPI copies a form default, it is never shared
    notice_sha256: Annotated[str, Form(max_length=64)] = "",
    language: Annotated[NoticeLanguage, Form()] = NoticeLanguage.EN,
) -> Response:
    """Record the member's answer to every switch of the page, with the notice it was."""
    if who is None:
        return no_session(request, settings)
    require_csrf(who, csrf_token)
    issuer = _issuer(settings)
    ticked = set(uses)

    def work(session: Session) -> bool:
        ids = _campaign_of(session, who, settings, clock, keys)
        if ids is None:
            return False
        member_id, campaign_id = ids
        notice = consent.get_notice(session=session, campaign_id=campaign_id, language=language)
        if notice.sha256 != notice_sha256:
            raise _NoticeChanged
        actor = f"member:{member_id}"
        for switch in _switches(session, member_id, campaign_id, language, clock):
            fields = {
                "campaign_id": campaign_id,
                "data_category": switch.data_category,
                "data_use": switch.data_use,
                "channel": switch.channel,
            }
            if switch.key in ticked and not switch.on:
                consent.grant(
                    session=session,
                    member_id=member_id,
                    choice=ConsentChoice.model_validate(
                        {**fields, "language": language, "method": f"{SAVE_METHOD}:on"}
                    ),
                    issuer=issuer,
                    actor=actor,
                    clock=clock,
                )
            elif switch.key not in ticked and switch.on:
                consent.withdraw(
                    session=session,
                    member_id=member_id,
                    withdrawal=ConsentWithdrawal.model_validate(
                        {**fields, "method": f"{SAVE_METHOD}:off"}
                    ),
                    issuer=issuer,
                    actor=actor,
                    clock=clock,
                )
            elif switch.key not in ticked and switch.status != ConsentStatus.REFUSED.value:
                consent.refuse(
                    session=session,
                    member_id=member_id,
                    choice=ConsentChoice.model_validate(
                        {**fields, "language": language, "method": f"{SAVE_METHOD}:off"}
                    ),
                    actor=actor,
                    clock=clock,
                )
        return True

    try:
        enrolled = database.run(work)
    except _NoticeChanged:
        return redirect(request, "/m/consent", query="saved=changed")
    if not enrolled:
        return redirect(request, "/m/enrol")
    return redirect(request, "/m/consent", query="saved=1")


@router.post("/consent/withdraw", name="member_consent_withdraw")
@member_route
def withdraw_consent(
    request: Request,
    who: SessionDep,
    database: DatabaseDep,
    clock: ClockDep,
    settings: SettingsDep,
    keys: MemberKeysDep,
    csrf_token: CsrfField = None,
    use: Annotated[str, Form(max_length=400)] = "",
) -> Response:
    """Take one granted use back, in one tap: effective for the very next consent check."""
    if who is None:
        return no_session(request, settings)
    require_csrf(who, csrf_token)
    issuer = _issuer(settings)
    data_category, _sep, rest = use.partition("|")
    data_use, _sep, channel = rest.partition("|")

    def work(session: Session) -> bool:
        ids = _campaign_of(session, who, settings, clock, keys)
        if ids is None:
            return False
        member_id, campaign_id = ids
        try:
            withdrawal = ConsentWithdrawal.model_validate(
                {
                    "campaign_id": campaign_id,
                    "data_category": data_category,
                    "data_use": data_use,
                    "channel": channel,
                    "method": WITHDRAW_METHOD,
                }
            )
        except ValidationError:
            raise UnknownUse("this is not one of the campaign's optional uses") from None
        # Tapped twice, or it ran out meanwhile: nothing is granted, as asked.
        with contextlib.suppress(ConsentNotGranted):
            consent.withdraw(
                session=session,
                member_id=member_id,
                withdrawal=withdrawal,
                issuer=issuer,
                actor=f"member:{member_id}",
                clock=clock,
            )
        return True

    if not database.run(work):
        return redirect(request, "/m/enrol")
    return redirect(request, "/m/consent", query="saved=withdrawn")
