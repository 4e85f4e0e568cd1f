"""The outbox: messages for integrations, written in the same transaction as the change they
announce, delivered afterwards by webhook (at least once, signed, retried with backoff).

A change and its message commit together or not at all, so an integration never hears of a
change that was rolled back, and never misses one that was committed (a withdrawn consent's
takedown, say). Delivery happens outside any transaction, by the worker.
"""
