"""Outbox errors, each with a stable code."""

from __future__ import annotations

from parrain.errors import InvalidInput


class InvalidOutboxMessage(InvalidInput):
    code = "invalid_outbox_message"


class InvalidWebhookSignature(InvalidInput):
    """A webhook whose signature header is missing, malformed, too old or wrong."""

    code = "invalid_webhook_signature"
    status_code = 401
