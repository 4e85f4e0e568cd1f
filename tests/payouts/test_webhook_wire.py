"""PayPal's webhook shapes as we read them: the published event names, the envelope, the
transmission headers, and what our receiver refuses before asking PayPal anything."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from parrain.payouts.errors import PayPalWebhookInvalid
from parrain.payouts.providers.paypal_webhook_wire import (
    TransmissionHeaders,
    WebhookEvent,
    WebhookEventType,
)
from parrain.payouts.webhooks import MAX_EVENT_BYTES, parse_event

HEADERS = {
    "paypal-transmission-id": "69cd13f0-d67a-11e5-baa3-778b53f4ae55",
    "paypal-transmission-time": "2016-02-18T20:01:35Z",
    "paypal-transmission-sig": "+lmI95Jx3Y9nhR5SJWlHVIWpg4AgFk7n9bCHSRxbrd8A9zrhdu2rMyFrmz==",
    "paypal-cert-url": "https://api.paypal.com/v1/notifications/certs/CERT-360caa42",
    "paypal-auth-algo": "SHA256withRSA",
}


def _event(event_type: str, resource_type: str, resource: dict[str, object]) -> dict[str, object]:
    return {
        "id": "WH-68L35871MU875914X-8DM79009TB591331B",
        "create_time": "2016-06-06T03:44:51Z",
        "resource_type": resource_type,
        "event_type": event_type,
        "summary": "A payout item has succeeded",
        "resource": resource,
        "links": [
            {
                "href": "https://api.paypal.com/v1/notifications/webhooks-events/WH-1",
                "rel": "self",
                "method": "GET",
                "encType": "application/json",
            }
        ],
    }


def test_the_published_payouts_event_names() -> None:
    assert sorted(WebhookEventType) == [
        "PAYMENT.PAYOUTS-ITEM.BLOCKED",
        "PAYMENT.PAYOUTS-ITEM.CANCELED",
        "PAYMENT.PAYOUTS-ITEM.DENIED",
        "PAYMENT.PAYOUTS-ITEM.FAILED",
        "PAYMENT.PAYOUTS-ITEM.HELD",
        "PAYMENT.PAYOUTS-ITEM.REFUNDED",
        "PAYMENT.PAYOUTS-ITEM.RETURNED",
        "PAYMENT.PAYOUTS-ITEM.SUCCEEDED",
        "PAYMENT.PAYOUTS-ITEM.UNCLAIMED",
        "PAYMENT.PAYOUTSBATCH.DENIED",
        "PAYMENT.PAYOUTSBATCH.PROCESSING",
        "PAYMENT.PAYOUTSBATCH.SUCCESS",
    ]


def test_an_event_names_what_to_read_again() -> None:
    item = WebhookEvent.model_validate(
        _event(
            "PAYMENT.PAYOUTS-ITEM.SUCCEEDED",
            "payouts_item",
            {"payout_item_id": "AYNYWNCHBD8KS", "payout_batch_id": "Q8B9WFS7ZZJ4Q"},
        )
    )
    assert (item.is_item_event, item.payout_batch_id(), item.payout_item_id()) == (
        True,
        "Q8B9WFS7ZZJ4Q",
        "AYNYWNCHBD8KS",
    )
    assert item.links[0].model_extra == {"encType": "application/json"}
    batch = WebhookEvent.model_validate(
        _event(
            "PAYMENT.PAYOUTSBATCH.SUCCESS",
            "payouts",
            {
                "batch_header": {
                    "payout_batch_id": "Q8B9WFS7ZZJ4Q",
                    "sender_batch_header": {"sender_batch_id": "parrain-1"},
                }
            },
        )
    )
    assert (batch.is_batch_event, batch.payout_batch_id(), batch.sender_batch_id()) == (
        True,
        "Q8B9WFS7ZZJ4Q",
        "parrain-1",
    )
    assert batch.payout_item_id() is None
    other = WebhookEvent.model_validate(_event("PAYMENT.CAPTURE.COMPLETED", "capture", {}))
    assert not other.is_item_event
    assert not other.is_batch_event


def test_transmission_headers_are_read_in_any_case_and_all_needed() -> None:
    headers = TransmissionHeaders.from_headers(HEADERS)
    assert headers.to_headers()["PAYPAL-TRANSMISSION-SIG"].startswith("+lmI95")
    upper = {name.upper(): value for name, value in HEADERS.items()}
    assert TransmissionHeaders.from_headers(upper) == headers
    for missing in HEADERS:
        with pytest.raises(ValidationError):
            TransmissionHeaders.from_headers({k: v for k, v in HEADERS.items() if k != missing})
    with pytest.raises(ValidationError):
        TransmissionHeaders.from_headers({**HEADERS, "paypal-auth-algo": "SHA256 with RSA"})


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"\xff\xfe",
        b"[]",
        json.dumps({"id": "WH-1", "event_type": "PAYMENT.PAYOUTSBATCH.SUCCESS"}).encode(),
        json.dumps(
            {**_event("PAYMENT.PAYOUTSBATCH.SUCCESS", "payouts", {}), "resource": "x"}
        ).encode(),
        b" " * (MAX_EVENT_BYTES + 1),
    ],
)
def test_a_body_that_is_not_a_paypal_event_is_refused(body: bytes) -> None:
    with pytest.raises(PayPalWebhookInvalid) as refused:
        parse_event(body)
    assert (refused.value.code, refused.value.status_code) == ("paypal_webhook_invalid", 400)


def test_the_event_is_kept_as_received_for_the_verification() -> None:
    event = _event("PAYMENT.PAYOUTS-ITEM.SUCCEEDED", "payouts_item", {"payout_batch_id": "B"})
    event["an_unknown_field"] = {"z": 1, "a": [2]}
    document, parsed = parse_event(json.dumps(event).encode())
    assert document == event
    assert list(document) == list(event)
    assert parsed.event_type == "PAYMENT.PAYOUTS-ITEM.SUCCEEDED"
