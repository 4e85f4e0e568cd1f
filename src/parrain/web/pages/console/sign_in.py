"""``/console/sign-in`` and ``/console/sign-out``.

The sign-in form is protected against cross-site submission before any session exists: the
page sets a random secret in a short-lived cookie and the form carries its token. A
successful sign-in always opens a new session (a session id planted before sign-in is never
promoted) and forgets that cookie.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from parrain.operators import service as operators
from parrain.operators.schemas import SignInFailure, SignInResult, StartedSession
from parrain.web.forms import check_csrf, csrf_token
from parrain.web.pages.console.session import (
    PREFIX,
    SESSION_COOKIE,
    SIGN_IN_COOKIE,
    SIGN_IN_PATH,
    clock_of,
    current_session,
    database_of,
    delete_cookie,
    flash,
    guard,
    hasher_of,
    keep_sign_in_secret,
    lifetime_seconds,
    new_sign_in_secret,
    page,
    policy_of,
    safe_next,
    session_token,
    set_cookie,
    sign_in_secret,
)
from parrain.web.ratelimit import limit
from parrain.web.templating import gettext_for, locale_of

router = APIRouter()

#: Longest username or password read from the form; longer ones cannot be right.
_MAX_FIELD = 1024
#: Stands in for a missing secret so that a form without its cookie fails the same check.
_NO_SECRET = bytes(32)


def _messages(request: Request, code: str) -> tuple[str, str] | None:
    gettext = gettext_for(locale_of(request))
    if code == "signed_out":
        return "flash", gettext("You are signed out.")
    if code == "session_ended":
        return "error", gettext("Your session has ended: sign in again to go on.")
    return None


def _form(
    request: Request,
    *,
    fresh: bool,
    next_page: str,
    username: str = "",
    result: SignInResult | None = None,
    status_code: int = 200,
) -> Response:
    """The sign-in page, with a new CSRF secret when ``fresh`` (or the cookie has none)."""
    kept = None if fresh else sign_in_secret(request)
    secret = kept if kept is not None else new_sign_in_secret()
    failure = result.failure if result is not None else None
    response = page(
        request,
        "console/sign_in.html",
        {
            "csrf_token": csrf_token(secret),
            "next_page": next_page,
            "username": username,
            "failure": failure.value if failure is not None else None,
            "locked_until": result.locked_until if result is not None else None,
        },
        messages=lambda code: _messages(request, code),
        status_code=status_code,
    )
    if kept is None:
        keep_sign_in_secret(response, request, secret)
    return response


@router.get(SIGN_IN_PATH, name="console_sign_in_form")
def sign_in_form(request: Request, next: str | None = None) -> Response:
    """The sign-in form (an operator already signed in goes straight on)."""
    if current_session(request) is not None:
        return RedirectResponse(safe_next(next), 303)
    return _form(request, fresh=True, next_page=safe_next(next))


@router.post(SIGN_IN_PATH, name="console_sign_in", dependencies=[Depends(limit("sign_in"))])
def sign_in(
    request: Request,
    username: Annotated[str, Form(max_length=_MAX_FIELD)] = "",
    password: Annotated[str, Form(max_length=_MAX_FIELD)] = "",
    csrf_token: Annotated[str | None, Form(max_length=200)] = None,
    next: Annotated[str | None, Form(max_length=200)] = None,
) -> Response:
    """Check the username and password; on success open a session and go on."""
    secret = sign_in_secret(request)
    check_csrf(secret or _NO_SECRET, csrf_token if secret is not None else None)
    database, clock = database_of(request), clock_of(request)
    policy, hasher = policy_of(request), hasher_of(request)

    # The password is checked in a read-only transaction first: the write transaction that
    # follows holds its locks (on SQLite, the whole database) for milliseconds, not for the
    # argon2id hash.
    checked = database.read(
        lambda session: operators.check_password(
            session=session,
            username=username.strip(),
            password=password,
            clock=clock,
            hasher=hasher,
        )
    )

    def work(session: Session) -> tuple[SignInResult, StartedSession | None]:
        result = operators.authenticate(
            session=session,
            username=username.strip(),
            password=password,
            policy=policy,
            clock=clock,
            hasher=hasher,
            checked=checked,
        )
        if result.operator is None:
            return result, None
        started = operators.start_session(
            session=session, operator_id=result.operator.id, policy=policy, clock=clock
        )
        return result, started

    result, started = database.run(work)
    if started is None:
        return _form(
            request,
            fresh=False,
            next_page=safe_next(next),
            username=username.strip()[:64],
            result=result,
            status_code=423 if result.failure is SignInFailure.LOCKED else 400,
        )
    response = RedirectResponse(safe_next(next), 303)
    set_cookie(
        response,
        request,
        SESSION_COOKIE,
        started.token,
        max_age=lifetime_seconds(policy.session_lifetime),
    )
    delete_cookie(response, request, SIGN_IN_COOKIE)
    return response


@router.post(f"{PREFIX}/sign-out", name="console_sign_out")
def sign_out(
    request: Request, csrf_token: Annotated[str | None, Form(max_length=200)] = None
) -> Response:
    """End the session on the server, forget the cookie, and go back to the sign-in page."""
    who = guard(request, None)
    if isinstance(who, Response):
        return who
    check_csrf(who.session.csrf_secret, csrf_token)
    token = session_token(request)
    clock = clock_of(request)
    database_of(request).run(
        lambda session: operators.end_session(session=session, token=token, clock=clock)
    )
    response = RedirectResponse(SIGN_IN_PATH, 303)
    delete_cookie(response, request, SESSION_COOKIE)
    flash(response, request, "signed_out")
    return response
