"""Payouts: paying members' cash rewards to PayPal (PayPal Payouts v1).

``providers/paypal.py`` is the HTTP client of PayPal's published API (OAuth2 client
credentials, batches of up to 15,000 items, paging, typed errors, bounded retries, the
webhook signature verification); ``providers/fake/`` is a real HTTP server that follows the
same API for development, the demo and the tests, and notifies a webhook as PayPal does;
``providers/paypal_wire.py`` holds what both share: the API's statuses, amounts as decimal
strings and the error document; ``providers/paypal_webhook_wire.py`` the webhook events and
the verification request. ``providers/paypal_spec/`` ships PayPal's own OpenAPI description,
unmodified. ``service.py`` and ``worker.py`` pay members' cash in batches, ``webhooks.py``
receives PayPal's notifications, ``reconcile.py`` compares our books with PayPal's. See
docs/adr/0016-paypal-client-and-fake.md, 0018-payout-worker.md and 0019-paypal-webhooks.md.
"""
