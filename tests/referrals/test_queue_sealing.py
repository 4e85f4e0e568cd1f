"""How queued events are sealed (ADRs 28, 29): the events sealed together share one data
key, wrapped once; each body opens only as its own event; a drain unwraps each key once."""

from __future__ import annotations

import asyncio
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from parrain.config import CryptoSettings, ReferralSettings, Settings
from parrain.db.session import Database
from parrain.kit.clock import FrozenClock
from parrain.kit.crypto import encrypt_field, new_data_key, unwrap_data_key, wrap_data_key
from parrain.kit.errors import DecryptionFailed
from parrain.referrals import queue as event_queue
from parrain.referrals.events import canonical_body, canonical_hash
from parrain.referrals.models import ReferralEvent
from parrain.referrals.queue import open_event, seal_events
from parrain.web import queued_events
from parrain.web.app import create_app
from parrain.worker.jobs import DrainRound, drain_queued_events
from tests.referrals.programme import EVENT, KEYS, Programme
from tests.referrals.test_queue import drain_all, invitations, queue, row
from tests.web.helpers import api_key_headers
from tests.web.test_queued_events_api import ASYNC, _queued, _signup, _with


def _sealed(programme: Programme, names: list[str]) -> list[event_queue.SealedEvent]:
    ann = programme.enrol(f"ann-{names[0]}")
    bodies = [body for pair in invitations(programme, ann, names) for body in pair]
    return seal_events(events=[EVENT.validate_python(body) for body in bodies], keys=KEYS)


def _counting_unwraps(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Each call of the queue's ``unwrap_data_key`` from now on, by subject."""
    calls: list[str] = []

    def counting(*args: Any, **kwargs: Any) -> bytes:
        calls.append(kwargs["subject"])
        return unwrap_data_key(*args, **kwargs)

    monkeypatch.setattr(event_queue, "unwrap_data_key", counting)
    return calls


def test_events_sealed_in_one_call_share_one_wrapped_key_and_two_calls_do_not(
    database: Database, clock: FrozenClock
) -> None:
    programme = Programme.launch(database, clock)
    first = _sealed(programme, ["zoe", "yan"])
    second = _sealed(programme, ["xia"])

    assert len(first) == 4
    assert len({sealed.key for sealed in first}) == 1
    assert len({sealed.key for sealed in second}) == 1
    assert first[0].key != second[0].key
    # One key, but each body sealed apart: no two bodies alike.
    assert len({sealed.body for sealed in first}) == 4


def test_a_sealed_body_opens_only_as_its_own_event(database: Database, clock: FrozenClock) -> None:
    programme = Programme.launch(database, clock)
    install, signup, *_ = _sealed(programme, ["zoe"])
    assert install.key == signup.key
    opened_keys: dict[bytes, bytes] = {}

    for sealed in (install, signup):
        opened = open_event(
            event_id=sealed.id, key=sealed.key, body=sealed.body, keys=KEYS, opened_keys=opened_keys
        )
        assert opened.id == sealed.id
    assert list(opened_keys) == [install.key]
    # The signup's body moved to the install's row: same key, another id. Refused whether
    # the key is unwrapped again or taken from the cache.
    for cache in (None, opened_keys):
        with pytest.raises(DecryptionFailed):
            open_event(
                event_id=install.id, key=signup.key, body=signup.body, keys=KEYS, opened_keys=cache
            )
    tampered = signup.key[:-1] + bytes([signup.key[-1] ^ 0x01])
    with pytest.raises(DecryptionFailed):
        open_event(event_id=signup.id, key=tampered, body=signup.body, keys=KEYS)
    with pytest.raises(DecryptionFailed):
        open_event(event_id=signup.id, key=tampered, body=signup.body, keys=KEYS, opened_keys={})


def test_a_drain_unwraps_each_key_once_for_all_the_events_sealed_with_it(
    database: Database, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    programme = Programme.launch(database, clock)
    ann = programme.enrol("ann")
    pairs = invitations(programme, ann, ["zoe", "yan", "xia"])
    for install, signup in pairs:  # three calls: three keys, two events each
        queue(programme, [install, signup])
    ids = [body["id"] for pair in pairs for body in pair]
    assert len({bytes(row(programme, event_id).queued_key or b"") for event_id in ids}) == 3
    unwraps = _counting_unwraps(monkeypatch)

    assert drain_all(programme) == DrainRound(applied=6, failed=0, waiting=0, parked=0)

    assert unwraps == ["queued-events"] * 3
    assert programme.funnel().signups == 3
    assert programme.progress(ann).friends_counted == 3


def _sealed_one_key_per_event(bodies: list[dict[str, Any]]) -> list[event_queue.SealedEvent]:
    """Sealed as before ADR 29: a data key per event, wrapped bound to the event's id."""
    sealed = []
    for event in (EVENT.validate_python(body) for body in bodies):
        canonical = canonical_body(event)
        data_key = new_data_key()
        wrapped = wrap_data_key(KEYS.keyring, data_key, subject=f"event:{event.id}")
        sealed.append(
            event_queue.SealedEvent(
                id=event.id,
                type=event.type,
                digest=canonical_hash(canonical, KEYS),
                key=wrapped.to_bytes(),
                body=encrypt_field(data_key, canonical, context=f"event:{event.id}:body"),
            )
        )
    return sealed


def test_events_queued_with_a_key_each_before_keys_were_shared_are_still_applied(
    database: Database, clock: FrozenClock
) -> None:
    programme = Programme.launch(database, clock)
    ann = programme.enrol("ann")
    [(install, signup), (later_install, later_signup)] = invitations(programme, ann, ["zoe", "yan"])
    earlier = _sealed_one_key_per_event([install, signup])
    database.run(
        lambda session: event_queue.queue_events(session=session, events=earlier, clock=clock)
    )
    queue(programme, [later_install, later_signup])

    assert drain_all(programme) == DrainRound(applied=4, failed=0, waiting=0, parked=0)
    assert programme.funnel().signups == 2
    # Bound to its own event all the same: another event's id does not open it.
    with pytest.raises(DecryptionFailed):
        open_event(event_id=install["id"], key=earlier[1].key, body=earlier[1].body, keys=KEYS)


def test_single_events_queued_in_one_group_share_one_key_and_are_all_applied(
    database: Database, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(
        crypto=CryptoSettings(allow_development_keys=True),
        referrals=ReferralSettings(drain_in_api=False),
    )
    app = create_app(database=database, clock=clock, settings=settings)
    key = api_key_headers(database, clock, "events")
    # A flush gathers for as long as requests keep arriving, not up to a deadline that a
    # slow machine could reach between two of them.
    monkeypatch.setattr(queued_events, "GATHER_SECONDS", 5.0)
    at = clock.now().isoformat()
    bodies = [_signup(f"signup-friend{i}", f"friend{i}", at) for i in range(30)]

    async def send_all() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            return await asyncio.gather(
                *(http.post("/v1/events", json=body, headers=_with(key, ASYNC)) for body in bodies)
            )

    with TestClient(app) as client:
        assert client.get("/v1/events/nothing-yet", headers=key).status_code == 404  # key cached
        with ThreadPoolExecutor(1) as thread:
            responses = thread.submit(asyncio.run, send_all()).result(timeout=60)
        for body, response in zip(bodies, responses, strict=True):
            assert response.status_code == 202, response.text
            assert response.json() == _queued(body["id"])

        sizes = app.state.queued_events.group_sizes
        assert sum(sizes) == len(bodies)
        assert max(sizes) > 1, "every event had a transaction of its own"
        rows = database.read(lambda s: list(s.scalars(select(ReferralEvent))))
        assert {r.id for r in rows} == {body["id"] for body in bodies}
        by_key = Counter(bytes(r.queued_key or b"") for r in rows)
        assert b"" not in by_key
        # One key per group, held by every event of the group.
        assert sorted(by_key.values()) == sorted(sizes)

        report = drain_queued_events(database=database, keys=app.state.member_keys, clock=clock)
        assert (report.applied, report.waiting) == (len(bodies), 0)
        for body in bodies:
            outcome = client.get(f"/v1/events/{body['id']}", headers=key).json()
            assert outcome["status"] == "accepted", outcome
