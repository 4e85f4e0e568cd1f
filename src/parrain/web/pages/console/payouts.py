"""``/console/payouts`` (the payout batches, newest first, with their items' totals per
state), ``/console/payouts/{batch_id}`` (one batch's items: amount, state, why an item went
back; the member by pseudonym, never the PayPal receiver) and
``POST /console/payouts/reconcile`` (our payout tables, our ledger and PayPal's batches
compared, as ``parrain payouts reconcile`` does; see docs/adr/0018-payout-worker.md).

Reconciling reads PayPal between short read transactions (:func:`reconcile`): no database
transaction is held while waiting on PayPal. The page's client tries twice, not the worker's
five times: an operator is waiting. Each reconciliation is written to the audit chain
(``payouts.reconciled``: its outcome, counts and the codes found).
"""

from __future__ import annotations

from typing import Annotated, Final
from uuid import UUID

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import Response

from parrain.audit import service as audit
from parrain.config import PayoutSettings
from parrain.kit.clock import Clock
from parrain.operators.roles import Permission
from parrain.payouts import service as payouts
from parrain.payouts.providers.paypal import PayPalClient, RetryPolicy
from parrain.payouts.reconcile import reconcile
from parrain.payouts.schemas import ReconcileReport
from parrain.web.forms import check_csrf
from parrain.web.pages.console.session import (
    PREFIX,
    SignedIn,
    clock_of,
    database_of,
    guard,
    page,
    settings_of,
)
from parrain.web.templating import gettext_for, locale_of

router = APIRouter()

#: The code of a difference :func:`reconcile` lists when PayPal could not be read.
UNAVAILABLE: Final = "paypal_unavailable"

#: Attempts per PayPal request from the page (the first one included).
PAGE_RETRY: Final = RetryPolicy(max_attempts=2, base_delay=0.2, max_delay=1.0, max_retry_after=2.0)


def paypal_client(settings: PayoutSettings, clock: Clock) -> PayPalClient | None:
    """PayPal's client from the payout settings, as the worker builds it; None when PayPal
    is not configured."""
    if (
        settings.paypal_base_url is None
        or settings.paypal_client_id is None
        or settings.paypal_client_secret is None
    ):
        return None
    return PayPalClient(
        base_url=settings.paypal_base_url,
        client_id=settings.paypal_client_id.get_secret_value(),
        client_secret=settings.paypal_client_secret.get_secret_value(),
        clock=clock,
        timeout=settings.request_timeout_seconds,
        retry=PAGE_RETRY,
    )


@router.get(f"{PREFIX}/payouts", name="console_payouts")
def payout_batches(
    request: Request, page_number: Annotated[int, Query(alias="page", ge=1)] = 1
) -> Response:
    """The payout batches, newest first, a page at a time, with their states, times and
    totals."""
    who = guard(request, Permission.PAYOUTS_VIEW)
    if isinstance(who, Response):
        return who
    found = database_of(request).read(
        lambda session: payouts.batch_summaries(
            session=session, page=page_number, per_page=payouts.BATCHES_PER_PAGE
        )
    )
    context = {"batches": found.summaries, "found": found}
    return page(request, "console/payouts.html", _context(request, who, context))


@router.get(f"{PREFIX}/payouts/{{batch_id}}", name="console_payout_batch")
def payout_batch(
    batch_id: UUID, request: Request, page_number: Annotated[int, Query(alias="page", ge=1)] = 1
) -> Response:
    """One batch and a page of its items (the member by pseudonym; never their PayPal
    receiver), :data:`~parrain.payouts.service.ITEMS_PER_PAGE` at a time."""
    who = guard(request, Permission.PAYOUTS_VIEW)
    if isinstance(who, Response):
        return who
    found = database_of(request).read(
        lambda session: payouts.batch_with_items(
            session=session, batch_id=batch_id, page=page_number, per_page=payouts.ITEMS_PER_PAGE
        )
    )
    return page(
        request,
        "console/payouts_batch.html",
        _context(request, who, {"batch": found.batch, "items": found.items, "found": found}),
    )


@router.post(f"{PREFIX}/payouts/reconcile", name="console_payouts_reconcile")
def reconcile_payouts(
    request: Request, csrf_token: Annotated[str | None, Form(max_length=200)] = None
) -> Response:
    """Compare our books with PayPal's and show the report (or why PayPal was not read)."""
    who = guard(request, Permission.PAYOUTS_MANAGE)
    if isinstance(who, Response):
        return who
    check_csrf(who.session.csrf_secret, csrf_token)
    database, clock = database_of(request), clock_of(request)
    client = paypal_client(settings_of(request).payouts, clock)
    report: ReconcileReport | None = None
    problem: str | None = None
    if client is None:
        problem = "not_configured"
    else:
        with client:
            report = reconcile(database=database, client=client)
        if any(difference.code == UNAVAILABLE for difference in report.differences):
            problem = "unreachable"
    details: dict[str, object] = {
        "outcome": problem or ("clean" if report and report.clean else "differences")
    }
    if report is not None:
        details |= {
            "batches": report.batches,
            "items": report.items,
            "differences": sorted({d.code for d in report.differences}),
        }
    database.run(
        lambda session: audit.record(
            session=session,
            actor=who.session.operator.actor,
            action="payouts.reconciled",
            subject="payouts",
            details=details,
            clock=clock,
        )
    )
    return page(
        request,
        "console/payouts_reconcile.html",
        _context(request, who, {"report": report, "problem": problem}),
    )


def _names(request: Request) -> dict[str, str]:
    """Our batch and item states in the request's language."""
    gettext = gettext_for(locale_of(request))
    return {
        "prepared": gettext("Prepared"),
        "submitted": gettext("Sent to PayPal"),
        "settled": gettext("Settled"),
        "denied": gettext("Refused by PayPal"),
        "pending": gettext("Waiting"),
        "paid": gettext("Paid"),
        "voided": gettext("Returned to the member"),
        "taken_back": gettext("Paid, then taken back"),
    }


def _context(request: Request, who: SignedIn, extra: dict[str, object]) -> dict[str, object]:
    names = _names(request)
    return {
        "who": who,
        "payout_state": lambda state: names.get(str(state), str(state)),
        "taken_back": payouts.is_taken_back,
        "may_reconcile": who.may(Permission.PAYOUTS_MANAGE),
        **extra,
    }


__all__ = ["paypal_client", "router"]
