"""``/console`` (the campaigns), ``/console/campaigns/{id}`` (one campaign: its launch gate,
its lifecycle actions, its funnel and budget burn-down as SVG charts drawn on the server),
and the form of a new or changed draft (``/console/campaigns/new``,
``/console/campaigns/{id}/edit``).

The launch gate shown is the one :func:`parrain.campaigns.service.launch` runs (every check
registered in :mod:`parrain.campaigns.gate`, the consent policy's included), evaluated now;
an action refused by it comes back to the page with the same findings as sentences.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Protocol
from uuid import UUID

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from parrain.audit import service as audit
from parrain.campaigns import repository as campaign_rows
from parrain.campaigns import service as campaigns
from parrain.campaigns.errors import (
    CampaignNameTaken,
    CampaignNotEditable,
    IllegalTransition,
    InvalidCampaign,
    LaunchGateFailed,
)
from parrain.campaigns.gate import GateFinding, run_launch_gate
from parrain.campaigns.schemas import CampaignRead, CampaignStatus
from parrain.consent.service import GATE_CHECK  # importing it registers the consent check
from parrain.kit.clock import Clock
from parrain.kit.money import Money
from parrain.ledger import service as ledger
from parrain.operators.roles import Permission
from parrain.referrals import service as referrals
from parrain.web.charts import Chart, burn_down_chart, funnel_chart, thin
from parrain.web.forms import FIELD, check_csrf
from parrain.web.pages.console import campaign_form
from parrain.web.pages.console.campaign_form import CampaignForm
from parrain.web.pages.console.session import (
    PREFIX,
    SignedIn,
    clock_of,
    database_of,
    flash,
    guard,
    page,
)
from parrain.web.templating import BABEL_LOCALES, Language, gettext_for, locale_of

router = APIRouter()


class Transition(Protocol):
    def __call__(
        self, *, session: Session, campaign_id: UUID, actor: str, clock: Clock
    ) -> CampaignRead: ...


#: The lifecycle actions the campaign page offers, in the order its buttons appear.
ACTIONS: dict[str, Transition] = {
    "launch": campaigns.launch,
    "pause": campaigns.pause,
    "resume": campaigns.resume,
    "end": campaigns.end,
}


@dataclass(frozen=True, slots=True)
class Finding:
    """A launch-gate finding as the page shows it: what kind of check, and why, as a
    sentence."""

    check: str
    title: str
    sentence: str
    #: False when the page does not know the check: the sentence is then the finding's own,
    #: in English, and the template marks it so.
    translated: bool = True


def _sentence(message: str) -> str:
    text = message.strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


def _findings(session: Session, campaign_id: UUID, clock: Clock, request: Request) -> list[Finding]:
    campaign = campaign_rows.get(session, campaign_id)
    if campaign is None:
        return []
    gettext = gettext_for(locale_of(request))
    titles = {
        "budget_funded": gettext("Prize budget"),
        "window_open": gettext("Campaign dates"),
        GATE_CHECK: gettext("Data-use declaration"),
    }
    language = locale_of(request)
    findings = []
    for found in run_launch_gate(session, campaign, clock):
        said = _said(found, gettext, language)
        findings.append(
            Finding(
                check=found.check,
                title=titles.get(found.check.split(".")[0], gettext("Other check")),
                sentence=said if said is not None else _sentence(found.message),
                translated=said is not None,
            )
        )
    return findings


def _said(found: GateFinding, gettext: Callable[[str], str], language: Language) -> str | None:
    """The finding in the page's language, for the checks the page knows; None otherwise."""
    if found.check == "window_open":
        return gettext("The campaign's time window has already closed.")
    if found.check == f"{GATE_CHECK}.declaration_missing":
        return gettext(
            "The campaign has no data-use declaration: declare what data it uses, why, where, "
            "by whom and for how long before it launches (GDPR Art. 13(1)(c))."
        )
    values = found.values
    if found.check == "budget_funded" and {"held_minor", "prize_minor", "currency"} <= set(values):
        locale, currency = BABEL_LOCALES[language], str(values["currency"])
        return gettext("The prize budget holds %(held)s, less than one prize (%(prize)s).") % {
            "held": Money(int(values["held_minor"]), currency).format(locale),
            "prize": Money(int(values["prize_minor"]), currency).format(locale),
        }
    return None


def _messages(request: Request, code: str) -> tuple[str, str] | None:
    gettext = gettext_for(locale_of(request))
    known = {
        "launched": ("flash", gettext("The campaign is live: members can enrol.")),
        "paused": (
            "flash",
            gettext(
                "The campaign is paused: the programme is removed for now, and what members "
                "already earned is honoured."
            ),
        ),
        "resumed": ("flash", gettext("The campaign is live again.")),
        "ended": ("flash", gettext("The campaign has ended.")),
        "launch_refused": (
            "error",
            gettext("The campaign was not launched: the launch gate found the problems below."),
        ),
        "resume_refused": (
            "error",
            gettext("The campaign was not resumed: the launch gate found the problems below."),
        ),
        "created": ("flash", gettext("The draft is saved. Fund it, then launch it.")),
        "saved": ("flash", gettext("The changes are saved.")),
        "not_editable": (
            "error",
            gettext("Only a draft can be changed: this campaign's rules are fixed."),
        ),
        "not_now": (
            "error",
            gettext("This action is not possible in the campaign's current state."),
        ),
    }
    return known.get(code)


def _form_page(
    request: Request,
    who: SignedIn,
    form: CampaignForm,
    *,
    campaign: CampaignRead | None,
    status_code: int = 200,
) -> Response:
    return page(
        request,
        "console/campaign_form.html",
        {
            "who": who,
            "form": form,
            "campaign": campaign,
            "choices": campaign_form.CHOICES,
            "amounts": campaign_form.AMOUNTS,
        },
        status_code=status_code,
    )


def _messages_of(request: Request) -> campaign_form.Messages:
    return campaign_form.Messages(gettext_for(locale_of(request)))


@router.get(f"{PREFIX}/campaigns/new", name="console_campaign_new_form")
def new_campaign_form(request: Request) -> Response:
    """The form of a new draft campaign."""
    who = guard(request, Permission.CAMPAIGNS_EDIT)
    if isinstance(who, Response):
        return who
    return _form_page(
        request, who, campaign_form.blank_form(clock_of(request).now()), campaign=None
    )


@router.post(f"{PREFIX}/campaigns/new", name="console_campaign_create")
async def create_campaign(request: Request) -> Response:
    """Create the draft and go to its page, or show the form again with what to fix."""
    submitted = await request.form()
    return await run_in_threadpool(_create, request, dict(submitted))


def _create(request: Request, submitted: dict[str, Any]) -> Response:
    who = guard(request, Permission.CAMPAIGNS_EDIT)
    if isinstance(who, Response):
        return who
    check_csrf(who.session.csrf_secret, _text(submitted.get(FIELD)))
    messages = _messages_of(request)
    form, campaign_in = campaign_form.read_new(submitted, messages)
    if campaign_in is None:
        return _form_page(request, who, form, campaign=None, status_code=422)
    clock, actor = clock_of(request), who.session.operator.actor
    try:
        created = database_of(request).run(
            lambda session: campaigns.create(
                session=session, campaign_in=campaign_in, actor=actor, clock=clock
            )
        )
    except CampaignNameTaken:
        form.errors["name"] = messages.name_taken()
        return _form_page(request, who, form, campaign=None, status_code=409)
    response = RedirectResponse(f"{PREFIX}/campaigns/{created.id}", 303)
    flash(response, request, "created")
    return response


@router.get(f"{PREFIX}/campaigns/{{campaign_id}}/edit", name="console_campaign_edit_form")
def edit_campaign_form(campaign_id: UUID, request: Request) -> Response:
    """A draft's form, filled with its rules (a campaign that is not a draft cannot change)."""
    who = guard(request, Permission.CAMPAIGNS_EDIT)
    if isinstance(who, Response):
        return who
    campaign = database_of(request).read(
        lambda session: campaigns.get(session=session, campaign_id=campaign_id)
    )
    if campaign.status is not CampaignStatus.DRAFT:
        return _back(request, campaign_id, "not_editable")
    return _form_page(request, who, campaign_form.form_of(campaign), campaign=campaign)


@router.post(f"{PREFIX}/campaigns/{{campaign_id}}/edit", name="console_campaign_update")
async def update_campaign(campaign_id: UUID, request: Request) -> Response:
    """Save a draft's changes and go back to its page, or show what to fix."""
    submitted = await request.form()
    return await run_in_threadpool(_update, request, campaign_id, dict(submitted))


def _update(request: Request, campaign_id: UUID, submitted: dict[str, Any]) -> Response:
    who = guard(request, Permission.CAMPAIGNS_EDIT)
    if isinstance(who, Response):
        return who
    check_csrf(who.session.csrf_secret, _text(submitted.get(FIELD)))
    database, clock = database_of(request), clock_of(request)
    actor = who.session.operator.actor
    campaign = database.read(
        lambda session: campaigns.get(session=session, campaign_id=campaign_id)
    )
    if campaign.status is not CampaignStatus.DRAFT:
        return _back(request, campaign_id, "not_editable")
    messages = _messages_of(request)
    form, changes = campaign_form.read_changes(submitted, campaign, messages)
    if changes is None:
        return _form_page(request, who, form, campaign=campaign, status_code=422)
    try:
        database.run(
            lambda session: campaigns.update(
                session=session,
                campaign_id=campaign_id,
                campaign_in=changes,
                actor=actor,
                clock=clock,
            )
        )
    except CampaignNameTaken:
        form.errors["name"] = messages.name_taken()
        return _form_page(request, who, form, campaign=campaign, status_code=409)
    except CampaignNotEditable:
        return _back(request, campaign_id, "not_editable")
    except InvalidCampaign as refused:
        field = str(refused.details.get("field", "name"))
        form.errors[field.removesuffix("_minor")] = (
            messages.ends_before_start()
            if field == "ends_at"
            else messages.no_reward()
            if field == "reward_cash_minor"
            else messages.invalid()
        )
        return _form_page(request, who, form, campaign=campaign, status_code=422)
    return _back(request, campaign_id, "saved")


def _back(request: Request, campaign_id: UUID, code: str) -> Response:
    response = RedirectResponse(f"{PREFIX}/campaigns/{campaign_id}", 303)
    flash(response, request, code)
    return response


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


@router.get(PREFIX, name="console_campaigns")
def campaign_list(request: Request) -> Response:
    """Every campaign: name, market, currency, state and the budget left."""
    who = guard(request, Permission.CAMPAIGNS_VIEW)
    if isinstance(who, Response):
        return who
    found = database_of(request).read(lambda session: campaigns.list_campaigns(session=session))
    return page(
        request,
        "console/campaigns.html",
        {"who": who, "campaigns": found, "may_edit": who.may(Permission.CAMPAIGNS_EDIT)},
        messages=lambda code: _messages(request, code),
    )


def _available(status: CampaignStatus) -> list[str]:
    return [
        action for action, (sources, _target) in campaigns.TRANSITIONS.items() if status in sources
    ]


@dataclass(frozen=True, slots=True)
class Charts:
    """The campaign's funnel and budget burn-down, each with its numbers."""

    funnel: Chart
    stages: list[tuple[str, int]]
    burn_down: Chart
    budget_points: list[tuple[datetime, int]]


def _charts(session: Session, campaign: CampaignRead, request: Request) -> Charts:
    language = locale_of(request)
    gettext = gettext_for(language)
    counts = referrals.funnel(session=session, campaign_id=campaign.id)
    stages = [
        (gettext("Clicks"), counts.clicks),
        (gettext("Installs"), counts.installs),
        (gettext("Signups"), counts.signups),
        (gettext("Friends who count"), counts.qualified),
        (gettext("Members rewarded"), counts.rewarded),
    ]
    history = ledger.balance_history(session=session, account_id=campaign.accounts.budget)
    points = [(point.at, point.credit_available) for point in history]
    return Charts(
        funnel=funnel_chart(stages, title=gettext("Funnel")),
        stages=stages,
        burn_down=burn_down_chart(
            points,
            currency=campaign.currency,
            locale=BABEL_LOCALES[language],
            title=gettext("Prize budget left over time"),
        ),
        budget_points=thin(points),
    )


@router.get(f"{PREFIX}/campaigns/{{campaign_id}}", name="console_campaign")
def campaign_page(campaign_id: UUID, request: Request) -> Response:
    """A campaign's rules, state and budget, its launch gate's findings, the actions its
    state allows, its funnel and its budget burn-down."""
    who = guard(request, Permission.CAMPAIGNS_VIEW)
    if isinstance(who, Response):
        return who
    clock = clock_of(request)

    def load(session: Session) -> tuple[CampaignRead, list[Finding] | None, Charts]:
        campaign = campaigns.get(session=session, campaign_id=campaign_id)
        gated = campaign.status in (CampaignStatus.DRAFT, CampaignStatus.PAUSED)
        findings = _findings(session, campaign_id, clock, request) if gated else None
        return campaign, findings, _charts(session, campaign, request)

    campaign, findings, charts = database_of(request).read(load)
    return page(
        request,
        "console/campaign.html",
        {
            "who": who,
            "campaign": campaign,
            "findings": findings,
            "charts": charts,
            "actions": _available(campaign.status),
            "may_act": who.may(Permission.CAMPAIGNS_LIFECYCLE),
            "may_edit": who.may(Permission.CAMPAIGNS_EDIT),
        },
        messages=lambda code: _messages(request, code),
    )


_DONE = {"launch": "launched", "pause": "paused", "resume": "resumed", "end": "ended"}


def _act(request: Request, campaign_id: UUID, action: str, submitted: str | None) -> Response:
    who = guard(request, Permission.CAMPAIGNS_LIFECYCLE)
    if isinstance(who, Response):
        return who
    check_csrf(who.session.csrf_secret, submitted)
    database, clock = database_of(request), clock_of(request)
    actor = who.session.operator.actor
    transition = ACTIONS[action]
    try:
        database.run(
            lambda session: transition(
                session=session, campaign_id=campaign_id, actor=actor, clock=clock
            )
        )
        outcome = _DONE[action]
    except (LaunchGateFailed, IllegalTransition) as refused:
        outcome = f"{action}_refused" if isinstance(refused, LaunchGateFailed) else "not_now"
        _audit_refusal(who, campaign_id, action, refused, database_run=database.run, clock=clock)
    response = RedirectResponse(f"{PREFIX}/campaigns/{campaign_id}", 303)
    flash(response, request, outcome)
    return response


def _audit_refusal(
    who: SignedIn,
    campaign_id: UUID,
    action: str,
    refused: LaunchGateFailed | IllegalTransition,
    *,
    database_run: Callable[[Callable[[Session], object]], object],
    clock: Clock,
) -> None:
    """An operator's refused lifecycle action goes to the audit chain too, with why."""
    findings = refused.details.get("findings") or []
    details = {
        "action": action,
        "code": refused.code,
        "checks": [item["check"] for item in findings if isinstance(item, dict)],
    }
    database_run(
        lambda session: audit.record(
            session=session,
            actor=who.session.operator.actor,
            action="campaign.action_refused",
            subject=f"campaign:{campaign_id}",
            details=details,
            clock=clock,
        )
    )


def _endpoint(action: str) -> Callable[..., Response]:
    def act(
        campaign_id: UUID,
        request: Request,
        csrf_token: Annotated[str | None, Form(max_length=200)] = None,
    ) -> Response:
        return _act(request, campaign_id, action, csrf_token)

    act.__name__ = f"campaign_{action}"
    act.__doc__ = f"{action.capitalize()} the campaign, then back to its page with the outcome."
    return act


for _action in ACTIONS:
    router.add_api_route(
        f"{PREFIX}/campaigns/{{campaign_id}}/{_action}",
        _endpoint(_action),
        methods=["POST"],
        name=f"console_campaign_{_action}",
    )

__all__ = ["ACTIONS", "router"]
