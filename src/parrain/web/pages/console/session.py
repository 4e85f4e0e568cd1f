"""Who is signed in to the console, what their role allows, and the console's cookies.

The session cookie holds the session's random token (the database keeps its SHA-256); it is
HttpOnly, SameSite=Strict, expires with the session, and is ``Secure`` with the ``__Host-``
name prefix when ``settings.web.cookie_secure`` is on (the prefix makes browsers refuse one
set by a sibling domain, and requires the path ``/``). The sign-in form, which comes
before any session, has its own random CSRF secret in a short-lived cookie.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final
from urllib.parse import quote

from argon2 import PasswordHasher
from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from parrain.campaigns.schemas import CampaignStatus
from parrain.operators import service as operators
from parrain.operators.errors import PermissionDenied
from parrain.operators.roles import Permission, Role, allows
from parrain.operators.schemas import ResumedSession, SignInPolicy
from parrain.web.deps import get_clock, get_database, get_settings
from parrain.web.forms import MIN_SECRET_BYTES, csrf_token
from parrain.web.templating import gettext_for, locale_of, render

PREFIX: Final = "/console"
SIGN_IN_PATH: Final = f"{PREFIX}/sign-in"
SESSION_COOKIE: Final = "parrain_console"
SIGN_IN_COOKIE: Final = "parrain_console_sign_in"
FLASH_COOKIE: Final = "parrain_console_flash"
#: How long the sign-in form's CSRF cookie lives: time enough to type a password.
SIGN_IN_COOKIE_SECONDS: Final = 30 * 60
FLASH_SECONDS: Final = 60

# What the app was built with (``create_app``), read as the API's dependencies read it.
settings_of = get_settings
database_of = get_database
clock_of = get_clock


def policy_of(request: Request) -> SignInPolicy:
    return SignInPolicy.from_settings(settings_of(request).console)


def hasher_of(request: Request) -> PasswordHasher:
    """The app's password hasher (tests set ``app.state.password_hasher`` to a cheap one)."""
    hasher: PasswordHasher = getattr(request.app.state, "password_hasher", None) or (
        operators.DEFAULT_HASHER
    )
    return hasher


def secure_cookies(request: Request) -> bool:
    return settings_of(request).web.cookie_secure


def cookie_name(request: Request, base: str) -> str:
    """``__Host-<base>`` on HTTPS deployments (Secure, host-only, path /), else ``base``."""
    return f"__Host-{base}" if secure_cookies(request) else base


def set_cookie(
    response: Response, request: Request, base: str, value: str, *, max_age: int
) -> None:
    response.set_cookie(
        cookie_name(request, base),
        value,
        max_age=max_age,
        path="/",
        secure=secure_cookies(request),
        httponly=True,
        samesite="strict",
    )


def delete_cookie(response: Response, request: Request, base: str) -> None:
    response.delete_cookie(
        cookie_name(request, base),
        path="/",
        secure=secure_cookies(request),
        httponly=True,
        samesite="strict",
    )


def session_token(request: Request) -> str:
    return request.cookies.get(cookie_name(request, SESSION_COOKIE), "")


def current_session(request: Request) -> ResumedSession | None:
    """The live session of this request's cookie, kept from idling out; None without one."""
    token = session_token(request)
    if not token:
        return None
    clock = clock_of(request)
    policy = policy_of(request)
    return database_of(request).run(
        lambda session: operators.resume_session(
            session=session, token=token, policy=policy, clock=clock
        )
    )


def sign_in_redirect(request: Request) -> RedirectResponse:
    """To the sign-in page, coming back here afterwards (for a page; a form goes home)."""
    target = request.url.path if request.method == "GET" else PREFIX
    response = RedirectResponse(f"{SIGN_IN_PATH}?next={quote(target, safe='/')}", 303)
    if session_token(request):
        delete_cookie(response, request, SESSION_COOKIE)  # it no longer opens anything
        flash(response, request, "session_ended")
    return response


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a console address of this site, never elsewhere."""
    if (
        target
        and target.startswith(PREFIX)
        and not target.startswith("//")
        and "\\" not in target
        and len(target) <= 200
    ):
        return target
    return PREFIX


@dataclass(frozen=True, slots=True)
class SignedIn:
    """A request's signed-in operator and their session's CSRF token."""

    session: ResumedSession

    @property
    def csrf_token(self) -> str:
        return csrf_token(self.session.csrf_secret)

    def may(self, permission: Permission) -> bool:
        return allows(self.session.operator.role, permission)


def guard(request: Request, permission: Permission | None) -> SignedIn | RedirectResponse:
    """The signed-in operator if their role holds ``permission`` (None: any role); a
    redirect to the sign-in page without a session; :class:`PermissionDenied` (403) when
    the role does not allow it."""
    resumed = current_session(request)
    if resumed is None:
        return sign_in_redirect(request)
    if permission is not None and not allows(resumed.operator.role, permission):
        gettext = gettext_for(locale_of(request))
        raise PermissionDenied(
            gettext(
                "Your role (%(role)s) does not allow this. Ask an administrator if you need it."
            )
            % {"role": Labels(gettext).role(resumed.operator.role)},
            permission=permission.value,
            role=resumed.operator.role.value,
        )
    return SignedIn(resumed)


def sign_in_secret(request: Request) -> bytes | None:
    """The sign-in form's CSRF secret from its cookie; None when missing or malformed."""
    text = request.cookies.get(cookie_name(request, SIGN_IN_COOKIE), "")
    try:
        secret = base64.urlsafe_b64decode(text.encode("ascii")) if text else b""
    except (binascii.Error, ValueError):
        return None
    return secret if len(secret) >= MIN_SECRET_BYTES else None


def new_sign_in_secret() -> bytes:
    return secrets.token_bytes(MIN_SECRET_BYTES)


def keep_sign_in_secret(response: Response, request: Request, secret: bytes) -> None:
    """Set the sign-in form's secret in its cookie on ``response``."""
    text = base64.urlsafe_b64encode(secret).decode("ascii")
    set_cookie(response, request, SIGN_IN_COOKIE, text, max_age=SIGN_IN_COOKIE_SECONDS)


# --- Flash messages: one word in a short-lived cookie, read by the next page ---------------


def flash(response: Response, request: Request, code: str) -> None:
    set_cookie(response, request, FLASH_COOKIE, code, max_age=FLASH_SECONDS)


def take_flash(request: Request) -> str | None:
    return request.cookies.get(cookie_name(request, FLASH_COOKIE)) or None


class Labels:
    """Roles and campaign states in the request's language."""

    def __init__(self, gettext: Callable[[str], str]) -> None:
        self._roles = {
            Role.ADMIN: gettext("Administrator"),
            Role.MARKETER: gettext("Marketer"),
            Role.REVIEWER: gettext("Fraud reviewer"),
            Role.FINANCE: gettext("Finance"),
            Role.AUDITOR: gettext("Auditor"),
        }
        self._states = {
            CampaignStatus.DRAFT: gettext("Draft"),
            CampaignStatus.LIVE: gettext("Live"),
            CampaignStatus.PAUSED: gettext("Paused"),
            CampaignStatus.ENDED: gettext("Ended"),
        }

    def role(self, role: Role | str) -> str:
        return self._roles.get(Role(role), str(role))

    def state(self, state: CampaignStatus | str) -> str:
        return self._states.get(CampaignStatus(state), str(state))


def page(
    request: Request,
    name: str,
    context: dict[str, Any],
    *,
    messages: Callable[[str], tuple[str, str] | None] | None = None,
    status_code: int = 200,
) -> Response:
    """A console page: ``name`` rendered with the flash message, if any (``messages`` turns
    its code into a kind, ``flash`` or ``error``, and a sentence), which is then forgotten."""
    code = take_flash(request)
    shown = messages(code) if messages is not None and code else None
    labels = Labels(gettext_for(locale_of(request)))
    response = render(
        request,
        name,
        {"flash": shown, "role_name": labels.role, "state_name": labels.state, **context},
        status_code=status_code,
        headers={"Referrer-Policy": "same-origin", "X-Frame-Options": "DENY"},
    )
    if code:
        delete_cookie(response, request, FLASH_COOKIE)
    return response


def lifetime_seconds(delta: timedelta) -> int:
    return int(delta.total_seconds())
