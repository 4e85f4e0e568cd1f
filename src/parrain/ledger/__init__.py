"""Double-entry ledger with TigerBeetle's semantics on SQL.

Data flow: a caller builds :class:`~parrain.ledger.postings.TransferRequest` values; the
service locks the accounts involved (sorted ids), loads what the requests refer to, hands
everything to the pure :func:`~parrain.ledger.postings.plan_transfers`, and persists the plan
it returns. ``postings.py`` holds every rule and needs no database to test.
"""
