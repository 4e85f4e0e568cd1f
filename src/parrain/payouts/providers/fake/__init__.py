"""A fake of PayPal Payouts v1: a real HTTP server following PayPal's published API, for
development (``parrain fake-paypal``), the demo and the tests.

- :mod:`.server`: the server, its endpoints, outcomes and injected faults (ADR 16);
- :mod:`.validation`: what it checks in a request, as PayPal does;
- :mod:`.webhooks`: the notifications it sends and the signature verification it answers
  (ADR 19).
"""

from parrain.payouts.providers.fake.server import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    UNCLAIMED_RETURN_AFTER,
    Endpoint,
    FakePayment,
    FakePayPal,
    Fault,
    OutcomeRule,
    SentResponse,
)
from parrain.payouts.providers.fake.webhooks import DEFAULT_WEBHOOK_ID, Delivery

__all__ = [
    "DEFAULT_CLIENT_ID",
    "DEFAULT_CLIENT_SECRET",
    "DEFAULT_WEBHOOK_ID",
    "UNCLAIMED_RETURN_AFTER",
    "Delivery",
    "Endpoint",
    "FakePayPal",
    "FakePayment",
    "Fault",
    "OutcomeRule",
    "SentResponse",
]
