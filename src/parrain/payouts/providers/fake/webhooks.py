"""The fake's webhook notifications, sent and verified as PayPal does it.

- :class:`WebhookSigner` signs each transmission (``PAYPAL-TRANSMISSION-ID``, ``-TIME``,
  ``-SIG``, ``PAYPAL-CERT-URL``, ``PAYPAL-AUTH-ALGO``) and remembers what it signed; the fake's
  ``POST /v1/notifications/verify-webhook-signature`` answers SUCCESS only for an event it
  sent, to that webhook id, with exactly those headers, and FAILURE for anything else (a forged
  event, a changed amount, a replayed header on another event). The signature is an
  HMAC-SHA256 under a key the fake draws at start (PayPal's is RSA with its certificate): no
  receiver checks it itself, PayPal's verification API does.
- :class:`WebhookSender` posts the events from a background thread, best effort: a few
  attempts with a growing wait (PayPal retries for days), each recorded as a
  :class:`Delivery`; tests wait on :meth:`WebhookSender.wait_for` (a condition, not a sleep).
  Every few tenths of a second (and when told to) it asks the fake for the events that
  became due (items that reached a final status, batches that completed). ``resend`` sends an
  event again in a new transmission, as PayPal's "resend event" does: a duplicate.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import secrets
import threading
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final
from uuid import uuid4

import httpx
from pydantic import ValidationError

from parrain.kit.clock import Clock
from parrain.logging import get_logger
from parrain.payouts.providers.paypal_webhook_wire import (
    TransmissionHeaders,
    VerificationStatus,
    VerifyWebhookSignature,
)

DEFAULT_WEBHOOK_ID: Final = "1FAKEWEBHOOK00001"
#: What PayPal sends in ``PAYPAL-AUTH-ALGO``; the fake's signature is an HMAC (see above).
AUTH_ALGO: Final = "SHA256withRSA"
EVENTS_PATH: Final = "/v1/notifications/webhooks-events"
CERTS_PATH: Final = "/v1/notifications/certs"

_log = get_logger(__name__)

#: The fake's events as (event dict) lists, handed to the sender when they become due.
EventSource = Callable[[], list[dict[str, Any]]]


def _canonical(event: Any) -> bytes:
    return json.dumps(event, sort_keys=True, separators=(",", ":")).encode()


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class Transmission:
    """One signed sending of an event: the body and the PayPal headers that go with it."""

    event_id: str
    event_type: str
    body: bytes
    headers: TransmissionHeaders


@dataclass(frozen=True, slots=True)
class Delivery:
    """What came of one transmission: the receiver's last HTTP status (None: no answer)."""

    transmission_id: str
    event_id: str
    event_type: str
    attempts: int
    status: int | None

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class WebhookSigner:
    """Signs transmissions and answers PayPal's verification for what it signed."""

    def __init__(self, *, webhook_id: str, clock: Clock, cert_url: str) -> None:
        self.webhook_id = webhook_id
        self._clock = clock
        self._cert_url = cert_url
        self._key = secrets.token_bytes(32)
        self._lock = threading.Lock()
        #: transmission id → (the headers sent, the webhook id, the event as sent).
        self._signed: dict[str, tuple[TransmissionHeaders, str, bytes]] = {}

    def sign(self, event: dict[str, Any]) -> Transmission:
        body = json.dumps(event, separators=(",", ":")).encode()
        transmission_id = str(uuid4())
        transmission_time = stamp(self._clock.now())
        message = f"{transmission_id}|{transmission_time}|{self.webhook_id}|{zlib.crc32(body)}"
        signature = hmac.new(self._key, message.encode(), hashlib.sha256).hexdigest()
        headers = TransmissionHeaders(
            transmission_id=transmission_id,
            transmission_time=transmission_time,
            transmission_sig=signature,
            cert_url=self._cert_url,
            auth_algo=AUTH_ALGO,
        )
        with self._lock:
            self._signed[transmission_id] = (headers, self.webhook_id, _canonical(event))
        return Transmission(str(event["id"]), str(event["event_type"]), body, headers)

    def verify(self, request: VerifyWebhookSignature) -> VerificationStatus:
        """SUCCESS only for an event this fake sent, unchanged, with exactly its headers,
        to its webhook id."""
        with self._lock:
            signed = self._signed.get(request.transmission_id)
        if signed is None:
            return VerificationStatus.FAILURE
        headers, webhook_id, event = signed
        given = TransmissionHeaders(
            transmission_id=request.transmission_id,
            transmission_time=request.transmission_time,
            transmission_sig=request.transmission_sig,
            cert_url=request.cert_url,
            auth_algo=request.auth_algo,
        )
        same = (
            hmac.compare_digest(given.transmission_sig, headers.transmission_sig)
            and given == headers
            and request.webhook_id == webhook_id
            and hmac.compare_digest(_canonical(request.webhook_event), event)
        )
        return VerificationStatus.SUCCESS if same else VerificationStatus.FAILURE


def parse_verification(body: Any) -> VerifyWebhookSignature | list[dict[str, str]]:
    """The verification request, or PayPal-style ``details[]`` saying what is wrong."""
    try:
        return VerifyWebhookSignature.model_validate(body)
    except ValidationError as error:
        return [
            {
                "field": ".".join(str(part) for part in problem["loc"]) or "body",
                "location": "body",
                "issue": problem["msg"][:200],
            }
            for problem in error.errors()[:20]
        ]


class WebhookSender:
    """Posts the fake's events to ``url`` from its own thread (see the module's doc)."""

    def __init__(
        self,
        *,
        url: str,
        signer: WebhookSigner,
        source: EventSource,
        attempts: int = 4,
        retry_delay: float = 0.2,
        scan_interval: float = 0.1,
        timeout: float = 10.0,
    ) -> None:
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        self.url = url
        self._signer = signer
        self._source = source
        self._attempts = attempts
        self._retry_delay = retry_delay
        self._scan_interval = scan_interval
        self._timeout = timeout
        self._condition = threading.Condition()
        self._queue: deque[Transmission] = deque()
        self._events: dict[str, dict[str, Any]] = {}
        self._deliveries: list[Delivery] = []
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> WebhookSender:
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="fake-paypal-webhooks", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=self._timeout + 5)
            self._thread = None

    # --- what the fake and the tests call --------------------------------------------------

    def scan_now(self) -> None:
        """Look for due events at once (after the fake's clock moved)."""
        self._wake.set()

    def send(self, event: dict[str, Any]) -> Transmission:
        """Sign ``event`` and queue it."""
        transmission = self._signer.sign(event)
        with self._condition:
            self._events[transmission.event_id] = event
            self._queue.append(transmission)
        self._wake.set()
        return transmission

    def resend(self, event_id: str) -> Transmission:
        """Send an event already sent once more, in a new transmission: a duplicate."""
        with self._condition:
            event = self._events.get(event_id)
        if event is None:
            raise KeyError(f"no event {event_id} was sent")
        return self.send(event)

    def event(self, event_id: str) -> dict[str, Any]:
        """An event as it was sent."""
        with self._condition:
            return json.loads(json.dumps(self._events[event_id]))  # type: ignore[no-any-return]

    @property
    def deliveries(self) -> list[Delivery]:
        with self._condition:
            return list(self._deliveries)

    def wait_for(
        self, condition: Callable[[list[Delivery]], bool], *, timeout: float = 20.0
    ) -> list[Delivery]:
        """Block until ``condition(deliveries)`` holds (or ``timeout`` passes) and return
        the deliveries; the caller asserts on them."""
        with self._condition:
            self._condition.wait_for(lambda: condition(list(self._deliveries)), timeout=timeout)
            return list(self._deliveries)

    # --- the thread ------------------------------------------------------------------------

    def _run(self) -> None:
        with httpx.Client(timeout=self._timeout) as http:
            while not self._stopping.is_set():
                for event in self._safe_scan():
                    self.send(event)
                while (transmission := self._next()) is not None:
                    self._deliver(http, transmission)
                    if self._stopping.is_set():
                        return
                self._wake.wait(self._scan_interval)
                self._wake.clear()

    def _safe_scan(self) -> list[dict[str, Any]]:
        try:
            return self._source()
        except Exception:  # a bug in the fake must not kill its sender
            _log.exception("fake_paypal.webhook_scan_failed")
            return []

    def _next(self) -> Transmission | None:
        with self._condition:
            return self._queue.popleft() if self._queue else None

    def _deliver(self, http: httpx.Client, transmission: Transmission) -> None:
        status: int | None = None
        attempts = 0
        for attempts in itertools.count(1):
            try:
                response = http.post(
                    self.url,
                    content=transmission.body,
                    headers={
                        "Content-Type": "application/json",
                        **transmission.headers.to_headers(),
                    },
                )
                status = response.status_code
            except httpx.HTTPError:
                status = None
            if (status is not None and 200 <= status < 300) or attempts >= self._attempts:
                break
            if self._stopping.wait(self._retry_delay * 2 ** (attempts - 1)):
                break
        with self._condition:
            self._deliveries.append(
                Delivery(
                    transmission_id=transmission.headers.transmission_id,
                    event_id=transmission.event_id,
                    event_type=transmission.event_type,
                    attempts=attempts,
                    status=status,
                )
            )
            self._condition.notify_all()
        _log.info(
            "fake_paypal.webhook_sent",
            event_type=transmission.event_type,
            attempts=attempts,
            status=status,
        )
