"""PayPal's notifications, end to end over real HTTP: the fake notifies our app (served by
uvicorn on loopback), our app has PayPal verify each one and reads again what it names.
Items settle without the worker's poll; forged notifications and duplicates change nothing;
a payout PayPal takes back after its success returns the money exactly once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from parrain.audit import service as audit
from parrain.config import CryptoSettings, PayoutSettings, Settings
from parrain.db.session import Database
from parrain.kit.clock import FrozenClock
from parrain.ledger import service as ledger
from parrain.outbox import repository as outbox
from parrain.outbox.repository import by_topic
from parrain.payouts import repository, service
from parrain.payouts.providers.fake import Endpoint, FakePayPal, Fault
from parrain.payouts.providers.paypal import PayPalClient
from parrain.payouts.providers.paypal_webhook_wire import WebhookEventType
from parrain.payouts.providers.paypal_wire import ItemStatus
from parrain.web.app import create_app
from tests.payouts.batches import batch, item
from tests.payouts.conftest import RecordedSleeps, impatient_client
from tests.payouts.spec_check import SpecRecorder
from tests.payouts.test_worker_support import (
    CASH,
    assert_paid_once,
    items,
    paid_in_ledger,
    receiver,
    reconciled,
    run,
    set_receiver,
    settings_for,
    winners,
)
from tests.payouts.webhook_support import delivered, loopback_socket, served
from tests.referrals.programme import KEYS, Programme

WEBHOOK_PATH = "/v1/paypal/webhooks"
ITEM_SUCCEEDED = WebhookEventType.ITEM_SUCCEEDED.value
BATCH_SUCCESS = WebhookEventType.BATCH_SUCCESS.value


@dataclass
class Stack:
    fake: FakePayPal
    app_url: str
    client: PayPalClient  # the worker's
    settings: PayoutSettings


@pytest.fixture
def stack(database: Database, clock: FrozenClock, spec_recorder: SpecRecorder) -> Iterator[Stack]:
    sock = loopback_socket()
    app_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    fake = FakePayPal(
        clock=clock,
        on_response=spec_recorder,
        webhook_url=app_url + WEBHOOK_PATH,
        hang_seconds=2.0,
    )
    with fake:
        payouts = settings_for(fake, paypal_webhook_id=fake.webhook_id)
        settings = Settings(crypto=CryptoSettings(allow_development_keys=True), payouts=payouts)
        app = create_app(database=database, clock=clock, settings=settings, member_keys=KEYS)
        with (
            served(app, sock),
            PayPalClient(
                base_url=fake.base_url,
                client_id="fake-client-id",
                client_secret="fake-client-secret",
                clock=clock,
                sleep=lambda _: None,
                timeout=15.0,
            ) as client,
        ):
            yield Stack(fake=fake, app_url=app_url, client=client, settings=payouts)
    assert spec_recorder.problems == [], "the fake sent answers that PayPal's spec refuses"


def _state(database: Database) -> dict[str, Any]:
    """Everything a notification could change: balances, transfers, audit, outbox, items."""

    def work(session: Session) -> dict[str, Any]:
        return {
            "accounts": sorted(
                (ref or "", a.debits_pending, a.debits_posted, a.credits_pending, a.credits_posted)
                for a, ref in ledger.list_accounts(session=session)
            ),
            "audit": audit.verify_chain(session=session).entries,
            "outbox": outbox.counts(session),
            "items": [
                (i.id, i.status, i.paypal_status, i.void_reason) for i in _all_items(session)
            ],
            "payable": len(repository.payable_parts(session)),
        }

    return database.read(work)


def _all_items(session: Session) -> list[Any]:
    return [i for b in repository.list_batches(session) for i in repository.items_of(session, b.id)]


def _post(stack: Stack, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(
        stack.app_url + WEBHOOK_PATH,
        content=body,
        headers={"Content-Type": "application/json", **headers},
        timeout=15,
    )


def _paid_through_webhooks(
    database: Database, clock: FrozenClock, stack: Stack, count: int, programme: Programme
) -> list[Any]:
    people = winners(database, clock, count, programme=programme)
    first = run(database, clock, stack.client, stack.settings)
    assert (first.submitted, first.paid, first.waiting) == (1, 0, count)
    stack.fake.advance(timedelta(seconds=10))  # PayPal settles the items and says so
    delivered(stack.fake, count, event_types=[ITEM_SUCCEEDED])
    delivered(stack.fake, 1, event_types=[BATCH_SUCCESS])
    return people


def test_items_settle_on_paypals_notifications_without_the_workers_poll(
    database: Database, clock: FrozenClock, stack: Stack
) -> None:
    programme = Programme.launch(database, clock, friends_needed=1, budget_minor=1_000_000)
    people = _paid_through_webhooks(database, clock, stack, 3, programme)

    assert all(d.delivered and d.attempts == 1 for d in stack.fake.webhooks.deliveries)
    assert [i.status for i in items(database)] == ["paid"] * 3
    assert_paid_once(database, stack.fake, people)
    assert programme.balances()["cash"][1] == 3 * CASH  # cash payable debited, posted
    batch_row = database.read(lambda s: repository.list_batches(s))[0]
    assert (batch_row.status, batch_row.paypal_status) == ("settled", "SUCCESS")
    # The worker's next round has nothing left to poll.
    again = run(database, clock, stack.client, stack.settings)
    assert (again.paid, again.waiting, again.in_flight_batches) == (0, 0, 0)
    assert reconciled(database, stack.client).differences == []


def test_forged_or_malformed_notifications_change_nothing_and_get_stable_codes(
    database: Database, clock: FrozenClock, stack: Stack
) -> None:
    people = winners(database, clock, 2)
    run(database, clock, stack.client, stack.settings)  # sent; PENDING at PayPal
    before = _state(database)
    [pending] = database.read(lambda s: repository.list_batches(s))
    forged_event = {
        "id": "WH-FORGED-1",
        "event_version": "1.0",
        "create_time": "2026-03-10T09:00:00Z",
        "resource_type": "payouts_item",
        "event_type": ITEM_SUCCEEDED,
        "summary": "A payout item has succeeded",
        "resource": {
            "payout_batch_id": pending.payout_batch_id,
            "payout_item_id": "FAKEI00000002",
            "transaction_status": "SUCCESS",
            "payout_item": {"amount": {"currency": "GBP", "value": "20.00"}},
        },
    }
    forged_headers = {
        "PAYPAL-TRANSMISSION-ID": "0b4e3c1a-5a8e-11f0-9f4c-forged",
        "PAYPAL-TRANSMISSION-TIME": "2026-03-10T09:00:00Z",
        "PAYPAL-TRANSMISSION-SIG": "Zm9yZ2Vk",
        "PAYPAL-CERT-URL": "https://api.paypal.com/v1/notifications/certs/CERT-1",
        "PAYPAL-AUTH-ALGO": "SHA256withRSA",
    }
    body = json.dumps(forged_event).encode()

    forged = _post(stack, body, forged_headers)
    assert forged.status_code == 400
    assert forged.json()["error"]["code"] == "paypal_webhook_unverified"
    assert "www-authenticate" not in forged.headers
    no_headers = _post(stack, body, {})
    assert (no_headers.status_code, no_headers.json()["error"]["code"]) == (
        400,
        "paypal_webhook_unverified",
    )
    for bad in (b"{not json", b"[1, 2]", json.dumps({"id": "WH-1"}).encode()):
        answer = _post(stack, bad, forged_headers)
        assert (answer.status_code, answer.json()["error"]["code"]) == (
            400,
            "paypal_webhook_invalid",
        )
    assert _state(database) == before
    assert [i.status for i in items(database)] == ["pending", "pending"]

    # A real notification whose body was changed on the way is refused too.
    stack.fake.advance(timedelta(seconds=10))
    [real] = delivered(stack.fake, 1, event_types=[BATCH_SUCCESS])
    original = stack.fake.webhooks.event(real.event_id)
    delivered(stack.fake, 2, event_types=[ITEM_SUCCEEDED])
    paid_state = _state(database)
    tampered = dict(original, summary="Payouts batch completed, twice")
    answer = _post(stack, json.dumps(tampered).encode(), forged_headers)
    assert answer.json()["error"]["code"] == "paypal_webhook_unverified"
    assert _state(database) == paid_state
    assert_paid_once(database, stack.fake, people)


def test_a_duplicate_notification_changes_nothing(
    database: Database, clock: FrozenClock, stack: Stack
) -> None:
    programme = Programme.launch(database, clock, friends_needed=1, budget_minor=1_000_000)
    _paid_through_webhooks(database, clock, stack, 2, programme)
    before = _state(database)
    deliveries = stack.fake.webhooks.deliveries
    for each in deliveries:
        stack.fake.webhooks.resend(each.event_id)  # PayPal's resend: new transmissions
    again = delivered(stack.fake, 2 * len(deliveries))
    assert all(d.delivered for d in again)
    assert _state(database) == before
    assert reconciled(database, stack.client).differences == []


def test_a_payout_taken_back_after_its_success_returns_the_money_exactly_once(
    database: Database, clock: FrozenClock, stack: Stack
) -> None:
    programme = Programme.launch(database, clock, friends_needed=1, budget_minor=1_000_000)
    ann, bob, cy = _paid_through_webhooks(database, clock, stack, 3, programme)
    assert programme.balances()["cash"] == (0, 3 * CASH, 0, 3 * CASH)
    [ann_paypal_item] = stack.fake.item_ids(receiver(ann.name))
    [bob_paypal_item] = stack.fake.item_ids(receiver(bob.name))

    stack.fake.reverse(ann_paypal_item, ItemStatus.REVERSED)
    stack.fake.reverse(bob_paypal_item, ItemStatus.REFUNDED)
    taken_back = delivered(
        stack.fake,
        2,
        event_types=["PAYMENT.PAYOUTS-ITEM.REVERSED", WebhookEventType.ITEM_REFUNDED.value],
    )
    assert all(d.delivered for d in taken_back)

    by_member = {i.member_id: i for i in items(database)}
    assert (by_member[ann.member_id].status, by_member[ann.member_id].void_reason) == (
        "paid",
        "reversed",
    )
    assert by_member[bob.member_id].void_reason == "refunded"
    assert by_member[cy.member_id].void_reason is None
    # The money came back: settlement → cash payable, once per part.
    assert programme.balances()["cash"] == (0, 3 * CASH, 0, 5 * CASH)

    def settlement(session: Session) -> tuple[int, int]:
        account = ledger.find_account(
            session=session, reference=service.settlement_reference("GBP")
        )
        assert account is not None
        return account.debits_posted, account.credits_posted

    assert database.read(settlement) == (2 * CASH, 3 * CASH)
    attention = database.read(lambda s: by_topic(s, service.ATTENTION_TOPIC))
    assert sorted((m.payload["member_id"], m.payload["status"]) for m in attention) == sorted(
        [(str(ann.member_id), "REVERSED"), (str(bob.member_id), "REFUNDED")]
    )
    entries = database.read(
        lambda s: audit.list_entries(
            session=s, subject=f"payout_item:{by_member[ann.member_id].id}"
        )
    )
    assert [e.action for e in entries] == ["payout.item_taken_back"]
    report = reconciled(database, stack.client)
    assert report.differences == []
    [gbp] = report.totals
    assert (gbp.paid_items, gbp.paid_minor, gbp.taken_back_items, gbp.taken_back_minor) == (
        1,
        CASH,
        2,
        2 * CASH,
    )

    # Replays change nothing: the same notifications again, and a worker round.
    before = _state(database)
    for each in taken_back:
        stack.fake.webhooks.resend(each.event_id)
    delivered(
        stack.fake,
        4,
        event_types=["PAYMENT.PAYOUTS-ITEM.REVERSED", WebhookEventType.ITEM_REFUNDED.value],
    )
    assert _state(database) == before
    assert before["payable"] == 2  # their parts are payable again...
    waiting = run(database, clock, stack.client, stack.settings)
    assert (waiting.awaiting_receiver_fix, waiting.prepared_items) == (2, 0)  # ...once fixed

    fixed = {ann.name: receiver(ann.name, 1), bob.name: receiver(bob.name, 1)}
    for person in (ann, bob):
        set_receiver(database, clock, person.member_id, fixed[person.name])
    round_ = run(database, clock, stack.client, stack.settings)
    assert round_.prepared_items == 2
    stack.fake.advance(timedelta(seconds=10))
    delivered(stack.fake, 5, event_types=[ITEM_SUCCEEDED])
    assert stack.fake.paid_total(fixed[ann.name]) == {"GBP": CASH}
    assert stack.fake.paid_total(fixed[bob.name]) == {"GBP": CASH}
    assert paid_in_ledger(database) == 5 * CASH  # credits: 3 first, 2 again; 2 came back
    assert database.read(settlement) == (2 * CASH, 5 * CASH)
    assert programme.balances()["cash"] == (0, 5 * CASH, 0, 5 * CASH)
    final = reconciled(database, stack.client)
    assert final.differences == []
    assert database.read(lambda s: ledger.find_discrepancies(session=s)) == []


def test_a_notification_about_a_batch_we_do_not_know_is_acknowledged(
    database: Database, clock: FrozenClock, stack: Stack
) -> None:
    before = _state(database)
    stack.client.create_batch(batch("someone-else", item("zed@example.com")))
    stack.fake.advance(timedelta(seconds=10))
    deliveries = delivered(stack.fake, 2)
    assert all(d.status == 200 for d in deliveries)
    assert _state(database) == before


def test_notifications_are_refused_while_paypal_is_not_configured(
    database: Database, clock: FrozenClock
) -> None:
    app = create_app(
        database=database,
        clock=clock,
        settings=Settings(crypto=CryptoSettings(allow_development_keys=True)),
        member_keys=KEYS,
    )
    event = {
        "id": "WH-1",
        "create_time": "2026-03-10T09:00:00Z",
        "resource_type": "payouts",
        "event_type": BATCH_SUCCESS,
        "resource": {},
    }
    with TestClient(app) as client:
        answer = client.post(WEBHOOK_PATH, json=event)
        schema = client.get("/openapi.json").json()
    assert (answer.status_code, answer.json()["error"]["code"]) == (
        503,
        "paypal_webhooks_not_configured",
    )
    operation = schema["paths"][WEBHOOK_PATH]["post"]
    assert operation["operationId"] == "receive_paypal_webhook"
    assert {"200", "400", "502", "503"} <= set(operation["responses"])
    assert operation["responses"]["400"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorResponse"
    }
    assert "security" not in operation
    headers = {p["name"].upper() for p in operation["parameters"] if p["in"] == "header"}
    assert headers == {
        "PAYPAL-TRANSMISSION-ID",
        "PAYPAL-TRANSMISSION-TIME",
        "PAYPAL-TRANSMISSION-SIG",
        "PAYPAL-CERT-URL",
        "PAYPAL-AUTH-ALGO",
    }
    body_schema = operation["requestBody"]["content"]["application/json"]["schema"]
    assert {"id", "event_type", "resource"} <= set(body_schema["required"])
    assert body_schema["properties"]["links"]["items"]["required"] == ["href", "rel"]
    assert "$defs" not in json.dumps(operation)


def test_a_batch_whose_answer_was_lost_is_recovered_from_paypals_batch_notification(
    database: Database, clock: FrozenClock, stack: Stack, sleeps: RecordedSleeps
) -> None:
    people = winners(database, clock, 2)
    # Accepted by PayPal, the answer dropped; the retry hangs: PayPal's id is unknown here.
    stack.fake.inject(Endpoint.CREATE_BATCH, Fault.DROP_RESPONSE, times=1)
    stack.fake.inject(Endpoint.CREATE_BATCH, Fault.HANG, times=1)
    with impatient_client(stack.fake, clock, sleeps, max_attempts=2) as impatient:
        first = run(database, clock, impatient, stack.settings)
    assert (first.submitted, first.submit_failures) == (0, 1)
    [prepared] = database.read(lambda s: repository.list_batches(s))
    assert (prepared.status, prepared.payout_batch_id) == ("prepared", None)

    stack.fake.advance(timedelta(seconds=10))
    delivered(stack.fake, 1, event_types=[BATCH_SUCCESS])
    [recovered] = database.read(lambda s: repository.list_batches(s))
    assert recovered.status == "settled"
    assert recovered.payout_batch_id is not None
    assert_paid_once(database, stack.fake, people)
    assert stack.fake.batch_count == 1
    again = run(database, clock, stack.client, stack.settings)
    assert (again.submitted, again.paid, again.in_flight_batches) == (0, 0, 0)
    assert reconciled(database, stack.client).differences == []
