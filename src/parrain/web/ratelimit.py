"""Rate limits of the public endpoints (the sponsorship link, sign-in), per client address.

Each limit is a GCRA (generic cell rate algorithm, the leaky bucket as a meter): a client may
make ``burst`` requests at once, then one every ``60 / per_minute`` seconds; a request over
the limit is refused with HTTP 429 ``rate_limited`` and ``Retry-After``, and refused requests
do not count. One timestamp per client is all the state.

The state is in the process's memory: with N API processes a client gets at most N times
the limit, which is what these limits are for (a script hammering sign-in or inflating
clicks), not a quota. Sign-in has its own per-account lockout in the database (ADR 20).
Client addresses are personal data: the table holds an HMAC of each address under a key
drawn at start-up, never the address, and keeps at most ``max_clients`` entries (the least
recently seen are forgotten first).
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from fastapi import Request

from parrain.errors import ParrainError

#: Entries kept per limit: about 100 bytes each.
MAX_CLIENTS = 100_000


class RateLimited(ParrainError):
    """Too many requests from this client: wait ``retry_after`` seconds."""

    code = "rate_limited"
    status_code = 429

    def __init__(self, message: str, /, *, retry_after: int) -> None:
        super().__init__(message, retry_after_seconds=retry_after)
        self.retry_after = retry_after


class RateLimiter:
    """``per_minute`` requests a minute per client on average, ``burst`` at once."""

    def __init__(
        self,
        *,
        per_minute: int,
        burst: int,
        max_clients: int = MAX_CLIENTS,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        if per_minute < 1 or burst < 1:
            raise ValueError("a rate limit needs per_minute >= 1 and burst >= 1")
        self.per_minute = per_minute
        self.burst = burst
        self._interval = 60.0 / per_minute
        self._tolerance = self._interval * (burst - 1)
        self._max_clients = max_clients
        self._now = now
        self._next: OrderedDict[bytes, float] = OrderedDict()
        self._lock = threading.Lock()
        self._key = secrets.token_bytes(32)

    def client(self, address: str) -> bytes:
        """The key a client address is counted under (an HMAC: the address is not kept)."""
        return hmac.new(self._key, address.encode(), hashlib.sha256).digest()[:16]

    def wait(self, client: bytes) -> float:
        """0 when this request is allowed (and counted), else the seconds until one is."""
        now = self._now()
        with self._lock:
            theoretical = max(self._next.get(client, now), now)
            early = theoretical - now - self._tolerance
            if early > 0:
                return early
            self._next[client] = theoretical + self._interval
            self._next.move_to_end(client)
            while len(self._next) > self._max_clients:
                self._next.popitem(last=False)
            return 0.0

    def check(self, address: str) -> None:
        """Raise :class:`RateLimited` when ``address`` is over the limit."""
        early = self.wait(self.client(address))
        if early > 0:
            raise RateLimited(
                "too many requests from this address: wait a moment and try again",
                retry_after=max(1, math.ceil(early)),
            )


def client_address(request: Request) -> str:
    """The client's address as the server sees it (behind a proxy, run uvicorn with
    ``--proxy-headers`` and ``--forwarded-allow-ips`` so this is the visitor's)."""
    return request.client.host if request.client is not None else "unknown"


def limit(name: str) -> Callable[[Request], None]:
    """A route dependency applying the app's rate limit ``name`` (see ``create_app``)."""

    def check(request: Request) -> None:
        limiter: RateLimiter = request.app.state.rate_limits[name]
        limiter.check(client_address(request))

    check.__name__ = f"rate_limit_{name}"
    return check
