"""The outbox: messages commit with their change, are delivered by signed webhook to a real
HTTP server on loopback, retried with backoff when it fails, and sent once by concurrent
workers when it works."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.orm import Session

from parrain.db.session import Database
from parrain.kit.clock import FrozenClock
from parrain.outbox import service
from parrain.outbox.delivery import (
    MESSAGE_ID_HEADER,
    SIGNATURE_HEADER,
    Endpoint,
    deliver_due,
    sign,
    verify_signature,
)
from parrain.outbox.errors import InvalidOutboxMessage, InvalidWebhookSignature
from parrain.outbox.models import OutboxMessage
from tests.webhooks import Receiver, webhook_receiver

SECRET = b"a-shared-webhook-secret-of-32-bytes!"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with webhook_receiver() as state:
        yield state


def _enqueue(database: Database, clock: FrozenClock, count: int, topic: str = "test.hello") -> None:
    def work(session: Session) -> None:
        for index in range(count):
            service.enqueue(session=session, topic=topic, payload={"n": index}, clock=clock)

    database.run(work)


def _endpoint(receiver: Receiver) -> Endpoint:
    return Endpoint(url=receiver.url, secret=SECRET, timeout_seconds=2.0)


def test_a_message_commits_with_its_change_or_not_at_all(
    database: Database, clock: FrozenClock
) -> None:
    def change_then_fail(session: Session) -> None:
        service.enqueue(session=session, topic="consent.withdrawn", payload={}, clock=clock)
        raise RuntimeError("the change failed")

    with pytest.raises(RuntimeError):
        database.run(change_then_fail)
    assert database.read(lambda s: service.counts(session=s)) == (0, 0)
    _enqueue(database, clock, 1)
    assert database.read(lambda s: service.counts(session=s)) == (1, 0)


def test_messages_are_delivered_signed_once_then_never_again(
    database: Database, clock: FrozenClock, receiver: Receiver
) -> None:
    _enqueue(database, clock, 3)
    with httpx.Client() as client:
        report = deliver_due(
            database=database, clock=clock, endpoint=_endpoint(receiver), client=client
        )
        assert (report.delivered, report.failed) == (3, 0)
        again = deliver_due(
            database=database, clock=clock, endpoint=_endpoint(receiver), client=client
        )
    assert (again.delivered, again.failed) == (0, 0)
    assert len(receiver.received) == 3
    now = int(clock.now().timestamp())
    numbers = []
    for headers, body in receiver.received:
        verify_signature(SECRET, headers[SIGNATURE_HEADER], body, now=now)
        document = json.loads(body)
        assert document["id"] == headers[MESSAGE_ID_HEADER]
        assert document["topic"] == "test.hello"
        numbers.append(document["data"]["n"])
    assert sorted(numbers) == [0, 1, 2]
    assert database.read(lambda s: service.counts(session=s)) == (0, 3)


def test_a_failing_endpoint_gets_retries_with_backoff_and_nothing_is_lost(
    database: Database, clock: FrozenClock, receiver: Receiver
) -> None:
    _enqueue(database, clock, 1)
    endpoint = _endpoint(receiver)
    receiver.status = 500
    with httpx.Client() as client:
        first = deliver_due(database=database, clock=clock, endpoint=endpoint, client=client)
        assert (first.delivered, first.failed) == (0, 1)
        message = database.read(lambda s: s.query(OutboxMessage).one())
        assert message.attempts == 1
        assert message.last_error == "HTTP 500"
        assert message.available_at == clock.now() + timedelta(seconds=10)
        # Not due yet: nothing is sent.
        assert deliver_due(database=database, clock=clock, endpoint=endpoint, client=client) == (
            first.__class__(delivered=0, failed=0)
        )
        clock.advance(timedelta(seconds=10))
        second = deliver_due(database=database, clock=clock, endpoint=endpoint, client=client)
        assert second.failed == 1
        message = database.read(lambda s: s.query(OutboxMessage).one())
        assert message.available_at == clock.now() + timedelta(seconds=20)  # doubled
        receiver.status = 200
        clock.advance(timedelta(seconds=20))
        third = deliver_due(database=database, clock=clock, endpoint=endpoint, client=client)
    assert third.delivered == 1
    assert len(receiver.received) == 3
    ids = {json.loads(body)["id"] for _, body in receiver.received}
    assert len(ids) == 1, "every attempt carries the same message id"
    assert [json.loads(body)["attempt"] for _, body in receiver.received] == [1, 2, 3]


def test_an_unreachable_endpoint_is_a_recorded_failure(
    database: Database, clock: FrozenClock
) -> None:
    _enqueue(database, clock, 1)
    closed = Endpoint(url="http://127.0.0.1:9/nothing-listens", secret=SECRET, timeout_seconds=1)
    with httpx.Client() as client:
        report = deliver_due(database=database, clock=clock, endpoint=closed, client=client)
    assert (report.delivered, report.failed) == (0, 1)
    message = database.read(lambda s: s.query(OutboxMessage).one())
    assert message.delivered_at is None
    assert message.last_error == "ConnectError"


def test_concurrent_workers_send_each_message_once(
    database: Database, clock: FrozenClock, receiver: Receiver
) -> None:
    _enqueue(database, clock, 60)
    endpoint = _endpoint(receiver)
    start = threading.Barrier(4)
    errors: list[BaseException] = []

    def worker() -> None:
        start.wait()
        try:
            with httpx.Client() as client:
                deliver_due(
                    database=database, clock=clock, endpoint=endpoint, client=client, limit=5
                )
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    ids = [json.loads(body)["id"] for _, body in receiver.received]
    assert len(ids) == 60
    assert len(set(ids)) == 60
    assert database.read(lambda s: service.counts(session=s)) == (0, 60)


def test_signatures_refuse_a_changed_body_an_old_time_and_garbage() -> None:
    body = b'{"id":"1"}'
    header = sign(SECRET, 1_800_000_000, body)
    verify_signature(SECRET, header, body, now=1_800_000_100)
    with pytest.raises(InvalidWebhookSignature, match="does not match"):
        verify_signature(SECRET, header, body + b" ", now=1_800_000_100)
    with pytest.raises(InvalidWebhookSignature, match="too old"):
        verify_signature(SECRET, header, body, now=1_800_001_000)
    with pytest.raises(InvalidWebhookSignature, match="malformed"):
        verify_signature(SECRET, "v1=abc", body, now=1_800_000_000)
    with pytest.raises(InvalidWebhookSignature, match="no signature"):
        verify_signature(SECRET, None, body, now=1_800_000_000)


def test_bad_messages_are_refused(database: Database, clock: FrozenClock) -> None:
    def enqueue(topic: str, payload: dict[str, Any]) -> None:
        database.run(
            lambda s: service.enqueue(session=s, topic=topic, payload=payload, clock=clock)
        )

    with pytest.raises(InvalidOutboxMessage, match="topic"):
        enqueue("Consent Withdrawn", {})
    with pytest.raises(InvalidOutboxMessage, match="JSON"):
        enqueue("consent.withdrawn", {"when": object()})
    with pytest.raises(InvalidOutboxMessage, match="at most"):
        enqueue("consent.withdrawn", {"blob": "x" * 20_000})
    assert database.read(lambda s: service.counts(session=s)) == (0, 0)
