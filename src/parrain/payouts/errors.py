"""Payout errors, each with a stable code.

Errors that come from PayPal carry PayPal's ``name`` and ``debug_id`` (what PayPal's support
asks for) and the ``field``/``issue`` of each detail, never a detail's ``value``: PayPal may
echo a receiver there, and a receiver is personal data.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from parrain.errors import InvalidInput, ParrainError


class InvalidPayoutBatch(InvalidInput):
    """A batch refused before anything is sent: too many items, a bad amount, no id."""

    code = "invalid_payout_batch"


class PayPalError(ParrainError):
    """PayPal answered with an error document (or not at all); the base of PayPal's errors."""

    code = "paypal_error"
    status_code = 502

    def __init__(
        self,
        message: str,
        /,
        *,
        http_status: int | None = None,
        name: str | None = None,
        debug_id: str | None = None,
        details: Sequence[dict[str, str]] = (),
        **extra: Any,
    ) -> None:
        super().__init__(
            message,
            http_status=http_status,
            name=name,
            debug_id=debug_id,
            details=list(details),
            **extra,
        )
        self.http_status = http_status
        self.name = name
        self.debug_id = debug_id
        self.error_details = tuple(details)


class PayPalValidationError(PayPalError):
    """PayPal refused the request as malformed (``VALIDATION_ERROR``, ``INVALID_REQUEST``):
    the whole batch is refused, ``details`` name the fields."""

    code = "paypal_validation_error"
    status_code = 422


class PayPalBusinessError(PayPalError):
    """PayPal refused the request for a business reason (``USER_BUSINESS_ERROR``,
    ``INSUFFICIENT_FUNDS``...), other than a duplicate batch."""

    code = "paypal_business_error"
    status_code = 409


class DuplicateBatch(PayPalBusinessError):
    """``sender_batch_id`` was used in the last 30 days: PayPal did not create a second batch.

    ``payout_batch_id`` is the original batch's id, read from the HATEOAS link PayPal puts in
    the error (None if the link is missing). ``after_lost_response`` tells that an earlier
    attempt of the same call got no answer, so the original is very likely our own batch.
    """

    code = "paypal_duplicate_batch"

    def __init__(
        self,
        message: str,
        /,
        *,
        sender_batch_id: str,
        payout_batch_id: str | None,
        after_lost_response: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            message,
            sender_batch_id=sender_batch_id,
            payout_batch_id=payout_batch_id,
            after_lost_response=after_lost_response,
            **kwargs,
        )
        self.sender_batch_id = sender_batch_id
        self.payout_batch_id = payout_batch_id
        self.after_lost_response = after_lost_response


class PayPalAuthError(PayPalError):
    """PayPal refused our credentials or token (401/403, or the token endpoint said no)."""

    code = "paypal_auth_failed"


class PayPalNotFound(PayPalError):
    code = "paypal_not_found"
    status_code = 404


class PayPalRateLimited(PayPalError):
    """429 ``RATE_LIMIT_REACHED`` on every attempt, or a ``Retry-After`` too long to wait."""

    code = "paypal_rate_limited"
    status_code = 503


class PayPalServerError(PayPalError):
    """PayPal answered 5xx on every attempt."""

    code = "paypal_server_error"


class PayPalTimeout(PayPalError):
    """No answer within the timeout, on every attempt."""

    code = "paypal_timeout"
    status_code = 504


class PayPalUnreachable(PayPalError):
    """The connection failed or was dropped before an answer came, on every attempt."""

    code = "paypal_unreachable"


class PayPalUnexpectedResponse(PayPalError):
    """PayPal answered something its published API does not describe."""

    code = "paypal_unexpected_response"


class PayoutsNotConfigured(InvalidInput):
    """PayPal's endpoint or credentials are not set (``PARRAIN_PAYOUTS_PAYPAL_*``)."""

    code = "payouts_not_configured"


class PayPalWebhookInvalid(ParrainError):
    """A notification that is not a PayPal event (not JSON, or not an ``event``)."""

    code = "paypal_webhook_invalid"
    status_code = 400


class PayPalWebhookUnverified(ParrainError):
    """PayPal did not confirm that it sent this notification (its transmission headers are
    missing or malformed, or ``verify-webhook-signature`` answered FAILURE): nothing is done."""

    code = "paypal_webhook_unverified"
    status_code = 400


class PayPalWebhooksNotConfigured(ParrainError):
    """PayPal's endpoint, credentials or webhook id are not set: notifications cannot be
    verified (PayPal sends them again later)."""

    code = "paypal_webhooks_not_configured"
    status_code = 503
