"""PayPal's webhook notifications for Payouts, and its signature verification API, as
published (Pydantic models; names exactly as PayPal writes them).

- Event names: PayPal's "Payouts webhook event names" table lists three batch events
  (``PAYMENT.PAYOUTSBATCH.DENIED|PROCESSING|SUCCESS``) and nine item events
  (``PAYMENT.PAYOUTS-ITEM.BLOCKED|CANCELED|DENIED|FAILED|HELD|REFUNDED|RETURNED|SUCCEEDED|
  UNCLAIMED``). An item can also end ``REVERSED`` (``transaction_enum``), but no event of that
  name is published: a receiver reads any ``PAYMENT.PAYOUTS-ITEM.*`` event the same way (a
  pointer to an item to read again), so it need not know every name.
- The event envelope is the Webhooks API's ``event``: ``id``, ``create_time``,
  ``resource_type`` (``payouts`` for a batch, ``payouts_item`` for an item), ``event_version``,
  ``event_type``, ``summary``, ``resource_version``, ``resource``, ``links``.
- Each notification carries the ``PAYPAL-TRANSMISSION-ID``, ``-TIME``, ``-SIG``,
  ``PAYPAL-CERT-URL`` and ``PAYPAL-AUTH-ALGO`` headers; ``POST
  /v1/notifications/verify-webhook-signature`` takes them with the ``webhook_id`` and the
  event (``verify_webhook_signature``) and answers ``verification_status`` SUCCESS or FAILURE.

These are not in the vendored Payouts description (``paypal_spec/``, Payouts only); the field
limits below are the Webhooks API's (``notifications_webhooks_v1``).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, Any, Final

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

VERIFY_WEBHOOK_SIGNATURE_PATH: Final = "/v1/notifications/verify-webhook-signature"
ITEM_EVENT_PREFIX: Final = "PAYMENT.PAYOUTS-ITEM."
BATCH_EVENT_PREFIX: Final = "PAYMENT.PAYOUTSBATCH."
#: ``resource_type`` of the batch and item events.
BATCH_RESOURCE: Final = "payouts"
ITEM_RESOURCE: Final = "payouts_item"

#: The transmission headers, as PayPal names them (HTTP header names are case-insensitive).
TRANSMISSION_ID_HEADER: Final = "PAYPAL-TRANSMISSION-ID"
TRANSMISSION_TIME_HEADER: Final = "PAYPAL-TRANSMISSION-TIME"
TRANSMISSION_SIG_HEADER: Final = "PAYPAL-TRANSMISSION-SIG"
CERT_URL_HEADER: Final = "PAYPAL-CERT-URL"
AUTH_ALGO_HEADER: Final = "PAYPAL-AUTH-ALGO"


class WebhookEventType(StrEnum):
    """The Payouts events of PayPal's published table."""

    BATCH_DENIED = "PAYMENT.PAYOUTSBATCH.DENIED"
    BATCH_PROCESSING = "PAYMENT.PAYOUTSBATCH.PROCESSING"
    BATCH_SUCCESS = "PAYMENT.PAYOUTSBATCH.SUCCESS"
    ITEM_BLOCKED = "PAYMENT.PAYOUTS-ITEM.BLOCKED"
    ITEM_CANCELED = "PAYMENT.PAYOUTS-ITEM.CANCELED"
    ITEM_DENIED = "PAYMENT.PAYOUTS-ITEM.DENIED"
    ITEM_FAILED = "PAYMENT.PAYOUTS-ITEM.FAILED"
    ITEM_HELD = "PAYMENT.PAYOUTS-ITEM.HELD"
    ITEM_REFUNDED = "PAYMENT.PAYOUTS-ITEM.REFUNDED"
    ITEM_RETURNED = "PAYMENT.PAYOUTS-ITEM.RETURNED"
    ITEM_SUCCEEDED = "PAYMENT.PAYOUTS-ITEM.SUCCEEDED"
    ITEM_UNCLAIMED = "PAYMENT.PAYOUTS-ITEM.UNCLAIMED"


class VerificationStatus(StrEnum):
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"


_Id = Annotated[str, StringConstraints(min_length=1, max_length=100)]


class LinkDescription(BaseModel):
    """A HATEOAS ``link_description``."""

    model_config = ConfigDict(extra="allow", frozen=True)

    href: Annotated[str, StringConstraints(min_length=1, max_length=2048)]
    rel: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    method: str | None = None


class WebhookEvent(BaseModel):
    """PayPal's ``event``. ``resource`` is whatever PayPal put there: for a receiver it only
    points at what to read again (never trusted for amounts or statuses); it may hold a
    receiver (personal data) and is never logged."""

    model_config = ConfigDict(extra="allow", frozen=True)

    id: _Id
    create_time: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    resource_type: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    event_type: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    event_version: str | None = None
    resource_version: str | None = None
    summary: str | None = None
    resource: dict[str, Any]
    links: list[LinkDescription] = Field(default_factory=list)

    @property
    def is_item_event(self) -> bool:
        return self.event_type.startswith(ITEM_EVENT_PREFIX)

    @property
    def is_batch_event(self) -> bool:
        return self.event_type.startswith(BATCH_EVENT_PREFIX)

    def payout_batch_id(self) -> str | None:
        """PayPal's batch id the event names: ``resource.payout_batch_id`` for an item,
        ``resource.batch_header.payout_batch_id`` for a batch."""
        if self.is_item_event:
            return _text(self.resource.get("payout_batch_id"))
        header = self.resource.get("batch_header")
        return _text(header.get("payout_batch_id")) if isinstance(header, Mapping) else None

    def payout_item_id(self) -> str | None:
        return _text(self.resource.get("payout_item_id")) if self.is_item_event else None

    def sender_batch_id(self) -> str | None:
        """Our ``sender_batch_id``, as a batch event's header repeats it."""
        header = self.resource.get("batch_header")
        sender = header.get("sender_batch_header") if isinstance(header, Mapping) else None
        return _text(sender.get("sender_batch_id")) if isinstance(sender, Mapping) else None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and 0 < len(value) <= 256 else None


#: PayPal publishes ``^(?!\d+$)\w+\S+`` for the transmission id and signature; a base64
#: signature may begin with ``+`` or ``/`` though, so anything without spaces is passed on:
#: PayPal's verification, not this pattern, decides.
_Token = Annotated[str, StringConstraints(min_length=1, pattern=r"^\S+$")]


class TransmissionHeaders(BaseModel):
    """The headers PayPal sends with a notification, to pass on to the verification."""

    model_config = ConfigDict(frozen=True)

    transmission_id: Annotated[_Token, StringConstraints(max_length=50)]
    transmission_time: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    transmission_sig: Annotated[_Token, StringConstraints(max_length=500)]
    cert_url: Annotated[str, StringConstraints(min_length=1, max_length=500)]
    auth_algo: Annotated[str, StringConstraints(pattern=r"^[a-zA-Z0-9]+$", max_length=100)]

    def to_headers(self) -> dict[str, str]:
        return {
            TRANSMISSION_ID_HEADER: self.transmission_id,
            TRANSMISSION_TIME_HEADER: self.transmission_time,
            TRANSMISSION_SIG_HEADER: self.transmission_sig,
            CERT_URL_HEADER: self.cert_url,
            AUTH_ALGO_HEADER: self.auth_algo,
        }

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> TransmissionHeaders:
        """Read from a request's headers (any case); raises ``ValidationError`` when one is
        missing or malformed."""
        lowered = {name.lower(): value for name, value in headers.items()}
        return cls.model_validate(
            {
                "transmission_id": lowered.get(TRANSMISSION_ID_HEADER.lower()),
                "transmission_time": lowered.get(TRANSMISSION_TIME_HEADER.lower()),
                "transmission_sig": lowered.get(TRANSMISSION_SIG_HEADER.lower()),
                "cert_url": lowered.get(CERT_URL_HEADER.lower()),
                "auth_algo": lowered.get(AUTH_ALGO_HEADER.lower()),
            }
        )


WebhookId = Annotated[str, StringConstraints(pattern=r"^[a-zA-Z0-9]+$", max_length=50)]


class VerifyWebhookSignature(BaseModel):
    """``verify_webhook_signature``: the request body of the verification API.

    ``webhook_event`` is the event exactly as it was received (every field, in order): PayPal
    checks the signature over what it sent."""

    model_config = ConfigDict(frozen=True)

    auth_algo: Annotated[str, StringConstraints(pattern=r"^[a-zA-Z0-9]+$", max_length=100)]
    cert_url: Annotated[str, StringConstraints(min_length=1, max_length=500)]
    transmission_id: Annotated[_Token, StringConstraints(max_length=50)]
    transmission_sig: Annotated[_Token, StringConstraints(max_length=500)]
    transmission_time: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    webhook_id: WebhookId
    webhook_event: dict[str, Any]

    @classmethod
    def of(
        cls, headers: TransmissionHeaders, *, webhook_id: str, event: dict[str, Any]
    ) -> VerifyWebhookSignature:
        return cls(
            auth_algo=headers.auth_algo,
            cert_url=headers.cert_url,
            transmission_id=headers.transmission_id,
            transmission_sig=headers.transmission_sig,
            transmission_time=headers.transmission_time,
            webhook_id=webhook_id,
            webhook_event=event,
        )


class VerifyWebhookSignatureResponse(BaseModel):
    """``verify_webhook_signature_response``."""

    model_config = ConfigDict(frozen=True)

    verification_status: VerificationStatus
