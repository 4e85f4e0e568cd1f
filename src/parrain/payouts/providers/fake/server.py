"""The fake's server: PayPal Payouts v1 over HTTP, following PayPal's published API.

It runs in a thread of the caller (tests: ``FakePayPal().start()`` on ``127.0.0.1:0``) or as
``parrain fake-paypal --port N``. It serves:

- ``POST /v1/oauth2/token`` (basic auth with the configured client id and secret);
- ``POST /v1/payments/payouts``: the whole batch is refused with ``400 VALIDATION_ERROR`` and
  ``details[]`` naming each bad field when one item is invalid; a ``sender_batch_id`` used
  before is refused with ``USER_BUSINESS_ERROR`` and a HATEOAS link to the original batch;
- ``GET /v1/payments/payouts/{id}`` with ``page``, ``page_size`` and ``total_required``;
- ``GET /v1/payments/payouts-item/{payout_item_id}``;
- ``POST /v1/notifications/verify-webhook-signature`` (see :mod:`.webhooks`).

Items are ``PENDING`` until ``settle_after`` has passed on the fake's clock, then take the
outcome of the first :class:`OutcomeRule` matching their receiver (default ``SUCCESS``); an
``UNCLAIMED`` item becomes ``RETURNED`` after 30 days, as at PayPal. Faults
(:class:`Fault`) are injected for the next N requests of an endpoint. The fake counts what it
accepted to pay each receiver, so a test can assert that nobody was paid twice.

Given a ``webhook_url``, it notifies it as PayPal does: an item event when an item reaches a
final status (``PAYMENT.PAYOUTS-ITEM.SUCCEEDED``...), ``PAYMENT.PAYOUTSBATCH.SUCCESS`` when
a batch completes. :meth:`FakePayPal.reverse` turns a paid item ``REVERSED`` or
``REFUNDED``, as PayPal may after a success.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import itertools
import json
import re
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final
from urllib.parse import parse_qs, quote, unquote, urlsplit
from uuid import uuid4

from parrain.kit.clock import Clock, FrozenClock, SystemClock
from parrain.kit.money import Money
from parrain.logging import get_logger
from parrain.payouts.providers.fake import validation
from parrain.payouts.providers.fake.webhooks import (
    CERTS_PATH,
    DEFAULT_WEBHOOK_ID,
    EVENTS_PATH,
    WebhookSender,
    WebhookSigner,
    parse_verification,
)
from parrain.payouts.providers.paypal_webhook_wire import (
    BATCH_RESOURCE,
    ITEM_EVENT_PREFIX,
    ITEM_RESOURCE,
    VERIFY_WEBHOOK_SIGNATURE_PATH,
    WebhookEventType,
)
from parrain.payouts.providers.paypal_wire import (
    ITEMS_PATH,
    PAYOUTS_PATH,
    TOKEN_PATH,
    BatchStatus,
    ItemStatus,
    amount_to_wire,
)

DEFAULT_CLIENT_ID: Final = "fake-client-id"
DEFAULT_CLIENT_SECRET: Final = "fake-client-secret"  # noqa: S105 - the fake's, not a secret
UNCLAIMED_RETURN_AFTER: Final = timedelta(days=30)
_INFORMATION_LINK: Final = "https://developer.paypal.com/docs/api/payments.payouts-batch/#errors"
_MAX_BODY: Final = 64 * 1024 * 1024

_log = get_logger(__name__)


class Endpoint(StrEnum):
    """The fake's endpoints, by PayPal's operation ids (the token one has none)."""

    TOKEN = "oauth2.token"  # noqa: S105 - an operation name
    CREATE_BATCH = "payouts.post"
    GET_BATCH = "payouts.get"
    GET_ITEM = "payouts-item.get"
    VERIFY_WEBHOOK = "verify-webhook-signature.post"


class Fault(StrEnum):
    """What goes wrong with a request."""

    #: Hold the request for ``hang_seconds`` without doing anything, then drop the connection.
    HANG = "hang"
    #: ``500 INTERNAL_SERVER_ERROR`` without doing anything.
    SERVER_ERROR = "server_error"
    #: ``429 RATE_LIMIT_REACHED`` with ``Retry-After``, without doing anything.
    RATE_LIMIT = "rate_limit"
    #: Do the work (a batch is accepted), then drop the connection without an answer.
    DROP_RESPONSE = "drop_response"


@dataclass(frozen=True, slots=True)
class OutcomeRule:
    """Items whose receiver matches ``receiver_pattern`` (a regular expression, searched)
    end with ``status``."""

    receiver_pattern: str
    status: ItemStatus

    def matches(self, receiver: str) -> bool:
        return re.search(self.receiver_pattern, receiver) is not None


@dataclass(frozen=True, slots=True)
class SentResponse:
    """A response the fake sent: for the tests that check them against PayPal's spec."""

    operation: Endpoint
    status: int
    body: Any


@dataclass(frozen=True, slots=True)
class FakePayment:
    """An item the fake accepted to pay."""

    payout_batch_id: str
    payout_item_id: str
    amount: Money


_ITEM_ERRORS: Final[Mapping[ItemStatus, tuple[str, str]]] = {
    ItemStatus.UNCLAIMED: (
        "RECEIVER_UNREGISTERED",
        "Receiver is unregistered. Send a reminder to the receiver to sign up with PayPal.",
    ),
    ItemStatus.RETURNED: ("RECEIVER_UNCONFIRMED", "Receiver did not claim the payout."),
    ItemStatus.BLOCKED: ("RECEIVER_ACCOUNT_LOCKED", "Receiver's account is locked."),
    ItemStatus.FAILED: ("RECEIVER_ACCOUNT_INVALID", "Receiver's account is invalid."),
    ItemStatus.REFUNDED: ("TRANSACTION_REFUNDED", "The payout was refunded."),
    ItemStatus.REVERSED: ("TRANSACTION_REVERSED", "The payout was reversed."),
    ItemStatus.ONHOLD: ("TRANSACTION_ONHOLD", "The payout is on hold for review."),
}


#: The event announcing each final status. PayPal publishes no event for REVERSED; the fake
#: sends one named like the others (a receiver must not depend on the name: ADR 19).
_ITEM_EVENTS: Final[Mapping[ItemStatus, tuple[str, str]]] = {
    ItemStatus.SUCCESS: (WebhookEventType.ITEM_SUCCEEDED, "A payout item has succeeded"),
    ItemStatus.FAILED: (WebhookEventType.ITEM_FAILED, "A payout item has failed"),
    ItemStatus.UNCLAIMED: (WebhookEventType.ITEM_UNCLAIMED, "A payout item is unclaimed"),
    ItemStatus.RETURNED: (WebhookEventType.ITEM_RETURNED, "A payout item was returned"),
    ItemStatus.BLOCKED: (WebhookEventType.ITEM_BLOCKED, "A payout item was blocked"),
    ItemStatus.REFUNDED: (WebhookEventType.ITEM_REFUNDED, "A payout item was refunded"),
    ItemStatus.REVERSED: (f"{ITEM_EVENT_PREFIX}REVERSED", "A payout item was reversed"),
}


@dataclass(slots=True)
class _Item:
    payout_item_id: str
    payout_batch_id: str
    transaction_id: str
    recipient_type: str
    receiver: str
    amount: Money
    sender_item_id: str | None
    note: str | None
    outcome: ItemStatus
    #: REVERSED or REFUNDED once :meth:`FakePayPal.reverse` took a paid item back.
    reversal: ItemStatus | None = None
    #: The status its last webhook announced.
    notified: ItemStatus | None = None


@dataclass(slots=True)
class _Batch:
    payout_batch_id: str
    sender_batch_header: dict[str, str]
    created_at: datetime
    items: list[_Item] = field(default_factory=list)
    notified: bool = False


@dataclass(slots=True)
class _Answer:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class _PendingFault:
    fault: Fault
    remaining: int
    retry_after: int


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class FakePayPal:
    """PayPal Payouts v1, in process. Thread-safe; use as a context manager or start/stop."""

    def __init__(
        self,
        *,
        client_id: str = DEFAULT_CLIENT_ID,
        client_secret: str = DEFAULT_CLIENT_SECRET,
        clock: Clock | None = None,
        settle_after: timedelta = timedelta(seconds=5),
        outcomes: Sequence[OutcomeRule] = (),
        token_lifetime: timedelta = timedelta(hours=9),
        hang_seconds: float = 5.0,
        on_response: Callable[[SentResponse], None] | None = None,
        webhook_url: str | None = None,
        webhook_id: str = DEFAULT_WEBHOOK_ID,
        webhook_attempts: int = 4,
    ) -> None:
        self._client_id = client_id
        self._client_secret = client_secret
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.settle_after = settle_after
        self.outcomes: list[OutcomeRule] = list(outcomes)
        self.token_lifetime = token_lifetime
        self.hang_seconds = hang_seconds
        self.on_response = on_response
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._tokens: dict[str, datetime] = {}
        self._batches: dict[str, _Batch] = {}
        self._by_sender_batch_id: dict[str, str] = {}
        self._items: dict[str, _Item] = {}
        self._faults: dict[Endpoint, deque[_PendingFault]] = {e: deque() for e in Endpoint}
        self._requests: dict[Endpoint, int] = dict.fromkeys(Endpoint, 0)
        self._ids = itertools.count(1)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.webhook_url = webhook_url
        self.webhook_id = webhook_id
        self._webhook_attempts = webhook_attempts
        self._signer: WebhookSigner | None = None
        self._sender: WebhookSender | None = None

    # --- life -----------------------------------------------------------------------------

    def start(self, host: str = "127.0.0.1", port: int = 0) -> FakePayPal:
        fake = self

        class Handler(_Handler):
            paypal = fake

        server = ThreadingHTTPServer((host, port), Handler)
        server.daemon_threads = True
        self._server = server
        self._stopping.clear()
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        self._signer = WebhookSigner(
            webhook_id=self.webhook_id,
            clock=self.clock,
            cert_url=f"{self.base_url}{CERTS_PATH}/CERT-fake-{self.webhook_id}",
        )
        if self.webhook_url is not None:
            self._sender = WebhookSender(
                url=self.webhook_url,
                signer=self._signer,
                source=self._due_events,
                attempts=self._webhook_attempts,
            ).start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._sender is not None:
            self._sender.stop()
            self._sender = None
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakePayPal:
        return self if self._server is not None else self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the fake is not started")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the fake is not started")
        host = str(self._server.server_address[0])
        return f"http://{host}:{self.port}"

    # --- what tests steer -----------------------------------------------------------------

    def inject(
        self, endpoint: Endpoint, fault: Fault, *, times: int = 1, retry_after: int = 1
    ) -> None:
        """Make the next ``times`` requests of ``endpoint`` meet ``fault`` (after the ones
        already injected)."""
        if times < 1:
            raise ValueError("times must be at least 1")
        with self._lock:
            self._faults[endpoint].append(_PendingFault(fault, times, retry_after))

    def advance(self, delta: timedelta) -> None:
        """Move the fake's clock (a :class:`FrozenClock`) forward: pending items settle."""
        if not isinstance(self.clock, FrozenClock):
            raise TypeError("advance() needs the fake to run on a FrozenClock")
        self.clock.advance(delta)
        if self._sender is not None:
            self._sender.scan_now()

    @property
    def webhooks(self) -> WebhookSender:
        """The webhook sender (the fake was given a ``webhook_url`` and is started)."""
        if self._sender is None:
            raise RuntimeError("the fake sends no webhooks: start it with a webhook_url")
        return self._sender

    def reverse(self, payout_item_id: str, status: ItemStatus = ItemStatus.REVERSED) -> None:
        """Take back a paid item, as PayPal may after a SUCCESS: it reads ``status``
        (REVERSED or REFUNDED) from now on, and its webhook is sent."""
        if status not in (ItemStatus.REVERSED, ItemStatus.REFUNDED):
            raise ValueError("an item is taken back as REVERSED or REFUNDED")
        with self._lock:
            item = self._items[payout_item_id]
            batch = self._batches[item.payout_batch_id]
            if self._status(item, batch, self.clock.now()) is not ItemStatus.SUCCESS:
                raise ValueError(f"item {payout_item_id} was not paid")
            item.reversal = status
        if self._sender is not None:
            self._sender.scan_now()

    def item_ids(self, receiver: str) -> list[str]:
        """PayPal's ids of the items accepted for ``receiver``."""
        with self._lock:
            return [i.payout_item_id for i in self._items.values() if i.receiver == receiver]

    def revoke_tokens(self) -> None:
        """Forget every token issued: the next call with one is answered 401."""
        with self._lock:
            self._tokens.clear()

    def requests(self, endpoint: Endpoint) -> int:
        """How many requests ``endpoint`` received (faulty ones included)."""
        with self._lock:
            return self._requests[endpoint]

    @property
    def batch_count(self) -> int:
        with self._lock:
            return len(self._batches)

    def payments_to(self, receiver: str) -> list[FakePayment]:
        """Every item accepted for ``receiver``, whatever its status."""
        with self._lock:
            return [
                FakePayment(item.payout_batch_id, item.payout_item_id, item.amount)
                for item in self._items.values()
                if item.receiver == receiver
            ]

    def paid_total(self, receiver: str) -> dict[str, int]:
        """Minor units paid to ``receiver`` per currency, counting items settled SUCCESS."""
        totals: dict[str, int] = {}
        with self._lock:
            now = self.clock.now()
            for item in self._items.values():
                batch = self._batches[item.payout_batch_id]
                if item.receiver == receiver and self._status(item, batch, now).is_paid:
                    currency = item.amount.currency
                    totals[currency] = totals.get(currency, 0) + item.amount.minor
        return totals

    # --- requests -------------------------------------------------------------------------

    def _next_fault(self, endpoint: Endpoint) -> _PendingFault | None:
        with self._lock:
            self._requests[endpoint] += 1
            queue = self._faults[endpoint]
            if not queue:
                return None
            pending = queue[0]
            pending.remaining -= 1
            if pending.remaining <= 0:
                queue.popleft()
            return pending

    def _debug_id(self) -> str:
        return f"{next(self._ids):013x}"

    def _error(
        self,
        status: int,
        name: str,
        message: str,
        *,
        details: Iterable[dict[str, str]] = (),
        links: Iterable[dict[str, str]] = (),
    ) -> _Answer:
        body: dict[str, Any] = {
            "name": name,
            "message": message,
            "debug_id": self._debug_id(),
            "information_link": _INFORMATION_LINK,
        }
        details, links = list(details), list(links)
        if details:
            body["details"] = details
        if links:
            body["links"] = links
        return _Answer(status, body)

    def _authenticate(self, authorization: str | None) -> _Answer | None:
        token = authorization[len("Bearer ") :] if authorization else ""
        if not authorization or not authorization.startswith("Bearer "):
            token = ""
        with self._lock:
            expires = self._tokens.get(token)
            if expires is not None and self.clock.now() < expires:
                return None
        return self._error(
            401,
            "AUTHENTICATION_FAILURE",
            "Authentication failed due to invalid authentication credentials or a missing "
            "Authorization header.",
        )

    def issue_token(self, authorization: str | None, form: Mapping[str, list[str]]) -> _Answer:
        invalid_client = _Answer(
            401, {"error": "invalid_client", "error_description": "Client Authentication failed"}
        )
        if not authorization or not authorization.startswith("Basic "):
            return invalid_client
        try:
            decoded = base64.b64decode(authorization[len("Basic ") :], validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return invalid_client
        client_id, _, secret = decoded.partition(":")
        if (client_id, secret) != (self._client_id, self._client_secret):
            return invalid_client
        if form.get("grant_type") != ["client_credentials"]:
            return _Answer(
                400,
                {
                    "error": "unsupported_grant_type",
                    "error_description": "Grant Type is NULL or not supported",
                },
            )
        with self._lock:
            token = f"A21AA{next(self._ids):012d}fake"
            self._tokens[token] = self.clock.now() + self.token_lifetime
        return _Answer(
            200,
            {
                "scope": "https://uri.paypal.com/payments/payouts",
                "access_token": token,
                "token_type": "Bearer",
                "app_id": "APP-FAKE",
                "expires_in": int(self.token_lifetime.total_seconds()),
                "nonce": f"{_stamp(self.clock.now())}{token[-8:]}",
            },
        )

    def create_batch(self, body: Any, base_url: str) -> _Answer:
        if not isinstance(body, dict):
            return self._validation_error([validation.detail("", "MALFORMED_REQUEST_JSON")])
        header = body.get("sender_batch_header")
        sender_batch_id = header.get("sender_batch_id") if isinstance(header, dict) else None
        with self._lock:
            if isinstance(sender_batch_id, str) and sender_batch_id in self._by_sender_batch_id:
                original = self._by_sender_batch_id[sender_batch_id]
                return self._error(
                    400,
                    "USER_BUSINESS_ERROR",
                    "Duplicate batch request",
                    details=[
                        {
                            "field": "sender_batch_header.sender_batch_id",
                            "value": sender_batch_id,
                            "location": "body",
                            "issue": "Batch with given sender_batch_id already exists",
                        }
                    ],
                    links=[validation.link(base_url, f"{PAYOUTS_PATH}/{quote(original)}", "self")],
                )
            problems, items = validation.validate_batch(body)
            if problems:
                return self._validation_error(problems)
            batch_id = f"FAKEB{next(self._ids):08d}"
            given = header if isinstance(header, dict) else {}
            header_out = {
                key: value
                for key, value in given.items()
                if key in ("sender_batch_id", "recipient_type", "email_subject", "email_message")
                and isinstance(value, str)
            }
            batch = _Batch(batch_id, header_out, self.clock.now())
            for wire in items:
                number = next(self._ids)
                receiver = wire["receiver"]
                item = _Item(
                    payout_item_id=f"FAKEI{number:08d}",
                    payout_batch_id=batch_id,
                    transaction_id=f"FAKET{number:012d}",
                    recipient_type=wire["recipient_type"],
                    receiver=receiver,
                    amount=wire["amount"],
                    sender_item_id=wire.get("sender_item_id"),
                    note=wire.get("note"),
                    outcome=self._outcome(receiver),
                )
                batch.items.append(item)
                self._items[item.payout_item_id] = item
            self._batches[batch_id] = batch
            if isinstance(sender_batch_id, str):
                self._by_sender_batch_id[sender_batch_id] = batch_id
            _log.info("fake_paypal.batch_accepted", payout_batch_id=batch_id, items=len(items))
            return _Answer(
                201,
                {
                    "batch_header": {
                        "payout_batch_id": batch_id,
                        "batch_status": BatchStatus.PENDING.value,
                        "sender_batch_header": dict(header_out),
                    },
                    "links": [validation.link(base_url, f"{PAYOUTS_PATH}/{batch_id}", "self")],
                },
            )

    def _validation_error(self, details: list[dict[str, str]]) -> _Answer:
        return self._error(
            400, "VALIDATION_ERROR", "Invalid request - see details", details=details
        )

    def _outcome(self, receiver: str) -> ItemStatus:
        for rule in self.outcomes:
            if rule.matches(receiver):
                return rule.status
        return ItemStatus.SUCCESS

    def _status(self, item: _Item, batch: _Batch, now: datetime) -> ItemStatus:
        settled_at = batch.created_at + self.settle_after
        if now < settled_at:
            return ItemStatus.PENDING
        if item.outcome is ItemStatus.UNCLAIMED and now >= settled_at + UNCLAIMED_RETURN_AFTER:
            return ItemStatus.RETURNED
        if item.reversal is not None and item.outcome is ItemStatus.SUCCESS:
            return item.reversal
        return item.outcome

    def _item_document(
        self, item: _Item, batch: _Batch, now: datetime, base_url: str, *, with_sender: bool
    ) -> dict[str, Any]:
        status = self._status(item, batch, now)
        detail: dict[str, Any] = {
            "recipient_type": item.recipient_type,
            "amount": amount_to_wire(item.amount),
            "receiver": item.receiver,
            "recipient_wallet": "PAYPAL",
        }
        if item.note is not None:
            detail["note"] = item.note
        if item.sender_item_id is not None:
            detail["sender_item_id"] = item.sender_item_id
        document: dict[str, Any] = {
            "payout_item_id": item.payout_item_id,
            "transaction_status": status.value,
            "payout_item_fee": amount_to_wire(Money.zero(item.amount.currency)),
            "payout_batch_id": item.payout_batch_id,
            "payout_item": detail,
            "links": [validation.link(base_url, f"{ITEMS_PATH}/{item.payout_item_id}", "item")],
        }
        if with_sender and "sender_batch_id" in batch.sender_batch_header:
            document["sender_batch_id"] = batch.sender_batch_header["sender_batch_id"]
        if status is not ItemStatus.PENDING:
            document["transaction_id"] = item.transaction_id
            document["time_processed"] = _stamp(batch.created_at + self.settle_after)
        if status in _ITEM_ERRORS:
            name, message = _ITEM_ERRORS[status]
            document["errors"] = {
                "name": name,
                "message": message,
                "debug_id": self._debug_id(),
                "information_link": _INFORMATION_LINK,
            }
        return document

    def show_batch(self, batch_id: str, query: Mapping[str, list[str]], base_url: str) -> _Answer:
        with self._lock:
            batch = self._batches.get(batch_id)
            if batch is None:
                return self._error(
                    404, "RESOURCE_NOT_FOUND", "The specified resource does not exist."
                )
            paging = validation.paging(query)
            if isinstance(paging, list):
                return self._error(
                    400,
                    "INVALID_REQUEST",
                    "Request is not well-formed, syntactically incorrect, or violates schema.",
                    details=paging,
                )
            page, page_size, total_required = paging
            now = self.clock.now()
            total_items = len(batch.items)
            total_pages = max(1, -(-total_items // page_size))
            chosen = batch.items[(page - 1) * page_size : page * page_size]
            header = self._batch_header(batch, now)
            path = f"{PAYOUTS_PATH}/{batch.payout_batch_id}"
            links = [validation.link(base_url, f"{path}?page={page}&page_size={page_size}", "self")]
            if page < total_pages:
                links.append(
                    validation.link(
                        base_url, f"{path}?page={page + 1}&page_size={page_size}", "next"
                    )
                )
            body: dict[str, Any] = {
                "batch_header": header,
                "items": [
                    self._item_document(item, batch, now, base_url, with_sender=False)
                    for item in chosen
                ],
                "links": links,
            }
            if total_required:
                body["total_items"] = total_items
                body["total_pages"] = total_pages
            return _Answer(200, body)

    def _is_done(self, batch: _Batch, now: datetime) -> bool:
        return all(self._status(item, batch, now) is not ItemStatus.PENDING for item in batch.items)

    def _batch_header(self, batch: _Batch, now: datetime) -> dict[str, Any]:
        done = self._is_done(batch, now)
        header: dict[str, Any] = {
            "payout_batch_id": batch.payout_batch_id,
            "batch_status": (BatchStatus.SUCCESS if done else BatchStatus.PROCESSING).value,
            "time_created": _stamp(batch.created_at),
            "sender_batch_header": dict(batch.sender_batch_header),
            "funding_source": "BALANCE",
        }
        if done:
            header["time_completed"] = _stamp(batch.created_at + self.settle_after)
        currencies = {item.amount.currency for item in batch.items}
        if len(currencies) == 1:
            currency = currencies.pop()
            total = sum(item.amount.minor for item in batch.items)
            header["amount"] = amount_to_wire(Money(total, currency))
            header["fees"] = amount_to_wire(Money.zero(currency))
        return header

    # --- webhooks -------------------------------------------------------------------------

    def _envelope(
        self, event_type: str, resource_type: str, summary: str, resource: dict[str, Any]
    ) -> dict[str, Any]:
        event_id = f"WH-FAKE{next(self._ids):012d}-{uuid4().hex[:17].upper()}"
        return {
            "id": event_id,
            "event_version": "1.0",
            "create_time": _stamp(self.clock.now()),
            "resource_type": resource_type,
            "resource_version": "1.0",
            "event_type": event_type,
            "summary": summary,
            "resource": resource,
            "links": [
                validation.link(self.base_url, f"{EVENTS_PATH}/{event_id}", "self"),
                {
                    "href": f"{self.base_url}{EVENTS_PATH}/{event_id}/resend",
                    "rel": "resend",
                    "method": "POST",
                },
            ],
        }

    def _due_events(self) -> list[dict[str, Any]]:
        """The events that became due since the last call: each item that reached a final
        status it has not announced yet, and each batch that completed."""
        events: list[dict[str, Any]] = []
        base_url = self.base_url
        with self._lock:
            now = self.clock.now()
            for batch in self._batches.values():
                for item in batch.items:
                    status = self._status(item, batch, now)
                    if status not in _ITEM_EVENTS or item.notified is status:
                        continue
                    item.notified = status
                    resource = self._item_document(item, batch, now, base_url, with_sender=True)
                    resource["links"].append(
                        validation.link(
                            base_url, f"{PAYOUTS_PATH}/{batch.payout_batch_id}", "batch"
                        )
                    )
                    event_type, summary = _ITEM_EVENTS[status]
                    events.append(self._envelope(event_type, ITEM_RESOURCE, summary, resource))
                if not batch.notified and self._is_done(batch, now):
                    batch.notified = True
                    resource = {
                        "batch_header": self._batch_header(batch, now),
                        "links": [
                            validation.link(
                                base_url, f"{PAYOUTS_PATH}/{batch.payout_batch_id}", "self"
                            )
                        ],
                    }
                    events.append(
                        self._envelope(
                            WebhookEventType.BATCH_SUCCESS,
                            BATCH_RESOURCE,
                            "Payouts batch completed successfully.",
                            resource,
                        )
                    )
        return events

    def verify_webhook_signature(self, body: Any) -> _Answer:
        request = parse_verification(body)
        if isinstance(request, list):
            return self._validation_error(request)
        assert self._signer is not None  # made at start, before the first request
        return _Answer(200, {"verification_status": self._signer.verify(request).value})

    def show_item(self, item_id: str, base_url: str) -> _Answer:
        with self._lock:
            item = self._items.get(item_id)
            if item is None:
                return self._error(
                    404, "RESOURCE_NOT_FOUND", "The specified resource does not exist."
                )
            batch = self._batches[item.payout_batch_id]
            return _Answer(
                200,
                self._item_document(item, batch, self.clock.now(), base_url, with_sender=True),
            )


class _Handler(BaseHTTPRequestHandler):
    """One request to the fake: route, apply the fault, answer JSON (or nothing)."""

    paypal: FakePayPal
    protocol_version = "HTTP/1.1"
    server_version = "FakePayPal/1"

    def handle(self) -> None:
        # A client that went away (a timeout on its side) needs no answer.
        with contextlib.suppress(ConnectionError):
            super().handle()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the default writes every request line (with ids) to stderr."""

    def _base_url(self) -> str:
        host = self.headers.get("Host")
        return f"http://{host}" if host else self.paypal.base_url

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if length > _MAX_BODY:
            raise ValueError("body too large")
        return self.rfile.read(length) if length > 0 else b""

    def _route(self, method: str) -> tuple[Endpoint, str] | None:
        path = urlsplit(self.path).path
        if method == "POST" and path == TOKEN_PATH:
            return Endpoint.TOKEN, ""
        if method == "POST" and path == PAYOUTS_PATH:
            return Endpoint.CREATE_BATCH, ""
        if method == "POST" and path == VERIFY_WEBHOOK_SIGNATURE_PATH:
            return Endpoint.VERIFY_WEBHOOK, ""
        if method == "GET" and path.startswith(PAYOUTS_PATH + "/"):
            rest = path[len(PAYOUTS_PATH) + 1 :]
            if rest and "/" not in rest:
                return Endpoint.GET_BATCH, unquote(rest)
        if method == "GET" and path.startswith(ITEMS_PATH + "/"):
            rest = path[len(ITEMS_PATH) + 1 :]
            if rest and "/" not in rest:
                return Endpoint.GET_ITEM, unquote(rest)
        return None

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def _serve(self, method: str) -> None:
        fake = self.paypal
        try:
            raw = self._read_body()
        except ValueError:
            self._drop()
            return
        route = self._route(method)
        if route is None:
            self._send(
                None,
                fake._error(404, "RESOURCE_NOT_FOUND", "The specified resource does not exist."),
            )
            return
        endpoint, resource_id = route
        fault = fake._next_fault(endpoint)
        if fault is not None and fault.fault is Fault.HANG:
            fake._stopping.wait(fake.hang_seconds)
            self._drop()
            return
        if fault is not None and fault.fault is Fault.SERVER_ERROR:
            self._send(
                endpoint,
                fake._error(500, "INTERNAL_SERVER_ERROR", "An internal server error has occurred."),
            )
            return
        if fault is not None and fault.fault is Fault.RATE_LIMIT:
            answer = fake._error(
                429, "RATE_LIMIT_REACHED", "Too many requests. Blocked due to rate limiting."
            )
            answer.headers["Retry-After"] = str(fault.retry_after)
            self._send(endpoint, answer)
            return
        answer = self._answer(endpoint, resource_id, raw)
        if fault is not None and fault.fault is Fault.DROP_RESPONSE:
            self._drop()
            return
        self._send(endpoint, answer)

    def _answer(self, endpoint: Endpoint, resource_id: str, raw: bytes) -> _Answer:
        fake = self.paypal
        if endpoint is Endpoint.TOKEN:
            form = parse_qs(raw.decode("utf-8", "replace"))
            return fake.issue_token(self.headers.get("Authorization"), form)
        refusal = fake._authenticate(self.headers.get("Authorization"))
        if refusal is not None:
            return refusal
        if endpoint in (Endpoint.CREATE_BATCH, Endpoint.VERIFY_WEBHOOK):
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = None
            if endpoint is Endpoint.VERIFY_WEBHOOK:
                return fake.verify_webhook_signature(body)
            return fake.create_batch(body, self._base_url())
        if endpoint is Endpoint.GET_BATCH:
            query = parse_qs(urlsplit(self.path).query)
            return fake.show_batch(resource_id, query, self._base_url())
        return fake.show_item(resource_id, self._base_url())

    def _drop(self) -> None:
        """Close the connection without a byte of answer, as a lost response looks."""
        self.close_connection = True

    def _send(self, endpoint: Endpoint | None, answer: _Answer) -> None:
        payload = json.dumps(answer.body, separators=(",", ":")).encode()
        self.send_response(answer.status, HTTPStatus(answer.status).phrase)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Paypal-Debug-Id", f"{hash(payload) & 0xFFFFFFFFFFFF:012x}")
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.end_headers()
        fake = self.paypal
        if endpoint is not None and fake.on_response is not None:
            # Before the bytes leave, so that a client never sees an answer not yet recorded.
            fake.on_response(SentResponse(endpoint, answer.status, answer.body))
        self.wfile.write(payload)
