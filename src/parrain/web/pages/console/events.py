"""``/console/events``: the marketplace's events received for later and set aside (ADR 28).

An event sent with ``Prefer: respond-async`` waits, sealed, for a drain; one that failed
:data:`~parrain.referrals.queue.MAX_ATTEMPTS` drains is set aside for a person to look at.
The page counts the events waiting and those set aside, and lists the set-aside ones,
oldest first (at most :data:`SHOWN`): id, type, when received, failed drains, and the day
the worker's sweep discards them (received + ``parked_keep_days``). Their sealed bodies
hold personal data and are never opened here. One form gives every set-aside event its
attempts back (:func:`~parrain.referrals.queue.retry_parked_by`, written to the audit log
with the operator as actor). Needs :attr:`Permission.EVENTS_MANAGE`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Final

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from parrain.operators.roles import Permission
from parrain.referrals import queue
from parrain.web.forms import check_csrf
from parrain.web.pages.console.session import (
    PREFIX,
    clock_of,
    database_of,
    flash,
    guard,
    page,
    settings_of,
)
from parrain.web.templating import gettext_for, locale_of, translations

router = APIRouter()

EVENTS: Final = f"{PREFIX}/events"
RETRY: Final = f"{EVENTS}/retry"
TEMPLATE: Final = "console/events.html"
#: Set-aside events listed at most (the oldest).
SHOWN: Final = 100
_RETRIED: Final = "events_retried:"


def _messages(request: Request, code: str) -> tuple[str, str] | None:
    language = locale_of(request)
    if code.startswith(_RETRIED) and code[len(_RETRIED) :].isdigit():
        count = int(code[len(_RETRIED) :])
        if count == 0:
            gettext = gettext_for(language)
            return "flash", gettext("There were no set-aside events to try again.")
        ngettext = translations(language).ngettext
        sentence = ngettext(
            "%(num)s set-aside event will be tried again by the next drain.",
            "%(num)s set-aside events will be tried again by the next drain.",
            count,
        )
        return "flash", sentence % {"num": count}
    return None


@router.get(EVENTS, name="console_events")
def event_queue(request: Request) -> Response:
    """How many events wait and how many are set aside, and the oldest set-aside ones."""
    who = guard(request, Permission.EVENTS_MANAGE)
    if isinstance(who, Response):
        return who
    keep = timedelta(days=settings_of(request).referrals.parked_keep_days)

    def load(session: Session) -> tuple[queue.QueueCounts, list[queue.ParkedEvent]]:
        return queue.queue_counts(session=session), queue.parked_events(
            session=session, limit=SHOWN
        )

    counts, parked = database_of(request).read(load)
    listed: list[tuple[queue.ParkedEvent, datetime]] = [
        (event, event.received_at + keep) for event in parked
    ]
    return page(
        request,
        TEMPLATE,
        {
            "who": who,
            "counts": counts,
            "parked": listed,
            "more": counts.parked > len(listed),
            "max_attempts": queue.MAX_ATTEMPTS,
            "keep_days": keep.days,
        },
        messages=lambda code: _messages(request, code),
    )


@router.post(RETRY, name="console_events_retry")
def retry_parked_events(
    request: Request,
    csrf_token: Annotated[str | None, Form(max_length=200)] = None,
) -> Response:
    """Give every set-aside event its attempts back, then back to the page with how many."""
    who = guard(request, Permission.EVENTS_MANAGE)
    if isinstance(who, Response):
        return who
    check_csrf(who.session.csrf_secret, csrf_token)
    clock, actor = clock_of(request), who.session.operator.actor
    count = database_of(request).run(
        lambda session: queue.retry_parked_by(session=session, actor=actor, clock=clock)
    )
    response = RedirectResponse(EVENTS, 303)
    flash(response, request, f"{_RETRIED}{count}")
    return response


__all__ = ["EVENTS", "RETRY", "router"]
