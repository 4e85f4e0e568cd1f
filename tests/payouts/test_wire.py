"""The wire format without a server: amounts, statuses, PayPal's error document."""

from __future__ import annotations

import hashlib
import re
from importlib import resources
from typing import Any

import pytest

from parrain.kit.errors import InvalidAmount
from parrain.kit.money import Money
from parrain.kit.pii import Pii
from parrain.payouts.errors import (
    DuplicateBatch,
    PayPalAuthError,
    PayPalBusinessError,
    PayPalNotFound,
    PayPalRateLimited,
    PayPalServerError,
    PayPalValidationError,
)
from parrain.payouts.providers.paypal_wire import (
    ItemStatus,
    PayoutItemRequest,
    amount_from_wire,
    amount_to_wire,
    error_from_response,
    load_spec,
)
from tests.payouts.batches import batch, item
from tests.payouts.spec_check import create_request_validator


@pytest.mark.parametrize(
    ("minor", "currency", "text"),
    [
        (2000, "GBP", "20.00"),
        (5, "EUR", "0.05"),
        (500, "JPY", "500"),
        (1500, "BHD", "1.500"),
        (1, "KWD", "0.001"),
        (123456789012, "USD", "1234567890.12"),
    ],
)
def test_amounts_go_out_with_the_currencys_exponent_and_come_back_exactly(
    minor: int, currency: str, text: str
) -> None:
    wire = amount_to_wire(Money(minor, currency))
    assert wire == {"currency": currency, "value": text}
    assert amount_from_wire(wire) == Money(minor, currency)


@pytest.mark.parametrize("amount", [20.0, 20, "20.00", None])
def test_a_payout_amount_that_is_not_money_is_refused(amount: Any) -> None:
    with pytest.raises(InvalidAmount):
        PayoutItemRequest(receiver=Pii("a@example.com"), amount=amount, sender_item_id="i")
    with pytest.raises(InvalidAmount):
        amount_to_wire(amount)


def test_money_itself_refuses_floats() -> None:
    with pytest.raises(InvalidAmount):
        Money(20.0, "GBP")  # type: ignore[arg-type]


@pytest.mark.parametrize("value", ["1e3", "20.5", "-1.00", " 20.00", "20.00.0", "NaN"])
def test_amounts_from_paypal_must_be_plain_decimals_with_the_currencys_places(value: str) -> None:
    with pytest.raises(InvalidAmount):
        amount_from_wire({"currency": "JPY" if value == "20.5" else "GBP", "value": value})


def test_the_request_body_validates_against_the_spec_and_reveals_the_receiver_only_there() -> None:
    request = batch(
        "batch-1", item("ann@example.com", 2000, "GBP"), item("bo@example.com", 500, "JPY")
    )
    body = request.to_wire()
    create_request_validator().validate(body)
    assert body["items"][1]["amount"] == {"currency": "JPY", "value": "500"}
    assert body["items"][0]["receiver"] == "ann@example.com"
    assert "ann@example.com" not in repr(request)


def test_item_statuses_are_the_published_enum() -> None:
    published = load_spec()["components"]["schemas"]["transaction_enum"]["enum"]
    assert [status.value for status in ItemStatus] == published
    assert {s for s in ItemStatus if not s.is_settled} == {ItemStatus.PENDING, ItemStatus.ONHOLD}


def _error(name: str, message: str, **more: Any) -> dict[str, Any]:
    return {"name": name, "message": message, "debug_id": "8a1c2d3e4f5a6", **more}


def test_a_validation_error_keeps_name_debug_id_and_fields_but_never_a_value() -> None:
    error = error_from_response(
        400,
        _error(
            "VALIDATION_ERROR",
            "Invalid request - see details",
            details=[
                {
                    "field": "items[0].receiver",
                    "value": "ann@example.com",
                    "location": "body",
                    "issue": "Receiver is invalid or does not match with type",
                }
            ],
        ),
    )
    assert isinstance(error, PayPalValidationError)
    assert error.code == "paypal_validation_error"
    assert (error.name, error.debug_id, error.http_status) == (
        "VALIDATION_ERROR",
        "8a1c2d3e4f5a6",
        400,
    )
    assert error.error_details == (
        {
            "field": "items[0].receiver",
            "location": "body",
            "issue": "Receiver is invalid or does not match with type",
        },
    )
    assert "ann@example.com" not in str(error.to_dict())


def test_a_duplicate_batch_carries_the_original_batch_id_from_the_hateoas_link() -> None:
    error = error_from_response(
        400,
        _error(
            "USER_BUSINESS_ERROR",
            "Duplicate batch request",
            links=[
                {"href": "https://paypal.test/v1/payments/payouts/5UXD2E8A7EBQJ", "rel": "self"}
            ],
        ),
        sender_batch_id="batch-7",
    )
    assert isinstance(error, DuplicateBatch)
    assert (error.code, error.sender_batch_id, error.payout_batch_id) == (
        "paypal_duplicate_batch",
        "batch-7",
        "5UXD2E8A7EBQJ",
    )


def test_other_business_errors_are_not_duplicates() -> None:
    error = error_from_response(400, _error("USER_BUSINESS_ERROR", "User business error."))
    assert type(error) is PayPalBusinessError
    assert error_from_response(422, _error("INSUFFICIENT_FUNDS", "No money")).code == (
        "paypal_business_error"
    )


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (401, _error("AUTHENTICATION_FAILURE", "Authentication failed"), PayPalAuthError),
        (
            401,
            {"error": "invalid_client", "error_description": "Client Authentication failed"},
            PayPalAuthError,
        ),
        (403, _error("NOT_AUTHORIZED", "Authorization failed"), PayPalAuthError),
        (
            404,
            _error("RESOURCE_NOT_FOUND", "The specified resource does not exist."),
            PayPalNotFound,
        ),
        (429, _error("RATE_LIMIT_REACHED", "Too many requests."), PayPalRateLimited),
        (
            500,
            _error("INTERNAL_SERVER_ERROR", "An internal server error has occurred."),
            PayPalServerError,
        ),
        (503, "<html>unavailable</html>", PayPalServerError),
    ],
)
def test_error_shapes_become_typed_errors_with_stable_codes(
    status: int, body: Any, kind: type[Exception]
) -> None:
    error = error_from_response(status, body)
    assert type(error) is kind
    assert error.http_status == status


def test_the_vendored_spec_is_the_unmodified_file_its_notice_names() -> None:
    folder = resources.files("parrain.payouts.providers").joinpath("paypal_spec")
    notice = folder.joinpath("NOTICE").read_text("utf-8")
    named = re.search(r"SHA-256 ([0-9a-f]{64})", notice)
    assert named is not None
    spec = folder.joinpath("payments_payouts_batch_v1.json").read_bytes()
    assert hashlib.sha256(spec).hexdigest() == named.group(1)
    assert "Apache License" in folder.joinpath("LICENSE").read_text("utf-8")
    assert load_spec()["openapi"] == "3.0.3"
