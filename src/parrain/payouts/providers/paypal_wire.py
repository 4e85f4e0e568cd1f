"""What PayPal's client and the fake share: the published API's names, amounts and errors.

Every name here is the one in PayPal's OpenAPI description (``paypal_spec/``). Amounts go on
the wire as decimal strings with the currency's minor-unit exponent (GBP 2000 → ``"20.00"``,
JPY 500 → ``"500"``, BHD 1500 → ``"1.500"``), made from integers by string and
:class:`~decimal.Decimal` arithmetic only: a float never touches money.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources
from typing import Any, Final, TypeVar
from urllib.parse import unquote, urlsplit

from parrain.kit.errors import InvalidAmount
from parrain.kit.money import Money
from parrain.kit.pii import Pii
from parrain.payouts.errors import (
    DuplicateBatch,
    PayPalAuthError,
    PayPalBusinessError,
    PayPalError,
    PayPalNotFound,
    PayPalRateLimited,
    PayPalServerError,
    PayPalUnexpectedResponse,
    PayPalValidationError,
)

#: PayPal's limit on items in one batch (``create_payout_request.items.maxItems``).
MAX_BATCH_ITEMS: Final = 15_000
#: PayPal's limit on ``page_size`` (and on ``page``) when showing a batch.
MAX_PAGE_SIZE: Final = 1000
MAX_PAGE: Final = 1000
TOKEN_PATH: Final = "/v1/oauth2/token"  # noqa: S105 - a path
PAYOUTS_PATH: Final = "/v1/payments/payouts"
ITEMS_PATH: Final = "/v1/payments/payouts-item"
SPEC_FILE: Final = "payments_payouts_batch_v1.json"

E = TypeVar("E", bound=StrEnum)

_PLAIN_DECIMAL = re.compile(r"[0-9]+(\.[0-9]+)?")


class ItemStatus(StrEnum):
    """``transaction_enum``: the status of one payout item."""

    SUCCESS = "SUCCESS"
    FAILED = "FAILED"
    PENDING = "PENDING"
    UNCLAIMED = "UNCLAIMED"
    RETURNED = "RETURNED"
    ONHOLD = "ONHOLD"
    BLOCKED = "BLOCKED"
    REFUNDED = "REFUNDED"
    REVERSED = "REVERSED"

    @property
    def is_settled(self) -> bool:
        """PayPal has decided: everything but PENDING and ONHOLD. (UNCLAIMED is an outcome
        for us, though PayPal turns it into RETURNED after 30 days.)"""
        return self not in (ItemStatus.PENDING, ItemStatus.ONHOLD)

    @property
    def is_paid(self) -> bool:
        return self is ItemStatus.SUCCESS


class BatchStatus(StrEnum):
    """``batch_enum``: the status of a whole batch."""

    DENIED = "DENIED"
    PENDING = "PENDING"
    PROCESSING = "PROCESSING"
    SUCCESS = "SUCCESS"
    CANCELED = "CANCELED"


class RecipientType(StrEnum):
    """``recipient_enum``: what the ``receiver`` is."""

    EMAIL = "EMAIL"
    PHONE = "PHONE"
    PAYPAL_ID = "PAYPAL_ID"


@functools.cache
def load_spec() -> dict[str, Any]:
    """PayPal's OpenAPI description, as shipped in the package (unmodified)."""
    text = resources.files(__package__).joinpath("paypal_spec", SPEC_FILE).read_text("utf-8")
    document: dict[str, Any] = json.loads(text)
    return document


# --- amounts ------------------------------------------------------------------------------


def amount_to_wire(amount: Money) -> dict[str, str]:
    """``Money`` → PayPal's ``currency`` object: ``{"currency": "GBP", "value": "20.00"}``."""
    if not isinstance(amount, Money):
        raise InvalidAmount(
            f"a payout amount is Money (integer minor units), not {type(amount).__name__}",
            amount=repr(amount),
        )
    return {"currency": amount.currency, "value": amount.plain()}


def amount_from_wire(document: object) -> Money:
    """PayPal's ``currency`` object → ``Money``; refuses anything but a plain decimal string."""
    if not isinstance(document, Mapping):
        raise PayPalUnexpectedResponse("an amount is not an object")
    value, currency = document.get("value"), document.get("currency")
    if not isinstance(value, str) or not isinstance(currency, str):
        raise PayPalUnexpectedResponse("an amount has no text value or currency")
    return parse_amount_text(value, currency)


def parse_amount_text(value: str, currency: str) -> Money:
    """``"20.00"`` in GBP → ``Money(2000, "GBP")``: digits and one point only, never rounded."""
    if not _PLAIN_DECIMAL.fullmatch(value):
        raise InvalidAmount(f"{value!r} is not a plain decimal amount", amount=value)
    return Money.parse(value, currency)


# --- requests -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PayoutItemRequest:
    """One ``payout_item`` to send. ``receiver`` is personal data, revealed only on the wire."""

    receiver: Pii
    amount: Money
    sender_item_id: str
    recipient_type: RecipientType = RecipientType.EMAIL
    note: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.amount, Money):
            raise InvalidAmount(
                f"a payout amount is Money (integer minor units), not {type(self.amount).__name__}",
                amount=repr(self.amount),
            )
        if not isinstance(self.receiver, Pii):
            raise TypeError("a payout receiver is wrapped in Pii")

    def to_wire(self) -> dict[str, Any]:
        item: dict[str, Any] = {
            "recipient_type": self.recipient_type.value,
            "amount": amount_to_wire(self.amount),
            "receiver": self.receiver.reveal(),
            "sender_item_id": self.sender_item_id,
        }
        if self.note is not None:
            item["note"] = self.note
        return item


@dataclass(frozen=True, slots=True)
class PayoutBatchRequest:
    """A ``create_payout_request``. ``sender_batch_id`` must be derived from our ledger (the
    batch's own id), so that a retry of the same batch reuses it: it is PayPal's only
    deduplication key."""

    sender_batch_id: str
    items: Sequence[PayoutItemRequest]
    email_subject: str | None = None
    email_message: str | None = None

    def to_wire(self) -> dict[str, Any]:
        header: dict[str, Any] = {"sender_batch_id": self.sender_batch_id}
        if self.email_subject is not None:
            header["email_subject"] = self.email_subject
        if self.email_message is not None:
            header["email_message"] = self.email_message
        return {"sender_batch_header": header, "items": [item.to_wire() for item in self.items]}


# --- responses ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CreatedBatch:
    """What a create (or a recovered duplicate) tells: PayPal's id for our batch."""

    payout_batch_id: str
    sender_batch_id: str
    batch_status: BatchStatus
    recovered: bool = False


@dataclass(frozen=True, slots=True)
class BatchHeader:
    payout_batch_id: str
    sender_batch_id: str | None
    batch_status: BatchStatus
    time_created: str | None
    time_completed: str | None
    amount: Money | None
    fees: Money | None


@dataclass(frozen=True, slots=True)
class PayoutItemResult:
    """A ``payout_batch_items`` / ``payout_item-2``: one item's status at PayPal."""

    payout_item_id: str
    payout_batch_id: str
    transaction_id: str | None
    transaction_status: ItemStatus
    sender_item_id: str | None
    amount: Money
    receiver: Pii
    fee: Money | None
    error_name: str | None
    time_processed: str | None


@dataclass(frozen=True, slots=True)
class BatchPage:
    header: BatchHeader
    items: tuple[PayoutItemResult, ...]
    page: int
    total_items: int | None
    total_pages: int | None


@dataclass(frozen=True, slots=True)
class BatchDetails:
    """A batch with every item, all pages read."""

    header: BatchHeader
    items: tuple[PayoutItemResult, ...]

    def count_by_status(self) -> dict[ItemStatus, int]:
        counts: dict[ItemStatus, int] = {}
        for item in self.items:
            counts[item.transaction_status] = counts.get(item.transaction_status, 0) + 1
        return counts

    @property
    def is_settled(self) -> bool:
        return all(item.transaction_status.is_settled for item in self.items)


def _text(document: Mapping[str, Any], key: str) -> str | None:
    value = document.get(key)
    return value if isinstance(value, str) else None


def _required_text(document: Mapping[str, Any], key: str) -> str:
    value = document.get(key)
    if not isinstance(value, str) or not value:
        raise PayPalUnexpectedResponse(f"the response has no {key}")
    return value


def _enum(kind: type[E], value: object) -> E:
    try:
        if not isinstance(value, str):
            raise ValueError(value)
        return kind(value)
    except ValueError:
        raise PayPalUnexpectedResponse(
            f"{value!r} is not a {kind.__name__} of the published API"
        ) from None


def _mapping(value: object, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise PayPalUnexpectedResponse(f"the response's {what} is not an object")
    return value


def parse_batch_header(document: object) -> BatchHeader:
    header = _mapping(document, "batch_header")
    sender = header.get("sender_batch_header")
    sender_batch_id = _text(sender, "sender_batch_id") if isinstance(sender, Mapping) else None
    return BatchHeader(
        payout_batch_id=_required_text(header, "payout_batch_id"),
        sender_batch_id=sender_batch_id,
        batch_status=_enum(BatchStatus, header.get("batch_status")),
        time_created=_text(header, "time_created"),
        time_completed=_text(header, "time_completed"),
        amount=amount_from_wire(header["amount"]) if "amount" in header else None,
        fees=amount_from_wire(header["fees"]) if "fees" in header else None,
    )


def parse_item(document: object) -> PayoutItemResult:
    item = _mapping(document, "item")
    detail = _mapping(item.get("payout_item"), "payout_item")
    errors = item.get("errors")
    receiver = detail.get("receiver")
    if not isinstance(receiver, str):
        raise PayPalUnexpectedResponse("an item has no receiver")
    return PayoutItemResult(
        payout_item_id=_required_text(item, "payout_item_id"),
        payout_batch_id=_required_text(item, "payout_batch_id"),
        transaction_id=_text(item, "transaction_id"),
        transaction_status=_enum(ItemStatus, item.get("transaction_status", "PENDING")),
        sender_item_id=_text(detail, "sender_item_id"),
        amount=amount_from_wire(detail.get("amount")),
        receiver=Pii(receiver),
        fee=amount_from_wire(item["payout_item_fee"]) if "payout_item_fee" in item else None,
        error_name=_text(errors, "name") if isinstance(errors, Mapping) else None,
        time_processed=_text(item, "time_processed"),
    )


def parse_batch_page(document: object, *, page: int) -> BatchPage:
    batch = _mapping(document, "body")
    items = batch.get("items", [])
    if not isinstance(items, list):
        raise PayPalUnexpectedResponse("the batch's items are not a list")
    total_items, total_pages = batch.get("total_items"), batch.get("total_pages")
    return BatchPage(
        header=parse_batch_header(batch.get("batch_header")),
        items=tuple(parse_item(item) for item in items),
        page=page,
        total_items=total_items if isinstance(total_items, int) else None,
        total_pages=total_pages if isinstance(total_pages, int) else None,
    )


# --- errors -------------------------------------------------------------------------------

_DUPLICATE_MARKERS: Final = ("duplicate", "already exists", "already used")
_VALIDATION_NAMES: Final = frozenset({"VALIDATION_ERROR", "INVALID_REQUEST", "MALFORMED_REQUEST"})
_AUTH_NAMES: Final = frozenset(
    {"AUTHENTICATION_FAILURE", "NOT_AUTHORIZED", "PERMISSION_DENIED", "invalid_client"}
)


def error_details(document: Mapping[str, Any]) -> list[dict[str, str]]:
    """The ``details[]`` of an error document: field, location, issue, description.

    A detail's ``value`` is dropped: PayPal may echo a receiver there (personal data).
    """
    details = document.get("details")
    if not isinstance(details, list):
        return []
    kept: list[dict[str, str]] = []
    for detail in details:
        if isinstance(detail, Mapping):
            kept.append(
                {
                    key: str(detail[key])
                    for key in ("field", "location", "issue", "description")
                    if isinstance(detail.get(key), str)
                }
            )
    return kept


def batch_id_from_links(document: Mapping[str, Any]) -> str | None:
    """The ``payout_batch_id`` in a HATEOAS link to ``/v1/payments/payouts/{id}``, if any."""
    links = document.get("links")
    if not isinstance(links, list):
        return None
    prefix = PAYOUTS_PATH + "/"
    for link in links:
        href = link.get("href") if isinstance(link, Mapping) else None
        if isinstance(href, str):
            path = urlsplit(href).path
            if path.startswith(prefix) and "/" not in path[len(prefix) :]:
                batch_id = unquote(path[len(prefix) :])
                if batch_id:
                    return batch_id
    return None


def _is_duplicate_batch(name: str, message: str, details: Sequence[Mapping[str, str]]) -> bool:
    if name != "USER_BUSINESS_ERROR":
        return False
    texts = [message, *(d.get("issue", "") for d in details)]
    if any(marker in text.lower() for text in texts for marker in _DUPLICATE_MARKERS):
        return True
    return any(d.get("field", "").lower().endswith("sender_batch_id") for d in details)


def error_from_response(
    http_status: int, body: object, *, sender_batch_id: str | None = None
) -> PayPalError:
    """PayPal's error document (``name``, ``message``, ``debug_id``, ``details[]``, ``links``)
    or the OAuth2 one (``error``, ``error_description``) → a typed error with a stable code."""
    document: Mapping[str, Any] = body if isinstance(body, Mapping) else {}
    name = document.get("name") or document.get("error")
    name = name if isinstance(name, str) else None
    message = document.get("message") or document.get("error_description")
    message = message if isinstance(message, str) else f"PayPal answered HTTP {http_status}"
    common: dict[str, Any] = {
        "http_status": http_status,
        "name": name,
        "debug_id": _text(document, "debug_id"),
        "details": error_details(document),
    }
    text = f"PayPal: {name or 'error'}: {message}"
    if name is not None and _is_duplicate_batch(name, message, common["details"]):
        return DuplicateBatch(
            text,
            sender_batch_id=sender_batch_id or "",
            payout_batch_id=batch_id_from_links(document),
            **common,
        )
    kind: type[PayPalError]
    if http_status in (401, 403) or name in _AUTH_NAMES:
        kind = PayPalAuthError
    elif http_status == 429 or name == "RATE_LIMIT_REACHED":
        kind = PayPalRateLimited
    elif http_status >= 500:
        kind = PayPalServerError
    elif http_status == 404 or name == "RESOURCE_NOT_FOUND":
        kind = PayPalNotFound
    elif name in _VALIDATION_NAMES:
        kind = PayPalValidationError
    elif http_status in (400, 409, 422):
        kind = PayPalBusinessError
    else:
        kind = PayPalError
    return kind(text, **common)
