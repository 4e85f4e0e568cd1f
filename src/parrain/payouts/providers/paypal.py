"""PayPal Payouts v1 client (httpx, synchronous), written against PayPal's OpenAPI description.

- OAuth2 client credentials: ``POST /v1/oauth2/token`` with basic auth; the token is cached
  until shortly before ``expires_in`` and fetched again once on a 401.
- ``create_batch``: ``POST /v1/payments/payouts``. ``sender_batch_id`` is PayPal's only
  deduplication key, so a retry (ours after a 5xx, a timeout or a dropped connection, or the
  caller's after a crash) reuses it and can never create a second batch. A reuse is answered
  ``USER_BUSINESS_ERROR`` with a HATEOAS link to the original batch: :class:`DuplicateBatch`
  carries its ``payout_batch_id``, and ``create_or_recover_batch`` looks it up and checks it
  is ours (docs/adr/0016-paypal-client-and-fake.md).
- ``get_batch`` reads every page; ``get_batch_page`` one; ``get_item`` one item.
- ``verify_webhook_signature``: ``POST /v1/notifications/verify-webhook-signature``, PayPal's
  own check of a notification's transmission headers against the event (ADR 19).
- 429 and 5xx, timeouts and dropped connections are retried with bounded exponential backoff
  (``Retry-After`` honoured up to a cap; a total attempt cap; ``sleep`` injectable); what is
  left is a typed error with a stable code.

Nothing personal is logged: receivers are :class:`~parrain.kit.pii.Pii`, revealed only into
the request body.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, Final
from urllib.parse import quote

import httpx
from pydantic import ValidationError

from parrain.kit.clock import Clock, SystemClock, as_utc
from parrain.logging import get_logger
from parrain.payouts.errors import (
    DuplicateBatch,
    InvalidPayoutBatch,
    PayPalAuthError,
    PayPalError,
    PayPalRateLimited,
    PayPalServerError,
    PayPalTimeout,
    PayPalUnexpectedResponse,
    PayPalUnreachable,
)
from parrain.payouts.providers.paypal_webhook_wire import (
    VERIFY_WEBHOOK_SIGNATURE_PATH,
    VerificationStatus,
    VerifyWebhookSignature,
    VerifyWebhookSignatureResponse,
)
from parrain.payouts.providers.paypal_wire import (
    ITEMS_PATH,
    MAX_BATCH_ITEMS,
    MAX_PAGE,
    MAX_PAGE_SIZE,
    PAYOUTS_PATH,
    TOKEN_PATH,
    BatchDetails,
    BatchPage,
    BatchStatus,
    CreatedBatch,
    PayoutBatchRequest,
    PayoutItemResult,
    error_from_response,
    parse_batch_header,
    parse_batch_page,
    parse_item,
)

SANDBOX_BASE_URL: Final = "https://api-m.sandbox.paypal.com"
LIVE_BASE_URL: Final = "https://api-m.paypal.com"

_log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to try: ``max_attempts`` in all (the first one included), waiting
    ``base_delay · 2^(n-1)`` capped at ``max_delay`` between them, or ``Retry-After`` when
    PayPal sends one; a ``Retry-After`` longer than ``max_retry_after`` is not waited for."""

    max_attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = 60.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return retry_after
        return float(min(self.max_delay, self.base_delay * 2 ** (attempt - 1)))


@dataclass(slots=True)
class _Token:
    value: str
    refresh_at: datetime


class _Retryable(Exception):
    """An attempt that may be repeated: the error to raise if none is left."""

    def __init__(
        self,
        error: PayPalError,
        *,
        retry_after: float | None = None,
        sent: bool,
        free: bool = False,
    ) -> None:
        super().__init__(error.message)
        self.error = error
        self.retry_after = retry_after
        #: Repeat at once without counting an attempt (the one token refresh on a 401).
        self.free = free
        #: The request may have reached PayPal (a create may have been accepted).
        self.sent = sent


def _retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """``Retry-After`` as seconds: a number of seconds or an HTTP date."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(int(text))
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, (as_utc(moment) - now).total_seconds())


class PayPalClient:
    """A PayPal Payouts v1 client. Thread-safe; one per process is enough.

    ``clock`` decides when the token is due for refresh; ``sleep`` is what waits between
    attempts (tests pass one that records instead of sleeping); ``transport`` is httpx's.
    """

    def __init__(
        self,
        *,
        base_url: str,
        client_id: str,
        client_secret: str,
        clock: Clock | None = None,
        sleep: Callable[[float], None] = time.sleep,
        timeout: float = 30.0,
        retry: RetryPolicy = RetryPolicy(),
        token_refresh_margin: timedelta = timedelta(minutes=5),
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if retry.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self._client_id = client_id
        self._client_secret = client_secret
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._sleep = sleep
        self._retry = retry
        self._margin = token_refresh_margin
        self._token: _Token | None = None
        self._token_lock = threading.Lock()
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            timeout=timeout,
            transport=transport,
            headers={"Accept": "application/json"},
        )

    def __repr__(self) -> str:
        return f"PayPalClient(base_url={str(self._http.base_url)!r})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> PayPalClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # --- token ----------------------------------------------------------------------------

    def access_token(self) -> str:
        """A valid access token: the cached one, or a new one when it is due. Raises the
        :class:`PayPalError` of a failed fetch (one attempt: the retries are the API
        calls')."""
        try:
            return self._access_token()
        except _Retryable as retryable:
            raise retryable.error from None

    def _access_token(self) -> str:
        with self._token_lock:
            token = self._token
            if token is not None and self._clock.now() < token.refresh_at:
                return token.value
            return self._fetch_token()

    def _forget_token(self, value: str) -> None:
        with self._token_lock:
            if self._token is not None and self._token.value == value:
                self._token = None

    def _fetch_token(self) -> str:
        try:
            response = self._http.post(
                TOKEN_PATH,
                data={"grant_type": "client_credentials"},
                auth=(self._client_id, self._client_secret),
            )
        except httpx.TimeoutException:
            raise _Retryable(
                PayPalTimeout("PayPal's token endpoint timed out"), sent=True
            ) from None
        except httpx.TransportError as exc:
            raise _Retryable(
                PayPalUnreachable(f"PayPal's token endpoint is unreachable: {type(exc).__name__}"),
                sent=True,
            ) from None
        if response.status_code != 200:
            error = error_from_response(response.status_code, _json_or_none(response))
            if response.status_code == 429 or response.status_code >= 500:
                raise _Retryable(error, retry_after=self._retry_after(response), sent=True)
            raise PayPalAuthError(error.message, **_error_fields(error))
        body = _json_or_none(response)
        if not isinstance(body, Mapping):
            raise PayPalUnexpectedResponse("PayPal's token answer is not a JSON object")
        value, expires_in = body.get("access_token"), body.get("expires_in")
        if not isinstance(value, str) or not value:
            raise PayPalUnexpectedResponse("PayPal's token answer has no access_token")
        if isinstance(expires_in, bool) or not isinstance(expires_in, int) or expires_in <= 0:
            raise PayPalUnexpectedResponse("PayPal's token answer has no valid expires_in")
        lifetime = timedelta(seconds=expires_in)
        # A short-lived token is refreshed at 90% of its life rather than never cached.
        margin = min(self._margin, lifetime / 10)
        self._token = _Token(value=value, refresh_at=self._clock.now() + lifetime - margin)
        _log.info("paypal.token_fetched", expires_in=expires_in)
        return value

    # --- requests -------------------------------------------------------------------------

    def _retry_after(self, response: httpx.Response) -> float | None:
        return _retry_after_seconds(response.headers.get("Retry-After"), self._clock.now())

    def _attempt(
        self,
        method: str,
        path: str,
        *,
        body: Any,
        params: Mapping[str, str | int] | None,
        sender_batch_id: str | None,
        refreshed: list[bool],
    ) -> Any:
        token = self._access_token()
        try:
            response = self._http.request(
                method,
                path,
                json=body,
                params=params,
                headers={"Authorization": f"Bearer {token}"},
            )
        except httpx.TimeoutException:
            raise _Retryable(
                PayPalTimeout(f"PayPal did not answer {method} {_template(path)} in time"),
                sent=True,
            ) from None
        except httpx.TransportError as exc:
            sent = not isinstance(exc, httpx.ConnectError)
            raise _Retryable(
                PayPalUnreachable(
                    f"no answer from PayPal to {method} {_template(path)}: {type(exc).__name__}"
                ),
                sent=sent,
            ) from None
        status = response.status_code
        if 200 <= status < 300:
            document = _json_or_none(response)
            if document is None:
                raise PayPalUnexpectedResponse(f"PayPal answered {status} without JSON")
            return document
        error = error_from_response(
            status, _json_or_none(response), sender_batch_id=sender_batch_id
        )
        if status == 401 and not refreshed[0]:
            # The token may have been revoked or expired early: fetch a new one, once.
            refreshed[0] = True
            self._forget_token(token)
            raise _Retryable(error, sent=False, free=True)
        if status == 429 or status >= 500:
            raise _Retryable(error, retry_after=self._retry_after(response), sent=status >= 500)
        raise error

    def _request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: Mapping[str, str | int] | None = None,
        sender_batch_id: str | None = None,
    ) -> Any:
        refreshed = [False]
        maybe_sent = False
        attempt = 0
        while True:
            attempt += 1
            try:
                return self._attempt(
                    method,
                    path,
                    body=body,
                    params=params,
                    sender_batch_id=sender_batch_id,
                    refreshed=refreshed,
                )
            except DuplicateBatch as duplicate:
                if maybe_sent:
                    duplicate.after_lost_response = True
                    duplicate.details = {**duplicate.details, "after_lost_response": True}
                raise
            except _Retryable as retryable:
                maybe_sent = maybe_sent or retryable.sent
                error = retryable.error
                if retryable.free:
                    attempt -= 1
                    continue
                delay = self._retry.delay(attempt, retryable.retry_after)
                _log.warning(
                    "paypal.attempt_failed",
                    method=method,
                    path=_template(path),
                    attempt=attempt,
                    code=error.code,
                    http_status=error.http_status,
                    debug_id=error.debug_id,
                    sender_batch_id=sender_batch_id,
                )
                if attempt >= self._retry.max_attempts:
                    raise _gave_up(error, attempt) from None
                if delay > self._retry.max_retry_after:
                    raise _gave_up(error, attempt, retry_after=delay) from None
                self._sleep(delay)

    # --- the API --------------------------------------------------------------------------

    def create_batch(self, batch: PayoutBatchRequest) -> CreatedBatch:
        """``POST /v1/payments/payouts``. Raises :class:`DuplicateBatch` when PayPal already
        has a batch with this ``sender_batch_id`` (see :meth:`create_or_recover_batch`)."""
        _check_batch(batch)
        document = self._request(
            "POST", PAYOUTS_PATH, body=batch.to_wire(), sender_batch_id=batch.sender_batch_id
        )
        if not isinstance(document, Mapping):
            raise PayPalUnexpectedResponse("PayPal's create answer is not a JSON object")
        header = parse_batch_header(document.get("batch_header"))
        _log.info(
            "paypal.batch_created",
            payout_batch_id=header.payout_batch_id,
            sender_batch_id=batch.sender_batch_id,
            items=len(batch.items),
            batch_status=header.batch_status.value,
        )
        return CreatedBatch(
            payout_batch_id=header.payout_batch_id,
            sender_batch_id=batch.sender_batch_id,
            batch_status=header.batch_status,
        )

    def create_or_recover_batch(self, batch: PayoutBatchRequest) -> CreatedBatch:
        """Create the batch, or find the one PayPal already has under its ``sender_batch_id``.

        For a retry whose earlier answer was lost (a timeout, a dropped connection, a crash
        before the id was recorded): PayPal's duplicate answer links to the original batch,
        which is read and checked to carry the same ``sender_batch_id``. A duplicate without
        that link is raised as is, for the caller to resolve (ADR 16).
        """
        try:
            return self.create_batch(batch)
        except DuplicateBatch as duplicate:
            if duplicate.payout_batch_id is None:
                raise
            page = self.get_batch_page(duplicate.payout_batch_id, page=1, page_size=1)
            if page.header.sender_batch_id != batch.sender_batch_id:
                raise
            _log.info(
                "paypal.batch_recovered",
                payout_batch_id=page.header.payout_batch_id,
                sender_batch_id=batch.sender_batch_id,
                after_lost_response=duplicate.after_lost_response,
            )
            return CreatedBatch(
                payout_batch_id=page.header.payout_batch_id,
                sender_batch_id=batch.sender_batch_id,
                batch_status=page.header.batch_status,
                recovered=True,
            )

    def get_batch_page(
        self,
        payout_batch_id: str,
        *,
        page: int = 1,
        page_size: int = MAX_PAGE_SIZE,
        total_required: bool = True,
    ) -> BatchPage:
        """``GET /v1/payments/payouts/{id}``: one page of a batch's items."""
        if not 1 <= page <= MAX_PAGE or not 1 <= page_size <= MAX_PAGE_SIZE:
            raise InvalidPayoutBatch(
                f"page is 1..{MAX_PAGE} and page_size 1..{MAX_PAGE_SIZE}",
                page=page,
                page_size=page_size,
            )
        params: dict[str, str | int] = {"page": page, "page_size": page_size}
        if total_required:
            params["total_required"] = "true"
        document = self._request(
            "GET", f"{PAYOUTS_PATH}/{quote(payout_batch_id, safe='')}", params=params
        )
        return parse_batch_page(document, page=page)

    def get_batch(self, payout_batch_id: str, *, page_size: int = MAX_PAGE_SIZE) -> BatchDetails:
        """The batch's header and every item, reading page after page."""
        first = self.get_batch_page(payout_batch_id, page=1, page_size=page_size)
        items = list(first.items)
        header = first.header
        if first.total_pages is not None:
            last_page = min(first.total_pages, MAX_PAGE)
        else:
            last_page = MAX_PAGE if len(first.items) == page_size else 1
        page = 1
        while page < last_page:
            page += 1
            current = self.get_batch_page(payout_batch_id, page=page, page_size=page_size)
            header = current.header
            items.extend(current.items)
            if first.total_pages is None and len(current.items) < page_size:
                break
        if first.total_items is not None and len(items) != first.total_items:
            raise PayPalUnexpectedResponse(
                f"PayPal announced {first.total_items} items and {len(items)} were read",
                payout_batch_id=payout_batch_id,
            )
        return BatchDetails(header=header, items=tuple(items))

    def get_item(self, payout_item_id: str) -> PayoutItemResult:
        """``GET /v1/payments/payouts-item/{payout_item_id}``."""
        document = self._request("GET", f"{ITEMS_PATH}/{quote(payout_item_id, safe='')}")
        return parse_item(document)

    def verify_webhook_signature(self, request: VerifyWebhookSignature) -> VerificationStatus:
        """``POST /v1/notifications/verify-webhook-signature``: PayPal says whether it sent
        this event with these transmission headers to the webhook ``request.webhook_id``.
        Retried like any call (the check changes nothing at PayPal)."""
        document = self._request(
            "POST", VERIFY_WEBHOOK_SIGNATURE_PATH, body=request.model_dump(mode="json")
        )
        try:
            answer = VerifyWebhookSignatureResponse.model_validate(document)
        except ValidationError:
            raise PayPalUnexpectedResponse(
                "PayPal's verification answer has no valid verification_status"
            ) from None
        return answer.verification_status


def _check_batch(batch: PayoutBatchRequest) -> None:
    if not batch.sender_batch_id or len(batch.sender_batch_id) > 256:
        raise InvalidPayoutBatch("a batch needs a sender_batch_id of 1 to 256 characters")
    count = len(batch.items)
    if not 1 <= count <= MAX_BATCH_ITEMS:
        raise InvalidPayoutBatch(
            f"a PayPal batch has 1 to {MAX_BATCH_ITEMS} items, not {count}",
            items=count,
            maximum=MAX_BATCH_ITEMS,
        )
    seen: set[str] = set()
    for index, item in enumerate(batch.items):
        if item.amount.minor <= 0:
            raise InvalidPayoutBatch("a payout amount must be positive", item=index)
        if not item.sender_item_id or len(item.sender_item_id) > 63:
            raise InvalidPayoutBatch("a sender_item_id has 1 to 63 characters", item=index)
        if item.sender_item_id in seen:
            raise InvalidPayoutBatch(
                "two items of the batch share a sender_item_id",
                item=index,
                sender_item_id=item.sender_item_id,
            )
        seen.add(item.sender_item_id)


def _template(path: str) -> str:
    """The path without its ids, for log lines."""
    for prefix in (PAYOUTS_PATH, ITEMS_PATH):
        if path.startswith(prefix + "/"):
            return prefix + "/{id}"
    return path


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _error_fields(error: PayPalError) -> dict[str, Any]:
    return {
        "http_status": error.http_status,
        "name": error.name,
        "debug_id": error.debug_id,
        "details": error.error_details,
    }


def _gave_up(error: PayPalError, attempts: int, *, retry_after: float | None = None) -> PayPalError:
    """The typed error for a request that was tried ``attempts`` times without an answer."""
    kind = type(error)
    if kind not in (PayPalRateLimited, PayPalServerError, PayPalTimeout, PayPalUnreachable):
        kind = PayPalServerError if (error.http_status or 0) >= 500 else type(error)
    extra: dict[str, Any] = {"attempts": attempts}
    if retry_after is not None:
        extra["retry_after"] = retry_after
    return kind(
        f"{error.message} (after {attempts} attempt{'s' if attempts != 1 else ''})",
        **_error_fields(error),
        **extra,
    )


__all__ = [
    "LIVE_BASE_URL",
    "SANDBOX_BASE_URL",
    "BatchStatus",
    "PayPalClient",
    "RetryPolicy",
]
