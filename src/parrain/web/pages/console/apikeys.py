"""``/console/api-keys``: the integration API keys, created and revoked by an administrator.

The list shows every key (its name, public prefix, scopes, when it was created and last
used, and whether it is revoked), newest first, with a form to create one and a Revoke
button on each live key. Creating a key answers with a page that shows its secret, once:
the secret is in that response's body only (never in a redirect address, a cookie or a
log), the page is not cached (``no-store``), and only the secret's SHA-256 is stored
(:mod:`parrain.access.service`). Both actions are written to the audit chain by the
service, with the operator as actor. Needs :attr:`Permission.APIKEYS_MANAGE`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Annotated, Final
from uuid import UUID

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from parrain.access import service as access
from parrain.access.errors import ApiKeyNameTaken, ApiKeyNotFound
from parrain.access.schemas import MAX_NAME, ApiKeyCreate, ApiKeyRead, ApiKeyScope, CreatedApiKey
from parrain.operators.roles import Permission
from parrain.web.forms import FIELD, check_csrf
from parrain.web.pages.console.session import (
    PREFIX,
    SignedIn,
    clock_of,
    database_of,
    flash,
    guard,
    page,
)
from parrain.web.templating import gettext_for, locale_of

router = APIRouter()

API_KEYS: Final = f"{PREFIX}/api-keys"
TEMPLATE: Final = "console/apikeys.html"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(slots=True)
class KeyForm:
    """The create form as sent: what to show again in it, and what to fix, by field."""

    name: str = ""
    scopes: set[str] = field(default_factory=set)
    errors: dict[str, str] = field(default_factory=dict)


def _scopes(request: Request) -> list[tuple[str, str]]:
    """Each scope with a sentence on what it opens, in the order the form lists them."""
    gettext = gettext_for(locale_of(request))
    sentences = {
        ApiKeyScope.EVENTS: gettext(
            "Send the programme's events: clicks, installs, signups, orders and refunds."
        ),
        ApiKeyScope.CONSENT: gettext(
            "Ask whether a member's data may be used for a given use, channel and territory."
        ),
        ApiKeyScope.PRIVACY: gettext("Export or erase a member's data, on the member's behalf."),
    }
    return [(scope.value, sentences[scope]) for scope in ApiKeyScope]


def _messages(request: Request, code: str) -> tuple[str, str] | None:
    gettext = gettext_for(locale_of(request))
    known = {
        "revoked": (
            "flash",
            gettext("The key is revoked: integrations using it are refused within a few seconds."),
        ),
        "already_revoked": ("flash", gettext("This key was already revoked.")),
    }
    return known.get(code)


def _newest_first(keys: list[ApiKeyRead]) -> list[ApiKeyRead]:
    return sorted(keys, key=lambda key: (key.created_at, key.id), reverse=True)


def _list_page(
    request: Request,
    who: SignedIn,
    form: KeyForm,
    *,
    created: CreatedApiKey | None = None,
    status_code: int = 200,
) -> Response:
    keys = database_of(request).read(lambda session: access.list_api_keys(session=session))
    return page(
        request,
        TEMPLATE,
        {
            "who": who,
            "keys": _newest_first(keys),
            "form": form,
            "scopes": _scopes(request),
            "created": created,
            "max_name": MAX_NAME,
        },
        messages=lambda code: _messages(request, code),
        status_code=status_code,
    )


@router.get(API_KEYS, name="console_api_keys")
def api_key_list(request: Request) -> Response:
    """Every API key, newest first, and the form of a new one."""
    who = guard(request, Permission.APIKEYS_MANAGE)
    if isinstance(who, Response):
        return who
    return _list_page(request, who, KeyForm(scopes={ApiKeyScope.EVENTS.value}))


@router.post(API_KEYS, name="console_api_key_create")
async def create_api_key(request: Request) -> Response:
    """Create a key and show its secret on the page that answers, once; or show the form
    again with what to fix."""
    submitted = await request.form()
    name = submitted.get("name")
    token = submitted.get(FIELD)
    scopes = [value for value in submitted.getlist("scopes") if isinstance(value, str)]
    return await run_in_threadpool(
        _create,
        request,
        name if isinstance(name, str) else "",
        scopes,
        token if isinstance(token, str) else None,
    )


def _read(request: Request, name: str, scopes: list[str]) -> tuple[KeyForm, ApiKeyCreate | None]:
    gettext = gettext_for(locale_of(request))
    form = KeyForm(name=name[: MAX_NAME * 2], scopes=set(scopes))
    text = name.strip()
    if not text:
        form.errors["name"] = gettext("Give the key a name that says who holds it.")
    elif len(text) > MAX_NAME:
        form.errors["name"] = gettext("A key's name is at most %(max)s characters.") % {
            "max": MAX_NAME
        }
    elif _CONTROL.search(text):
        form.errors["name"] = gettext("A key's name cannot contain control characters.")
    known = {scope.value for scope in ApiKeyScope}
    if not scopes:
        form.errors["scopes"] = gettext("Choose at least one scope.")
    elif not set(scopes) <= known:
        form.errors["scopes"] = gettext("Choose among the scopes listed.")
    if form.errors:
        return form, None
    try:
        return form, ApiKeyCreate(name=text, scopes=sorted(set(scopes)))
    except ValidationError:  # pragma: no cover - the checks above are the schema's
        form.errors["name"] = gettext("Give the key a name that says who holds it.")
        return form, None


def _create(request: Request, name: str, scopes: list[str], token: str | None) -> Response:
    who = guard(request, Permission.APIKEYS_MANAGE)
    if isinstance(who, Response):
        return who
    check_csrf(who.session.csrf_secret, token)
    form, key_in = _read(request, name, scopes)
    if key_in is None:
        return _list_page(request, who, form, status_code=422)
    clock, actor = clock_of(request), who.session.operator.actor
    try:
        created = database_of(request).run(
            lambda session: access.create_api_key(
                session=session, key_in=key_in, actor=actor, clock=clock
            )
        )
    except ApiKeyNameTaken:
        gettext = gettext_for(locale_of(request))
        form.errors["name"] = gettext("A key with this name already exists: choose another name.")
        return _list_page(request, who, form, status_code=409)
    fresh = KeyForm(scopes={ApiKeyScope.EVENTS.value})
    return _list_page(request, who, fresh, created=created, status_code=201)


def _revoke(request: Request, key_id: UUID, token: str | None) -> Response:
    who = guard(request, Permission.APIKEYS_MANAGE)
    if isinstance(who, Response):
        return who
    check_csrf(who.session.csrf_secret, token)
    clock, actor = clock_of(request), who.session.operator.actor

    def work(session: Session) -> bool:
        before = access.get_api_key(session=session, key_id=key_id)
        access.revoke_api_key(session=session, key_id=key_id, actor=actor, clock=clock)
        return before.revoked

    try:
        already = database_of(request).run(work)
    except ApiKeyNotFound as missing:
        gettext = gettext_for(locale_of(request))
        raise ApiKeyNotFound(
            gettext("There is no such API key. It may have been typed wrong."),
            key_id=str(key_id),
        ) from missing
    response = RedirectResponse(API_KEYS, 303)
    flash(response, request, "already_revoked" if already else "revoked")
    return response


@router.post(f"{API_KEYS}/{{key_id}}/revoke", name="console_api_key_revoke")
def revoke_api_key(
    key_id: UUID,
    request: Request,
    csrf_token: Annotated[str | None, Form(max_length=200)] = None,
) -> Response:
    """Revoke a key for good, then back to the list with the outcome."""
    return _revoke(request, key_id, csrf_token)


__all__ = ["API_KEYS", "router"]
