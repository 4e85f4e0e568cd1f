"""The console's payout pages: the batches with their totals, one batch's items (never a
receiver), and reconciliation with PayPal (the spec-checked fake) from the browser."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from parrain.audit.models import AuditEntry
from parrain.config import (
    ConsoleSettings,
    CryptoSettings,
    PayoutSettings,
    Settings,
    WebSettings,
)
from parrain.db.session import Database
from parrain.kit.clock import FrozenClock
from parrain.operators.roles import Role
from parrain.payouts import repository
from parrain.payouts import service as payouts
from parrain.payouts.providers.fake import FakePayPal
from parrain.payouts.providers.paypal import PayPalClient, RetryPolicy
from parrain.web.app import create_app
from tests.operators.helpers import CHEAP_HASHER
from tests.payouts.spec_check import SpecRecorder
from tests.payouts.test_worker_support import (
    CASH,
    Winner,
    drain,
    receiver,
    run,
    settings_for,
    winners,
)
from tests.web.console.helpers import csrf_of, signed_in_as

HTML = {"accept": "text/html"}


@pytest.fixture
def fake(clock: FrozenClock) -> Iterator[FakePayPal]:
    recorder = SpecRecorder()
    with FakePayPal(clock=clock, hang_seconds=3.0, on_response=recorder) as paypal:
        yield paypal
    assert recorder.problems == [], "the fake sent answers that PayPal's spec refuses"


@pytest.fixture
def paypal(fake: FakePayPal, clock: FrozenClock) -> Iterator[PayPalClient]:
    with PayPalClient(
        base_url=fake.base_url,
        client_id="fake-client-id",
        client_secret="fake-client-secret",
        clock=clock,
        sleep=lambda _: None,
        timeout=15.0,
        retry=RetryPolicy(max_attempts=2, base_delay=0.1),
    ) as client:
        yield client


def _settings(payout: PayoutSettings) -> Settings:
    return Settings(
        crypto=CryptoSettings(allow_development_keys=True),
        web=WebSettings(cookie_secure=False),
        console=ConsoleSettings(lockout_threshold=3, lockout_minutes=15),
        payouts=payout,
    )


@pytest.fixture
def settings(fake: FakePayPal) -> Settings:
    return _settings(settings_for(fake))


def _client(database: Database, clock: FrozenClock, settings: Settings) -> TestClient:
    app = create_app(database=database, clock=clock, settings=settings)
    app.state.password_hasher = CHEAP_HASHER
    return TestClient(app, follow_redirects=False)


def _paid(
    database: Database, clock: FrozenClock, fake: FakePayPal, paypal: PayPalClient, count: int
) -> list[Winner]:
    people = winners(database, clock, count)
    drain(database, clock, paypal, settings_for(fake))
    return people


def _text(html: str) -> str:
    """The page's words, without tags, on one line (for reading sentences in it)."""
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def test_finance_sees_a_paid_batch_with_its_totals(
    client: TestClient,
    database: Database,
    clock: FrozenClock,
    fake: FakePayPal,
    paypal: PayPalClient,
) -> None:
    _paid(database, clock, fake, paypal, 3)
    [batch] = database.read(lambda s: repository.list_batches(s))
    signed_in_as(client, database, clock, Role.FINANCE)
    response = client.get("/console/payouts", headers=HTML)
    assert response.status_code == 200, response.text
    text = _text(response.text)
    assert batch.payout_batch_id is not None
    assert batch.payout_batch_id in text
    assert str(batch.id) in text
    assert "£60.00" in text  # the batch's total, three prizes of 20.00
    assert "£60.00 (3)" in text  # all three paid
    assert "Settled" in text
    assert "SUCCESS" in text
    assert "What the states mean" in text
    assert 'href="/console/payouts" aria-current="page"' in response.text
    assert "Reconcile with PayPal" in text  # finance may reconcile


def test_batches_are_listed_newest_first_with_counts_per_state(
    database: Database, clock: FrozenClock, fake: FakePayPal, paypal: PayPalClient
) -> None:
    _paid(database, clock, fake, paypal, 2)
    winners(database, clock, 1, prefix="late")
    run(database, clock, paypal, settings_for(fake))  # sent; PayPal still paying it
    found = database.read(lambda s: payouts.batch_summaries(session=s))
    summaries = found.summaries
    assert (found.page, found.pages, found.total) == (1, 1, 2)
    assert [s.batch.status for s in summaries] == ["submitted", "settled"]
    newest, oldest = summaries
    assert (newest.total("pending").items, newest.total("pending").amount_minor) == (1, CASH)
    assert newest.total("paid").items == 0
    assert (oldest.total("paid").items, oldest.total("paid").amount_minor) == (2, 2 * CASH)
    assert oldest.total("voided").items == 0
    # A page of one: each page sums its own batch's items only.
    first, second = (
        database.read(lambda s, n=n: payouts.batch_summaries(session=s, page=n, per_page=1))
        for n in (1, 2)
    )
    assert (first.pages, second.pages) == (2, 2)
    assert [s.batch.id for s in first.summaries] == [newest.batch.id]
    assert [s.batch.id for s in second.summaries] == [oldest.batch.id]
    assert second.summaries[0].states == oldest.states


def test_the_batch_list_comes_a_page_at_a_time(
    client: TestClient,
    database: Database,
    clock: FrozenClock,
    fake: FakePayPal,
    paypal: PayPalClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _paid(database, clock, fake, paypal, 1)
    winners(database, clock, 1, prefix="late")
    run(database, clock, paypal, settings_for(fake))
    oldest, newest = database.read(lambda s: repository.list_batches(s))
    monkeypatch.setattr(payouts, "BATCHES_PER_PAGE", 1)
    signed_in_as(client, database, clock, Role.FINANCE)
    first = client.get("/console/payouts", headers=HTML).text
    second = client.get("/console/payouts?page=2", headers=HTML).text
    assert str(newest.id) in first
    assert str(oldest.id) not in first
    assert str(oldest.id) in second
    assert str(newest.id) not in second
    assert 'href="/console/payouts?page=2">Older batches' in first
    assert 'href="/console/payouts?page=1">Newer batches' in second
    assert "Page 2 of 2" in _text(second)


def test_an_auditor_sees_the_batches_but_may_not_reconcile(
    client: TestClient, database: Database, clock: FrozenClock
) -> None:
    signed_in_as(client, database, clock, Role.AUDITOR)
    response = client.get("/console/payouts", headers=HTML)
    assert response.status_code == 200
    assert "There are no payout batches yet." in response.text
    assert "Reconcile with PayPal" not in response.text
    token = csrf_of(response)  # the sign-out form's: the session's token
    refused = client.post("/console/payouts/reconcile", data={"csrf_token": token})
    assert refused.status_code == 403


def test_the_batch_page_shows_pseudonyms_and_never_a_receiver(
    client: TestClient,
    database: Database,
    clock: FrozenClock,
    fake: FakePayPal,
    paypal: PayPalClient,
) -> None:
    people = _paid(database, clock, fake, paypal, 2)
    [batch] = database.read(lambda s: repository.list_batches(s))
    signed_in_as(client, database, clock, Role.FINANCE)
    response = client.get(f"/console/payouts/{batch.id}", headers=HTML)
    assert response.status_code == 200, response.text
    for person in people:
        assert str(person.member_id) in response.text
        assert receiver(person.name) not in response.text
    assert "@" not in _text(response.text)
    assert _text(response.text).count("£20.00") == 2


def test_a_batch_s_items_come_a_page_at_a_time(
    client: TestClient,
    database: Database,
    clock: FrozenClock,
    fake: FakePayPal,
    paypal: PayPalClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    people = _paid(database, clock, fake, paypal, 3)
    [batch] = database.read(lambda s: repository.list_batches(s))
    monkeypatch.setattr(payouts, "ITEMS_PER_PAGE", 2)
    signed_in_as(client, database, clock, Role.FINANCE)
    shown: list[str] = []
    for number, expected in ((1, "1 to 2 of 3"), (2, "3 to 3 of 3")):
        response = client.get(f"/console/payouts/{batch.id}?page={number}", headers=HTML)
        assert response.status_code == 200, response.text
        text = _text(response.text)
        assert expected in text
        assert f"Page {number} of 2" in text
        shown += [str(p.member_id) for p in people if str(p.member_id) in response.text]
        later = f'href="/console/payouts/{batch.id}?page=2">Later items'
        earlier = f'href="/console/payouts/{batch.id}?page=1">Earlier items'
        assert (later in response.text, earlier in response.text) == (number == 1, number == 2)
    assert sorted(shown) == sorted(str(p.member_id) for p in people)  # each on one page
    past_the_end = client.get(f"/console/payouts/{batch.id}?page=99", headers=HTML)
    assert "3 to 3 of 3" in _text(past_the_end.text)
    assert client.get(f"/console/payouts/{batch.id}?page=0", headers=HTML).status_code == 422
    french = client.get(
        f"/console/payouts/{batch.id}?page=1", headers={**HTML, "accept-language": "fr"}
    )
    assert "1 à 2 sur 3" in _text(french.text)
    assert "Éléments suivants" in french.text


def test_a_batch_that_does_not_exist_is_a_404(
    client: TestClient, database: Database, clock: FrozenClock
) -> None:
    signed_in_as(client, database, clock, Role.FINANCE)
    response = client.get("/console/payouts/00000000-0000-0000-0000-000000000000")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def _reconcile(client: TestClient) -> str:
    token = csrf_of(client.get("/console/payouts", headers=HTML))
    response = client.post("/console/payouts/reconcile", data={"csrf_token": token}, headers=HTML)
    assert response.status_code == 200, response.text
    return _text(response.text)


def test_reconcile_after_a_clean_run_says_clean_with_the_totals(
    client: TestClient,
    database: Database,
    clock: FrozenClock,
    fake: FakePayPal,
    paypal: PayPalClient,
) -> None:
    _paid(database, clock, fake, paypal, 2)
    username = signed_in_as(client, database, clock, Role.FINANCE)
    text = _reconcile(client)
    assert "Clean: 1 batches and 2 items checked agree with PayPal and with our ledger." in text
    assert "Totals per currency" in text
    assert "GBP £40.00 (2)" in text
    assert "Differences" not in text

    [entry] = database.read(
        lambda s: list(
            s.scalars(select(AuditEntry).where(AuditEntry.action == "payouts.reconciled"))
        )
    )
    assert username in entry.actor


def test_reconcile_lists_where_our_books_and_paypal_disagree(
    client: TestClient,
    database: Database,
    clock: FrozenClock,
    fake: FakePayPal,
    paypal: PayPalClient,
) -> None:
    people = _paid(database, clock, fake, paypal, 2)
    [taken] = fake.item_ids(receiver(people[0].name))
    fake.reverse(taken)  # PayPal took the money back; no notification reached us
    [batch] = database.read(lambda s: repository.list_batches(s))
    signed_in_as(client, database, clock, Role.ADMIN)
    text = _reconcile(client)
    assert "1 differences between our books and PayPal's" in text
    assert "item_status_mismatch" in text
    assert "REVERSED at PayPal" in text
    assert str(batch.id) in text
    assert "Clean:" not in text


def test_reconcile_without_paypal_configured_says_so(
    database: Database, clock: FrozenClock
) -> None:
    with _client(database, clock, _settings(PayoutSettings())) as client:
        signed_in_as(client, database, clock, Role.FINANCE)
        text = _reconcile(client)
    assert "PayPal is not configured on this server" in text


def _closed_port() -> int:
    """A local port nothing listens on (taken from the system, then let go)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_reconcile_when_paypal_cannot_be_reached_says_so(
    database: Database, clock: FrozenClock, fake: FakePayPal, paypal: PayPalClient
) -> None:
    _paid(database, clock, fake, paypal, 1)
    [batch] = database.read(lambda s: repository.list_batches(s))
    unreachable = settings_for(
        fake, paypal_base_url=f"http://127.0.0.1:{_closed_port()}", request_timeout_seconds=2.0
    )
    with _client(database, clock, _settings(unreachable)) as client:
        signed_in_as(client, database, clock, Role.FINANCE)
        text = _reconcile(client)
    assert "PayPal could not be reached or refused our credentials" in text
    assert f"paypal_unavailable batch {batch.id}: PayPal could not be read" in text
    assert "Clean:" not in text


def test_reconcile_needs_the_forms_token(
    client: TestClient, database: Database, clock: FrozenClock
) -> None:
    signed_in_as(client, database, clock, Role.FINANCE)
    response = client.post("/console/payouts/reconcile", data={"csrf_token": "forged"})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "csrf_failed"


def test_a_marketer_may_not_see_payouts(
    client: TestClient, database: Database, clock: FrozenClock
) -> None:
    signed_in_as(client, database, clock, Role.MARKETER)
    assert client.get("/console/payouts").status_code == 403
    home = client.get("/console", headers=HTML)
    assert "/console/payouts" not in home.text  # no link to a page they may not open


def test_the_pages_render_in_french(
    client: TestClient,
    database: Database,
    clock: FrozenClock,
    fake: FakePayPal,
    paypal: PayPalClient,
) -> None:
    _paid(database, clock, fake, paypal, 1)
    [batch] = database.read(lambda s: repository.list_batches(s))
    signed_in_as(client, database, clock, Role.FINANCE)
    listing = _text(client.get("/console/payouts?lang=fr", headers=HTML).text)
    assert "Versements" in listing
    assert "Que veulent dire les états" in listing
    assert "Réglé" in listing
    assert "20,00 £GB (1)" in listing  # French money (the non-breaking space read as one)
    detail = _text(client.get(f"/console/payouts/{batch.id}?lang=fr", headers=HTML).text)
    assert "Pseudonyme du membre" in detail
    token = csrf_of(client.get("/console/payouts?lang=fr", headers=HTML))
    report = client.post(
        "/console/payouts/reconcile?lang=fr", data={"csrf_token": token}, headers=HTML
    )
    assert "Rien à signaler" in _text(report.text)
