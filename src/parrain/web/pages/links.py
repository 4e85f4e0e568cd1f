"""``GET /r/{code}``: the sponsorship link a member shares.

A visit records the click (one per link and device; crawlers and link previewers are not
counted), issues the deferred deep-link token, and sends the visitor on to the campaign's
app-store or landing URL with the token as ``parrain_token``. Without such a URL it shows
the invitation itself. A mistyped or unknown code gets a friendly page (HTTP 404) that says
what to check, never an error document.

The device is told apart by a first-party cookie. A visitor without one gets a value
derived from their address and user agent (keyed, so it reveals neither), and the cookie is
set to it: a browser that refuses cookies still counts once per address and agent.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from parrain.kit.crypto import lookup_hash
from parrain.referrals import service as referrals
from parrain.referrals.codes import parse_code
from parrain.referrals.errors import InvalidCode, UnknownCode
from parrain.web.deps import ClockDep, DatabaseDep, MemberKeysDep, SettingsDep
from parrain.web.errors import error_responses

templates = Jinja2Templates(directory=Path(__file__).resolve().parent.parent / "templates")
router = APIRouter(include_in_schema=True, tags=["links"])

#: How long the device cookie lives: a year, the longest a visitor is plausibly one device.
COOKIE_SECONDS = 365 * 24 * 3600
_COPY = {
    "en": {
        "unknown_title": "This invitation link does not work",
        "unknown_body": (
            "The code in this link is not one we know. Check that the link was copied "
            "whole, or ask the friend who invited you to send it again."
        ),
        "mistyped_body": (
            "The code in this link looks mistyped: a character is probably wrong or two are "
            "swapped. Ask the friend who invited you to send the link again."
        ),
        "invited_title": "You are invited",
        "invited_body": "Install the app and sign up to accept the invitation.",
        "code_label": "Invitation code",
    },
    "fr": {
        "unknown_title": "Ce lien d'invitation ne fonctionne pas",
        "unknown_body": (
            "Nous ne connaissons pas le code de ce lien. Vérifiez qu'il a été copié en entier, "
            "ou demandez à la personne qui vous a invité de vous le renvoyer."
        ),
        "mistyped_body": (
            "Le code de ce lien semble mal saisi : un caractère est probablement faux ou deux "
            "sont inversés. Demandez à la personne qui vous a invité de vous le renvoyer."
        ),
        "invited_title": "Vous êtes invité",
        "invited_body": "Installez l'application et inscrivez-vous pour accepter l'invitation.",
        "code_label": "Code d'invitation",
    },
}


def _language(accept_language: str | None) -> str:
    """``fr`` when the browser prefers French to English, else ``en``."""
    for part in (accept_language or "").split(","):
        tag = part.split(";")[0].strip().lower()
        if tag.startswith("fr"):
            return "fr"
        if tag.startswith("en"):
            return "en"
    return "en"


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
    responses={
        200: {"description": "The invitation (no landing URL configured)."},
        404: {"description": "A friendly page: the code is mistyped or unknown."},
        **error_responses(422, 500),
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
    accept_language: Annotated[str | None, Header()] = None,
) -> Response:
    """Record the click, then redirect to the app store or landing page with the token."""
    copy = _COPY[_language(accept_language)]
    cookie_name = settings.referrals.device_cookie
    device = _device(request, cookie_name, keys)
    try:
        click = database.run(
            lambda session: referrals.record_click(
                session=session,
                code_text=code,
                device=device,
                user_agent=user_agent,
                keys=keys,
                clock=clock,
            )
        )
    except (InvalidCode, UnknownCode) as problem:
        body = copy["unknown_body"] if isinstance(problem, UnknownCode) else copy["mistyped_body"]
        return templates.TemplateResponse(
            request,
            "links/unknown.html",
            {"title": copy["unknown_title"], "body": body, "lang": _language(accept_language)},
            status_code=404,
        )
    response: Response
    if click.redirect_to is not None:
        response = RedirectResponse(click.redirect_to, status_code=302)
    else:
        response = templates.TemplateResponse(
            request,
            "links/invited.html",
            {
                "title": copy["invited_title"],
                "body": copy["invited_body"],
                "code_label": copy["code_label"],
                "code": parse_code(code).display,
                "token": click.token,
                "lang": _language(accept_language),
            },
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
