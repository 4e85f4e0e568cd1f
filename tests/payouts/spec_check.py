"""Check bodies against PayPal's OpenAPI description (the copy shipped in the package).

:class:`SpecRecorder` is the fake's ``on_response`` hook in every test of this folder: each
response body the fake sends is validated against the response schema the spec gives its
operation and status (or the operation's ``default``), and the conftest fails the test if one
does not validate. The token endpoint is not in PayPal's Payouts description; its answers are
checked against the OAuth2 (RFC 6749 §5.1) fields instead.

Nor are the webhooks: the event envelope and the ``verify-webhook-signature`` request and
response are checked against schemas transcribed by hand below from PayPal's Webhooks API
description (``notifications_webhooks_v1``: ``event``, ``verify_webhook_signature``,
``verify_webhook_signature_response``; ``link_description`` for the links).
"""

from __future__ import annotations

import functools
import threading
from typing import Any

from jsonschema.exceptions import best_match
from openapi_schema_validator import OAS30ReadValidator, OAS30WriteValidator, oas30_format_checker

from parrain.payouts.providers.fake import Endpoint, SentResponse
from parrain.payouts.providers.paypal_wire import load_spec

_OPERATIONS = {
    Endpoint.CREATE_BATCH: ("/v1/payments/payouts", "post"),
    Endpoint.GET_BATCH: ("/v1/payments/payouts/{id}", "get"),
    Endpoint.GET_ITEM: ("/v1/payments/payouts-item/{payout_item_id}", "get"),
}

_TOKEN_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["access_token", "token_type", "expires_in"],
    "properties": {
        "access_token": {"type": "string", "minLength": 1},
        "token_type": {"type": "string", "enum": ["Bearer"]},
        "expires_in": {"type": "integer", "minimum": 1},
        "scope": {"type": "string"},
        "app_id": {"type": "string"},
        "nonce": {"type": "string"},
    },
}
_TOKEN_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string"}, "error_description": {"type": "string"}},
}


_LINK_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["href", "rel"],
    "properties": {
        "href": {"type": "string"},
        "rel": {"type": "string"},
        "method": {
            "type": "string",
            "enum": ["GET", "POST", "PUT", "DELETE", "HEAD", "CONNECT", "OPTIONS", "PATCH"],
        },
    },
}
#: ``event``, with what PayPal's Payouts events always carry made required.
EVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["id", "create_time", "resource_type", "event_type", "summary", "resource"],
    "properties": {
        "id": {"type": "string"},
        "create_time": {"type": "string", "format": "date-time"},
        "resource_type": {"type": "string", "enum": ["payouts", "payouts_item"]},
        "event_version": {"type": "string", "pattern": "^([0-9]+.[0-9]+)$"},
        "event_type": {"type": "string"},
        "summary": {"type": "string"},
        "resource_version": {"type": "string", "pattern": "^([0-9]+.[0-9]+)$"},
        "resource": {"type": "object", "additionalProperties": True},
        "links": {"type": "array", "items": _LINK_SCHEMA},
    },
}
_TOKEN_PATTERN = r"^(?!\d+$)\w+\S+"
VERIFY_REQUEST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": [
        "auth_algo",
        "cert_url",
        "transmission_id",
        "transmission_sig",
        "transmission_time",
        "webhook_id",
        "webhook_event",
    ],
    "properties": {
        "auth_algo": {"type": "string", "maxLength": 100, "pattern": "^[a-zA-Z0-9]+$"},
        "cert_url": {"type": "string", "maxLength": 500, "format": "uri"},
        "transmission_id": {"type": "string", "maxLength": 50, "pattern": _TOKEN_PATTERN},
        "transmission_sig": {"type": "string", "maxLength": 500, "pattern": _TOKEN_PATTERN},
        "transmission_time": {"type": "string", "maxLength": 100, "format": "date-time"},
        "webhook_id": {"type": "string", "maxLength": 50, "pattern": "^[a-zA-Z0-9]+$"},
        "webhook_event": EVENT_SCHEMA,
    },
}
VERIFY_RESPONSE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["verification_status"],
    "properties": {"verification_status": {"type": "string", "enum": ["SUCCESS", "FAILURE"]}},
}


def hand_problems(schema: dict[str, Any], body: Any) -> str | None:
    """Why ``body`` does not validate against one of the hand-transcribed schemas, or None."""
    validator = OAS30ReadValidator(schema, format_checker=oas30_format_checker)
    error = best_match(validator.iter_errors(body))
    if error is None:
        return None
    where = "/".join(str(part) for part in error.absolute_path)
    return f"at /{where}: {error.message[:300]}"


def _with_components(schema: dict[str, Any]) -> dict[str, Any]:
    """A schema whose ``#/components/...`` references resolve inside PayPal's spec."""
    return {**schema, "components": load_spec()["components"]}


@functools.cache
def response_validator(endpoint: Endpoint, status: int) -> OAS30ReadValidator:
    if endpoint is Endpoint.TOKEN:
        schema = _TOKEN_SCHEMA if status == 200 else _TOKEN_ERROR_SCHEMA
        return OAS30ReadValidator(schema, format_checker=oas30_format_checker)
    if endpoint is Endpoint.VERIFY_WEBHOOK:
        if status == 200:
            return OAS30ReadValidator(VERIFY_RESPONSE_SCHEMA, format_checker=oas30_format_checker)
        endpoint = Endpoint.CREATE_BATCH  # its ``default``: PayPal's common error document
        status = 0
    path, method = _OPERATIONS[endpoint]
    responses = load_spec()["paths"][path][method]["responses"]
    response = responses.get(str(status), responses["default"])
    schema = response["content"]["application/json"]["schema"]
    return OAS30ReadValidator(_with_components(schema), format_checker=oas30_format_checker)


@functools.cache
def create_request_validator() -> OAS30WriteValidator:
    operation = load_spec()["paths"]["/v1/payments/payouts"]["post"]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    return OAS30WriteValidator(_with_components(schema), format_checker=oas30_format_checker)


def problems_of(endpoint: Endpoint, status: int, body: Any) -> str | None:
    """Why ``body`` does not validate, or None."""
    error = best_match(response_validator(endpoint, status).iter_errors(body))
    if error is None:
        return None
    where = "/".join(str(part) for part in error.absolute_path)
    return f"{endpoint.value} {status} at /{where}: {error.message[:300]}"


class SpecRecorder:
    """The fake's ``on_response``: validates every body sent, keeps the problems."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.checked: dict[tuple[Endpoint, int], int] = {}
        self.problems: list[str] = []

    def __call__(self, sent: SentResponse) -> None:
        problem = problems_of(sent.operation, sent.status, sent.body)
        with self._lock:
            key = (sent.operation, sent.status)
            self.checked[key] = self.checked.get(key, 0) + 1
            if problem is not None:
                self.problems.append(problem)

    @property
    def count(self) -> int:
        with self._lock:
            return sum(self.checked.values())
