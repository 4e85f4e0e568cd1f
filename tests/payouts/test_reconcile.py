"""Reconciliation finds each kind of difference between our books and PayPal's."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from parrain.db.session import Database
from parrain.kit.clock import FrozenClock
from parrain.payouts import repository, service
from parrain.payouts.models import PayoutBatch, PayoutItem
from parrain.payouts.providers.fake import FakePayPal
from parrain.payouts.providers.paypal import PayPalClient
from tests.payouts.test_worker_support import (
    drain,
    items,
    receiver,
    reconciled,
    run,
    settings_for,
    winners,
)


def _codes(database: Database, client: PayPalClient) -> list[str]:
    return sorted(d.code for d in reconciled(database, client).differences)


def test_a_batch_paypal_does_not_know_is_listed(
    database: Database, clock: FrozenClock, fake: FakePayPal, client: PayPalClient
) -> None:
    winners(database, clock, 2)
    drain(database, clock, client, settings_for(fake))
    database.run(lambda s: s.execute(update(PayoutBatch).values(payout_batch_id="FAKEB99999999")))
    assert _codes(database, client) == ["batch_missing_at_paypal"]


def test_a_settled_item_whose_transfers_are_still_pending_is_listed(
    database: Database, clock: FrozenClock, fake: FakePayPal, client: PayPalClient
) -> None:
    people = winners(database, clock, 2)
    run(database, clock, client, settings_for(fake))  # sent; PayPal: PENDING
    database.run(
        lambda s: s.execute(
            update(PayoutItem)
            .where(PayoutItem.member_id == people[0].member_id)
            .values(status="paid")
        )
    )
    codes = _codes(database, client)
    assert codes == [
        "clearing_mismatch",
        "hold_status_mismatch",
        "item_status_mismatch",
        "settlement_balance_mismatch",
        "settlement_mismatch",
    ]


def test_an_amount_that_differs_from_paypals_is_listed(
    database: Database, clock: FrozenClock, fake: FakePayPal, client: PayPalClient
) -> None:
    people = winners(database, clock, 2)
    run(database, clock, client, settings_for(fake))
    database.run(
        lambda s: s.execute(
            update(PayoutItem)
            .where(PayoutItem.member_id == people[1].member_id)
            .values(amount_minor=1999)
        )
    )
    codes = _codes(database, client)
    assert "amount_mismatch" in codes
    assert "item_parts_mismatch" in codes
    # The worker does not settle an item whose amount PayPal disagrees with.
    fake.settle_after = timedelta(0)
    run(database, clock, client, settings_for(fake))
    assert {i.member_id: i.status for i in items(database)}[people[1].member_id] == "pending"


def test_a_clean_run_gives_totals_per_currency(
    database: Database, clock: FrozenClock, fake: FakePayPal, client: PayPalClient
) -> None:
    winners(database, clock, 3)
    run(database, clock, client, settings_for(fake))
    report = reconciled(database, client)
    assert report.differences == []
    [gbp] = report.totals
    assert (gbp.pending_items, gbp.pending_minor, gbp.paid_items) == (3, 6000, 0)


def test_a_payout_taken_back_is_a_difference_until_it_is_booked_and_then_none(
    database: Database, clock: FrozenClock, fake: FakePayPal, client: PayPalClient
) -> None:
    people = winners(database, clock, 2)
    drain(database, clock, client, settings_for(fake))
    [taken] = fake.item_ids(receiver(people[0].name))
    fake.reverse(taken)  # no notification reaches us: only reconciliation can tell
    assert _codes(database, client) == ["item_status_mismatch"]

    # What the notification would have done: PayPal's answer for the batch, applied.
    [batch] = database.read(lambda s: repository.list_batches(s))
    assert batch.payout_batch_id is not None
    details = client.get_batch(batch.payout_batch_id)
    report = database.run(
        lambda s: service.apply_batch(
            session=s, batch_id=batch.id, details=details, owner="test", clock=clock
        )
    )
    assert (report.taken_back, report.paid, report.voided) == (1, 0, 0)
    assert _codes(database, client) == []
    again = database.run(
        lambda s: service.apply_batch(
            session=s, batch_id=batch.id, details=details, owner="test", clock=clock
        )
    )
    assert again.taken_back == 0
    assert _codes(database, client) == []


def test_an_item_marked_taken_back_without_its_money_moving_is_listed(
    database: Database, clock: FrozenClock, fake: FakePayPal, client: PayPalClient
) -> None:
    people = winners(database, clock, 2)
    drain(database, clock, client, settings_for(fake))
    database.run(
        lambda s: s.execute(
            update(PayoutItem)
            .where(PayoutItem.member_id == people[0].member_id)
            .values(void_reason="reversed")
        )
    )
    assert _codes(database, client) == [
        "item_status_mismatch",
        "reversal_mismatch",
        "settlement_balance_mismatch",
    ]
