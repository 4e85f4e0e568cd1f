"""The console's page of events received for later (ADR 28): an administrator sees how many
wait and how many were set aside after failing, the set-aside ones listed oldest first with
the day they are discarded, nothing of their sealed bodies; and tries them all again, with
the session's CSRF token, written to the audit log. Other roles are refused."""

from __future__ import annotations

import html
import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from babel.dates import format_date
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from parrain.audit import service as audit
from parrain.config import ConsoleSettings, CryptoSettings, ReferralSettings, Settings, WebSettings
from parrain.db.session import Database
from parrain.kit.clock import FrozenClock
from parrain.operators.roles import Role
from parrain.referrals import queue as event_queue
from parrain.referrals.queue import MAX_ATTEMPTS, QueueCounts
from tests.referrals.programme import EVENT, KEYS
from tests.web.console.helpers import csrf_of, signed_in_as

PAGE = "/console/events"
RETRY = "/console/events/retry"
KEEP_DAYS = 12


@pytest.fixture
def settings() -> Settings:
    # No drainer in the app: the events stay as the test leaves them.
    return Settings(
        crypto=CryptoSettings(allow_development_keys=True),
        web=WebSettings(cookie_secure=False),
        console=ConsoleSettings(lockout_threshold=3, lockout_minutes=15),
        referrals=ReferralSettings(drain_in_api=False, parked_keep_days=KEEP_DAYS),
    )


def signup(event_id: str, at: datetime) -> dict[str, Any]:
    return {
        "id": event_id,
        "type": "signup",
        "at": at.isoformat(),
        "market": "GB",
        "marketplace_user_id": f"user-{event_id}",
        "email": f"{event_id}.secret@example.org",
        "username": f"name-{event_id}",
        "device_id": f"device-{event_id}",
        "ip": "203.0.113.7",
    }


def received(
    database: Database, clock: FrozenClock, bodies: list[dict[str, Any]], *, park: bool
) -> None:
    """Queue ``bodies`` now and, with ``park``, fail each of them :data:`MAX_ATTEMPTS` times,
    in one transaction (no drain sees them waiting in between)."""
    sealed = event_queue.seal_events(
        events=[EVENT.validate_python(body) for body in bodies], keys=KEYS
    )

    def work(session: Session) -> None:
        event_queue.queue_events(session=session, events=sealed, clock=clock)
        for body in bodies if park else ():
            for _ in range(MAX_ATTEMPTS):
                event_queue.record_failure(session=session, event_id=body["id"])

    database.run(work)


def counts(database: Database) -> QueueCounts:
    return database.read(lambda s: event_queue.queue_counts(session=s))


def test_the_page_counts_and_lists_the_set_aside_events_oldest_first_without_their_bodies(
    client: TestClient, database: Database, clock: FrozenClock
) -> None:
    first = clock.now()
    received(database, clock, [signup("evt-older", first)], park=True)
    clock.advance(timedelta(hours=3))
    received(database, clock, [signup("evt-newer", clock.now())], park=True)
    received(database, clock, [signup("evt-waiting", clock.now())], park=False)
    signed_in_as(client, database, clock, Role.ADMIN)

    answer = client.get(PAGE)
    assert answer.status_code == 200, answer.text
    text = html.unescape(answer.text)
    assert '<a href="/console/events" aria-current="page">Queued events</a>' in text
    assert '<dd id="count-waiting">1</dd>' in text
    assert '<dd id="count-parked">2</dd>' in text
    assert text.index("evt-older") < text.index("evt-newer")
    assert "evt-waiting" not in text  # waiting for a drain, not set aside
    assert "signup" in text
    assert f'<td class="number">{MAX_ATTEMPTS}</td>' in text
    discarded = first + timedelta(days=KEEP_DAYS)
    assert format_date(discarded.date(), "long", locale="en_GB") in text
    assert "Try the set-aside events again" in text
    assert "only the oldest" not in text.lower()
    for secret in ("secret@example.org", "user-evt-older", "name-evt-older", "203.0.113.7"):
        assert secret not in text


def test_nothing_set_aside_says_so_and_offers_no_retry(
    client: TestClient, database: Database, clock: FrozenClock
) -> None:
    signed_in_as(client, database, clock, Role.ADMIN)
    received(database, clock, [signup("evt-waiting", clock.now())], park=False)
    text = client.get(PAGE).text
    assert "No event is set aside: there is nothing to look at." in text
    assert '<dd id="count-waiting">1</dd>' in text
    assert '<dd id="count-parked">0</dd>' in text
    assert "Try the set-aside events again" not in text
    assert RETRY not in text


def test_more_than_a_hundred_set_aside_lists_the_oldest_hundred_and_says_so(
    client: TestClient, database: Database, clock: FrozenClock
) -> None:
    signed_in_as(client, database, clock, Role.ADMIN)
    bodies = [signup(f"evt-{n:03d}", clock.now()) for n in range(101)]
    received(database, clock, bodies, park=True)
    text = client.get(PAGE).text
    assert "Only the oldest 100 of the 101 set-aside events are listed." in text
    assert '<dd id="count-parked">101</dd>' in text
    assert "evt-099" in text
    assert "evt-100" not in text  # same time received: by id, the last one is left out


def test_retrying_gives_the_set_aside_events_their_attempts_back_and_audits_it(
    client: TestClient, database: Database, clock: FrozenClock
) -> None:
    username = signed_in_as(client, database, clock, Role.ADMIN)
    bodies = [signup(f"evt-{n}", clock.now()) for n in range(3)]
    received(database, clock, bodies, park=True)
    assert counts(database) == QueueCounts(waiting=0, parked=3)

    token = csrf_of(client.get(PAGE))
    answer = client.post(RETRY, data={"csrf_token": token})
    assert answer.status_code == 303
    assert answer.headers["location"] == PAGE
    assert counts(database) == QueueCounts(waiting=3, parked=0)

    after = client.get(PAGE).text
    assert "3 set-aside events will be tried again by the next drain." in after
    assert '<dd id="count-parked">0</dd>' in after
    assert "No event is set aside" in after

    entries = database.read(lambda s: audit.list_entries(session=s, subject="referral_events"))
    assert [(entry.action, json.loads(entry.details)) for entry in entries] == [
        ("referral_events.retried", {"count": 3})
    ]
    assert entries[0].actor == f"operator:{username}"

    again = client.post(RETRY, data={"csrf_token": token})  # nothing left aside: nothing done
    assert again.status_code == 303
    assert "There were no set-aside events to try again." in client.get(PAGE).text
    retried = database.read(lambda s: audit.list_entries(session=s, subject="referral_events"))
    assert len(retried) == 1


def test_retrying_without_the_csrf_token_is_refused_and_changes_nothing(
    client: TestClient, database: Database, clock: FrozenClock
) -> None:
    signed_in_as(client, database, clock, Role.ADMIN)
    received(database, clock, [signup("evt-0", clock.now())], park=True)
    for data in ({}, {"csrf_token": "not-the-token"}):
        answer = client.post(RETRY, data=data)
        assert answer.status_code == 403, answer.text
        assert answer.json()["error"]["code"] == "csrf_failed"
    assert counts(database) == QueueCounts(waiting=0, parked=1)
    assert not database.read(lambda s: audit.list_entries(session=s, subject="referral_events"))


@pytest.mark.parametrize("role", [Role.MARKETER, Role.REVIEWER, Role.FINANCE, Role.AUDITOR])
def test_other_roles_are_refused_the_page_and_the_retry(
    client: TestClient, database: Database, clock: FrozenClock, role: Role
) -> None:
    signed_in_as(client, database, clock, role)
    received(database, clock, [signup("evt-0", clock.now())], park=True)
    assert "/console/events" not in client.get("/console").text  # not in the navigation
    token = csrf_of(client.get("/console"))
    page = client.get(PAGE, headers={"Accept": "text/html"})
    assert page.status_code == 403
    assert page.headers["content-type"].startswith("text/html")
    assert "evt-0" not in page.text
    retried = client.post(RETRY, data={"csrf_token": token})
    assert retried.status_code == 403
    assert retried.json()["error"]["code"] == "permission_denied"
    assert counts(database) == QueueCounts(waiting=0, parked=1)


def test_the_page_speaks_french(client: TestClient, database: Database, clock: FrozenClock) -> None:
    signed_in_as(client, database, clock, Role.ADMIN)
    received(database, clock, [signup("evt-0", clock.now())], park=True)
    text = html.unescape(client.get(f"{PAGE}?lang=fr").text)
    assert '<html lang="fr"' in text
    assert "Événements reçus pour plus tard" in text
    assert ">Événements en attente</a>" in text
    assert "Réessayer les événements mis de côté" in text
    assert "Tentatives échouées" in text
    discarded = clock.now() + timedelta(days=KEEP_DAYS)
    assert format_date(discarded.date(), "long", locale="fr_FR") in text

    token = csrf_of(client.get(PAGE))
    client.post(RETRY, data={"csrf_token": token})
    after = html.unescape(client.get(PAGE).text)  # the language cookie stays
    assert "1 événement mis de côté sera réessayé au prochain traitement." in after
    assert "Aucun événement n'est mis de côté : il n'y a rien à examiner." in after
