"""The fake's notifications and its signature verification, seen from the outside: what a
receiver gets over HTTP, checked against PayPal's Webhooks API shapes (transcribed by hand,
as they are not in the vendored Payouts description)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from parrain.kit.clock import FrozenClock
from parrain.payouts.providers.fake import Endpoint, FakePayPal, OutcomeRule
from parrain.payouts.providers.paypal import PayPalClient
from parrain.payouts.providers.paypal_webhook_wire import (
    TransmissionHeaders,
    VerificationStatus,
    VerifyWebhookSignature,
    WebhookEventType,
)
from parrain.payouts.providers.paypal_wire import ItemStatus
from tests.payouts.batches import batch, item
from tests.payouts.spec_check import (
    EVENT_SCHEMA,
    VERIFY_REQUEST_SCHEMA,
    SpecRecorder,
    hand_problems,
)
from tests.payouts.webhook_support import Receiver

AUTH = ("fake-client-id", "fake-client-secret")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver().running() as running:
        yield running


@pytest.fixture
def notifying(
    clock: FrozenClock, spec_recorder: SpecRecorder, receiver: Receiver
) -> Iterator[FakePayPal]:
    paypal = FakePayPal(clock=clock, on_response=spec_recorder, webhook_url=receiver.url)
    with paypal:
        yield paypal
    assert spec_recorder.problems == [], "the fake sent answers that PayPal's spec refuses"


class WireRecorder(httpx.HTTPTransport):
    """httpx's transport, keeping each request body it sends to the verification API."""

    def __init__(self) -> None:
        super().__init__()
        self.verify_bodies: list[Any] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/notifications/verify-webhook-signature":
            self.verify_bodies.append(json.loads(request.read()))
        return super().handle_request(request)


@pytest.fixture
def wire() -> WireRecorder:
    return WireRecorder()


@pytest.fixture
def paypal(notifying: FakePayPal, clock: FrozenClock, wire: WireRecorder) -> Iterator[PayPalClient]:
    with PayPalClient(
        base_url=notifying.base_url,
        client_id=AUTH[0],
        client_secret=AUTH[1],
        clock=clock,
        sleep=lambda _: None,
        transport=wire,
    ) as client:
        yield client


def _events(receiver: Receiver) -> list[dict[str, Any]]:
    return [json.loads(r.body) for r in receiver.received]


def _verification(sent: Any, **changes: Any) -> VerifyWebhookSignature:
    headers = TransmissionHeaders.from_headers(sent.headers)
    request = VerifyWebhookSignature.of(
        headers,
        webhook_id=changes.pop("webhook_id", "1FAKEWEBHOOK00001"),
        event=json.loads(sent.body),
    )
    return request.model_copy(update=changes)


def test_final_statuses_and_completed_batches_are_notified_with_paypals_names_and_headers(
    notifying: FakePayPal, paypal: PayPalClient, receiver: Receiver
) -> None:
    notifying.outcomes.append(OutcomeRule("^bob@", ItemStatus.UNCLAIMED))
    notifying.outcomes.append(OutcomeRule("^cy@", ItemStatus.FAILED))
    created = paypal.create_batch(
        batch("b-1", item("ann@example.com"), item("bob@example.com"), item("cy@example.com"))
    )

    notifying.advance(timedelta(seconds=10))
    deliveries = notifying.webhooks.wait_for(lambda d: len(d) >= 4)
    assert all(d.delivered and d.attempts == 1 for d in deliveries)
    events = _events(receiver)
    assert sorted(e["event_type"] for e in events) == sorted(
        [
            WebhookEventType.ITEM_SUCCEEDED,
            WebhookEventType.ITEM_UNCLAIMED,
            WebhookEventType.ITEM_FAILED,
            WebhookEventType.BATCH_SUCCESS,
        ]
    )
    for event in events:
        assert hand_problems(EVENT_SCHEMA, event) is None, event
        assert event["event_version"] == "1.0"
    [batch_event] = [e for e in events if e["resource_type"] == "payouts"]
    header = batch_event["resource"]["batch_header"]
    assert header["payout_batch_id"] == created.payout_batch_id
    assert header["sender_batch_header"]["sender_batch_id"] == "b-1"
    items = [e for e in events if e["resource_type"] == "payouts_item"]
    assert {e["resource"]["payout_batch_id"] for e in items} == {created.payout_batch_id}
    assert {link["rel"] for link in items[0]["resource"]["links"]} == {"item", "batch"}
    for sent in receiver.received:
        headers = {name.upper(): value for name, value in sent.headers.items()}
        assert headers["PAYPAL-AUTH-ALGO"] == "SHA256withRSA"
        assert headers["PAYPAL-CERT-URL"].startswith(notifying.base_url)
        assert TransmissionHeaders.from_headers(sent.headers).transmission_id

    # Nothing new happened: nothing more is sent. Thirty days on, the unclaimed item returns.
    notifying.advance(timedelta(days=31))
    later = notifying.webhooks.wait_for(lambda d: len(d) >= 5)
    assert [d.event_type for d in later[4:]] == [WebhookEventType.ITEM_RETURNED]


def test_verification_says_success_only_for_what_the_fake_sent_exactly(
    notifying: FakePayPal, paypal: PayPalClient, receiver: Receiver, wire: WireRecorder
) -> None:
    paypal.create_batch(batch("b-2", item("ann@example.com")))
    notifying.advance(timedelta(seconds=10))
    notifying.webhooks.wait_for(lambda d: len(d) >= 2)
    first, second = receiver.received[:2]

    assert paypal.verify_webhook_signature(_verification(first)) is VerificationStatus.SUCCESS
    changed_event = json.loads(first.body)
    changed_event["resource"]["transaction_status"] = "SUCCESS"
    changed_event["summary"] = "forged"
    forged = VerifyWebhookSignature.of(
        TransmissionHeaders.from_headers(first.headers),
        webhook_id=notifying.webhook_id,
        event=changed_event,
    )
    other_headers = VerifyWebhookSignature.of(
        TransmissionHeaders.from_headers(second.headers),
        webhook_id=notifying.webhook_id,
        event=json.loads(first.body),
    )
    for request in (
        forged,
        other_headers,
        _verification(first, webhook_id="SOMEONEELSE1"),
        _verification(first, transmission_sig="bm90IGEgc2lnbmF0dXJl"),
        _verification(first, transmission_time="2026-03-02T09:00:01Z"),
        _verification(first, transmission_id="f00d-not-sent"),
    ):
        assert paypal.verify_webhook_signature(request) is VerificationStatus.FAILURE

    # What our client put on the wire is PayPal's verify_webhook_signature.
    assert len(wire.verify_bodies) == 7
    for body in wire.verify_bodies:
        assert hand_problems(VERIFY_REQUEST_SCHEMA, body) is None, body
    assert wire.verify_bodies[0]["webhook_event"] == json.loads(first.body)


def test_the_verification_api_refuses_a_malformed_request_and_needs_a_token(
    notifying: FakePayPal, spec_recorder: SpecRecorder
) -> None:
    path = "/v1/notifications/verify-webhook-signature"
    with httpx.Client(base_url=notifying.base_url, timeout=5) as raw:
        assert raw.post(path, json={}).status_code == 401
        token = raw.post(
            "/v1/oauth2/token", data={"grant_type": "client_credentials"}, auth=AUTH
        ).json()["access_token"]
        raw.headers["Authorization"] = f"Bearer {token}"
        answer = raw.post(path, json={"auth_algo": "SHA256withRSA", "webhook_id": "a-b"})
    assert answer.status_code == 400
    assert answer.json()["name"] == "VALIDATION_ERROR"
    fields = {detail["field"] for detail in answer.json()["details"]}
    assert {"cert_url", "transmission_id", "webhook_id", "webhook_event"} <= fields
    assert notifying.requests(Endpoint.VERIFY_WEBHOOK) == 2
    assert spec_recorder.checked[(Endpoint.VERIFY_WEBHOOK, 400)] == 1


def test_a_receiver_that_fails_is_tried_again_a_few_times(
    clock: FrozenClock, spec_recorder: SpecRecorder
) -> None:
    with (
        Receiver(statuses=[500, 503]).running() as flaky,
        Receiver(statuses=[500] * 10).running() as down,
    ):
        for target, expected in ((flaky, (3, 200)), (down, (4, 500))):
            fake = FakePayPal(
                clock=clock,
                on_response=spec_recorder,
                webhook_url=target.url,
                settle_after=timedelta(0),
            )
            with (
                fake,
                PayPalClient(
                    base_url=fake.base_url, client_id=AUTH[0], client_secret=AUTH[1], clock=clock
                ) as client,
            ):
                client.create_batch(batch("b-3", item("ann@example.com")))
                fake.webhooks.scan_now()
                first = fake.webhooks.wait_for(lambda d: len(d) >= 1)[0]
            assert (first.attempts, first.status) == expected
            assert len({r.headers["PAYPAL-TRANSMISSION-ID"] for r in target.received[:3]}) == 1
    assert spec_recorder.problems == []


def test_a_resent_event_is_the_same_event_in_a_new_transmission(
    notifying: FakePayPal, paypal: PayPalClient, receiver: Receiver
) -> None:
    paypal.create_batch(batch("b-4", item("ann@example.com")))
    notifying.advance(timedelta(seconds=10))
    [first, _] = notifying.webhooks.wait_for(lambda d: len(d) >= 2)
    again = notifying.webhooks.resend(first.event_id)
    notifying.webhooks.wait_for(lambda d: len(d) >= 3)
    original, copy = receiver.received[0], receiver.received[2]
    assert json.loads(copy.body) == json.loads(original.body)
    assert again.headers.transmission_id != first.transmission_id
    assert paypal.verify_webhook_signature(_verification(copy)) is VerificationStatus.SUCCESS


def test_a_paid_item_taken_back_is_notified_and_reads_so(
    notifying: FakePayPal, paypal: PayPalClient, receiver: Receiver
) -> None:
    created = paypal.create_batch(batch("b-5", item("ann@example.com"), item("bob@example.com")))
    notifying.advance(timedelta(seconds=10))
    notifying.webhooks.wait_for(lambda d: len(d) >= 3)
    ann, bob = notifying.item_ids("ann@example.com")[0], notifying.item_ids("bob@example.com")[0]
    notifying.reverse(ann)
    notifying.reverse(bob, ItemStatus.REFUNDED)
    notifying.webhooks.wait_for(lambda d: len(d) >= 5)
    names = [json.loads(r.body)["event_type"] for r in receiver.received[3:]]
    # PayPal publishes no REVERSED event: the fake names it like the others.
    assert sorted(names) == ["PAYMENT.PAYOUTS-ITEM.REFUNDED", "PAYMENT.PAYOUTS-ITEM.REVERSED"]
    assert paypal.get_item(ann).transaction_status is ItemStatus.REVERSED
    assert paypal.get_item(bob).transaction_status is ItemStatus.REFUNDED
    assert notifying.paid_total("ann@example.com") == {}
    statuses = {
        i.payout_item_id: i.transaction_status
        for i in paypal.get_batch(created.payout_batch_id).items
    }
    assert statuses == {ann: ItemStatus.REVERSED, bob: ItemStatus.REFUNDED}
    with pytest.raises(ValueError, match="was not paid"):
        notifying.reverse(ann)
