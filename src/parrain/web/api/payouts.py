"""Payout routes: PayPal's notifications about our payout batches.

``POST /v1/paypal/webhooks`` takes no API key (PayPal calls it). Every notification is
verified by PayPal itself (``verify-webhook-signature``, under
``PARRAIN_PAYOUTS_PAYPAL_WEBHOOK_ID``) and its body is never trusted: what it names is read
again from PayPal and PayPal's answer is applied (:mod:`parrain.payouts.webhooks`, ADR 19).
The work runs in a worker thread, each database step its own transaction, none held while
PayPal is called.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from parrain.config import Settings
from parrain.kit.clock import Clock
from parrain.payouts import webhooks
from parrain.payouts.providers.paypal import PayPalClient
from parrain.payouts.providers.paypal_webhook_wire import (
    AUTH_ALGO_HEADER,
    CERT_URL_HEADER,
    TRANSMISSION_ID_HEADER,
    TRANSMISSION_SIG_HEADER,
    TRANSMISSION_TIME_HEADER,
    WebhookEvent,
)
from parrain.payouts.schemas import WebhookReceipt
from parrain.payouts.worker import client_from_settings
from parrain.web.deps import ClockDep, DatabaseDep, SettingsDep
from parrain.web.errors import ErrorResponse, error_responses

router = APIRouter(tags=["payouts"], responses=error_responses(413, 500))

_WEBHOOK_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {
        "model": ErrorResponse,
        "description": "`paypal_webhook_invalid`: the body is not a PayPal event; "
        "`paypal_webhook_unverified`: its transmission headers are missing or PayPal did not "
        "confirm it sent it. Nothing is done.",
    },
    502: {
        "model": ErrorResponse,
        "description": "PayPal could not be reached to verify or read (`paypal_*`); PayPal "
        "sends the notification again later.",
    },
    503: {
        "model": ErrorResponse,
        "description": "PayPal's endpoint, credentials or webhook id are not configured "
        "(`paypal_webhooks_not_configured`), or the database is unavailable.",
    },
    504: {"model": ErrorResponse, "description": "PayPal did not answer in time."},
}


def _paypal_client(request: Request, settings: Settings, clock: Clock) -> PayPalClient | None:
    """One client per app, made on first use from the payout settings (a test may set
    ``app.state.paypal_client``). Called on the event loop: no two callers race."""
    client: PayPalClient | None = getattr(request.app.state, "paypal_client", None)
    if client is None:
        client = client_from_settings(settings.payouts, clock=clock)
        request.app.state.paypal_client = client
    return client


def _inlined(schema: dict[str, Any]) -> dict[str, Any]:
    """A model's JSON schema with its ``$defs`` put in place: inside ``openapi_extra`` a
    ``#/$defs/...`` reference would point at the OpenAPI document's root."""
    definitions = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            reference = node.get("$ref")
            if isinstance(reference, str) and reference.startswith("#/$defs/"):
                return resolve(definitions[reference.removeprefix("#/$defs/")])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(value) for value in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved


_HEADERS = (
    (TRANSMISSION_ID_HEADER, "The id of this transmission."),
    (TRANSMISSION_TIME_HEADER, "When it was sent."),
    (TRANSMISSION_SIG_HEADER, "PayPal's signature of it."),
    (CERT_URL_HEADER, "Where PayPal's certificate is (passed on to PayPal, never fetched)."),
    (AUTH_ALGO_HEADER, "The signature's algorithm."),
)


@router.post(
    "/paypal/webhooks",
    responses=_WEBHOOK_ERRORS,
    openapi_extra={
        "parameters": [
            {
                "name": name,
                "in": "header",
                "required": True,
                "schema": {"type": "string"},
                "description": description,
            }
            for name, description in _HEADERS
        ],
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _inlined(WebhookEvent.model_json_schema())}},
        },
    },
)
async def receive_paypal_webhook(
    request: Request, database: DatabaseDep, clock: ClockDep, settings: SettingsDep
) -> WebhookReceipt:
    """Receive a PayPal payouts notification (``PAYMENT.PAYOUTS-ITEM.*``,
    ``PAYMENT.PAYOUTSBATCH.*``).

    Answers 200 with what it led to for every event PayPal confirms it sent, a duplicate or
    one about a batch we do not know included; 400 ``paypal_webhook_invalid`` for a body that
    is not a PayPal event; 400 ``paypal_webhook_unverified`` when PayPal does not confirm it.
    """
    body = await request.body()
    headers = {
        name: value for name, _ in _HEADERS if (value := request.headers.get(name)) is not None
    }
    client = _paypal_client(request, settings, clock)
    receipt: WebhookReceipt = await run_in_threadpool(
        webhooks.receive,
        database=database,
        client=client,
        clock=clock,
        webhook_id=settings.payouts.paypal_webhook_id,
        body=body,
        headers=headers,
    )
    return receipt
