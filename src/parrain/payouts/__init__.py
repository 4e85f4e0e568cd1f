"""Payouts: paying members' cash rewards to PayPal (PayPal Payouts v1).

``providers/paypal.py`` is the HTTP client of PayPal's published API (OAuth2 client
credentials, batches of up to 15,000 items, paging, typed errors, bounded retries);
``providers/fake.py`` is a real HTTP server that follows the same API for development, the
demo and the tests; ``providers/paypal_wire.py`` holds what both share: the API's statuses,
amounts as decimal strings and the error document. ``providers/paypal_spec/`` ships PayPal's
own OpenAPI description, unmodified. See docs/adr/0016-paypal-client-and-fake.md.
"""
