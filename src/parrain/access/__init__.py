"""Access: the API keys the marketplace's backend presents to call parrain.

An operator creates a key with ``parrain apikey create`` (a name and its scopes: ``events``,
``consent``); the whole key ``prn_<prefix>_<secret>`` is shown once and only the SHA-256 of
its secret is stored. On each request the web edge (``parrain.web.deps.require_api_key``)
reads the key from ``Authorization: Bearer`` or ``X-Parrain-Api-Key``, and
:func:`parrain.access.service.authenticate` finds the row by its public prefix, compares the
secret's hash in constant time, refuses a revoked key or a missing scope, and notes when the
key was last used (at most once a minute). The edge keeps what it learnt for a few seconds
in an in-process cache, so most requests never reach the database; a revocation takes
effect within that time. Creating and revoking a key are written to the audit chain; the
secret never is. See docs/adr/0009-integration-api-keys.md.
"""
