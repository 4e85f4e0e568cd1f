"""The progress page says "paid" once the payout worker paid the member's cash to PayPal
(the PayPal fake, as the payout tests run it), with the day it was paid."""

from __future__ import annotations

from fastapi.testclient import TestClient

from parrain.db.session import Database
from parrain.kit.clock import FrozenClock
from parrain.payouts import service as payouts
from parrain.payouts.providers.fake import FakePayPal
from parrain.payouts.providers.paypal import PayPalClient, RetryPolicy
from tests.payouts.test_worker_support import drain, settings_for, winners
from tests.web.member.pages import enter, text_of


def test_progress_says_when_the_cash_was_paid(
    client: TestClient, database: Database, clock: FrozenClock
) -> None:
    [winner] = winners(database, clock, 1)
    enter(client, clock, winner.name)
    before = text_of(client.get("/m"))
    assert "Yours: the cash will be sent to your PayPal account in the next payment run." in before

    with (
        FakePayPal(clock=clock) as fake,
        PayPalClient(
            base_url=fake.base_url,
            client_id="fake-client-id",
            client_secret="fake-client-secret",
            clock=clock,
            sleep=lambda _seconds: None,
            retry=RetryPolicy(max_attempts=2, base_delay=0.1),
        ) as paypal,
    ):
        drain(database, clock, paypal, settings_for(fake))
    [item] = database.read(lambda s: payouts.items_of_member(session=s, member_id=winner.member_id))
    assert item.status == "paid"
    assert item.settled_at is not None
    enter(client, clock, winner.name)
    paid = text_of(client.get("/m"))
    day = f"{item.settled_at.day} {item.settled_at:%B %Y}"
    assert f"Paid: the cash was sent to your PayPal account on {day}." in paid
    french = text_of(client.get("/m?lang=fr"))
    assert "Payée : l'argent a été envoyé sur votre compte PayPal le" in french
