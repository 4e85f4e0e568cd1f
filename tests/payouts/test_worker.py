"""The payout worker against the PayPal fake over loopback: members who won are paid once."""

from __future__ import annotations

from datetime import timedelta

from parrain.db.session import Database
from parrain.kit.clock import FrozenClock
from parrain.members import service as members
from parrain.outbox.repository import by_topic
from parrain.payouts import service
from parrain.payouts.providers.fake import Endpoint, FakePayPal, Fault, OutcomeRule
from parrain.payouts.providers.paypal import PayPalClient
from parrain.payouts.providers.paypal_wire import ItemStatus
from tests.payouts.conftest import RecordedSleeps, impatient_client
from tests.payouts.test_worker_support import (
    CASH,
    assert_paid_once,
    drain,
    items,
    paid_in_ledger,
    receiver,
    reconciled,
    run,
    set_receiver,
    settings_for,
    winners,
)
from tests.referrals.programme import FR, Programme


def test_members_are_paid_once_and_the_books_reconcile(
    database: Database, clock: FrozenClock, fake: FakePayPal, client: PayPalClient
) -> None:
    people = winners(database, clock, 12)
    settings = settings_for(fake, max_batch_items=5)

    first = run(database, clock, client, settings)
    assert (first.prepared_batches, first.prepared_items, first.submitted) == (3, 12, 3)
    assert first.paid == 0
    assert first.waiting == 12

    reports = drain(database, clock, client, settings)
    assert sum(r.paid for r in reports) == 12
    assert fake.batch_count == 3
    assert_paid_once(database, fake, people)
    report = reconciled(database, client)
    assert report.differences == []
    [gbp] = report.totals
    assert (gbp.currency, gbp.paid_items, gbp.paid_minor, gbp.pending_items) == (
        "GBP",
        12,
        12 * CASH,
        0,
    )
    # Nothing is left to pay: another round sends nothing.
    again = run(database, clock, client, settings)
    assert (again.prepared_items, again.submitted) == (0, 0)
    assert fake.batch_count == 3


def test_members_without_receiver_or_below_minimum_are_skipped_and_counted(
    database: Database, clock: FrozenClock, fake: FakePayPal, client: PayPalClient
) -> None:
    people = winners(database, clock, 3, with_receiver=False)
    settings = settings_for(fake)
    report = run(database, clock, client, settings)
    assert (report.skipped_no_receiver, report.prepared_items) == (3, 0)
    assert fake.batch_count == 0

    above = run(database, clock, client, settings_for(fake, min_amount_minor=CASH + 1))
    assert (above.below_minimum, above.prepared_items) == (3, 0)

    for person in people:
        set_receiver(database, clock, person.member_id, receiver(person.name))
    drain(database, clock, client, settings)
    assert_paid_once(database, fake, people)


def test_server_errors_and_rate_limits_are_retried_without_paying_twice(
    database: Database, clock: FrozenClock, fake: FakePayPal, client: PayPalClient
) -> None:
    people = winners(database, clock, 4)
    fake.inject(Endpoint.CREATE_BATCH, Fault.SERVER_ERROR, times=2)
    fake.inject(Endpoint.CREATE_BATCH, Fault.RATE_LIMIT, times=1)
    fake.inject(Endpoint.GET_BATCH, Fault.SERVER_ERROR, times=1)
    drain(database, clock, client, settings_for(fake))
    assert fake.batch_count == 1
    assert_paid_once(database, fake, people)
    assert reconciled(database, client).differences == []


def test_a_create_whose_answer_was_dropped_is_recovered_not_sent_twice(
    database: Database, clock: FrozenClock, fake: FakePayPal, client: PayPalClient
) -> None:
    people = winners(database, clock, 4)
    fake.inject(Endpoint.CREATE_BATCH, Fault.DROP_RESPONSE, times=1)
    reports = drain(database, clock, client, settings_for(fake))
    assert reports[0].recovered == 1
    assert fake.batch_count == 1
    assert_paid_once(database, fake, people)
    assert reconciled(database, client).differences == []


def test_every_attempt_lost_leaves_the_batch_prepared_and_the_next_round_recovers_it(
    database: Database,
    clock: FrozenClock,
    fake: FakePayPal,
    sleeps: RecordedSleeps,
    client: PayPalClient,
) -> None:
    people = winners(database, clock, 3)
    settings = settings_for(fake)
    impatient = impatient_client(fake, clock, sleeps, max_attempts=2)
    # The first attempt is accepted and its answer dropped; the retry hangs past the timeout.
    fake.inject(Endpoint.CREATE_BATCH, Fault.DROP_RESPONSE, times=1)
    fake.inject(Endpoint.CREATE_BATCH, Fault.HANG, times=1)
    with impatient:
        first = run(database, clock, impatient, settings)
    assert (first.submitted, first.submit_failures) == (0, 1)
    assert fake.batch_count == 1  # PayPal has it; we do not know its id yet
    unconfirmed = reconciled(database, client)
    assert [d.code for d in unconfirmed.differences] == ["batch_unconfirmed"]

    reports = drain(database, clock, client, settings)
    assert reports[0].recovered == 1
    assert fake.batch_count == 1
    assert_paid_once(database, fake, people)
    assert reconciled(database, client).differences == []


def test_returned_and_unclaimed_payouts_come_back_and_are_paid_after_the_fix(
    database: Database, clock: FrozenClock, fake: FakePayPal, client: PayPalClient
) -> None:
    people = winners(database, clock, 4)
    returned, unclaimed, *_fine = people
    fake.outcomes.append(OutcomeRule(f"^{returned.name}\\.0@", ItemStatus.RETURNED))
    fake.outcomes.append(OutcomeRule(f"^{unclaimed.name}\\.0@", ItemStatus.UNCLAIMED))
    settings = settings_for(fake)
    drain_reports = []
    drain_reports.append(run(database, clock, client, settings))
    clock.advance(timedelta(seconds=10))
    drain_reports.append(run(database, clock, client, settings))
    # Paid, returned (voided), and one UNCLAIMED item still pending at PayPal.
    statuses = {i.member_id: i.status for i in items(database)}
    assert statuses[returned.member_id] == "voided"
    assert statuses[unclaimed.member_id] == "pending"
    assert paid_in_ledger(database) == 2 * CASH

    clock.advance(timedelta(days=31))  # PayPal returns the unclaimed payout after 30 days
    drain(database, clock, client, settings)
    assert [i.status for i in items(database, unclaimed.member_id)] == ["voided"]
    attention = database.read(lambda s: by_topic(s, service.ATTENTION_TOPIC))
    assert sorted(m.payload["member_id"] for m in attention) == sorted(
        [str(returned.member_id), str(unclaimed.member_id)]
    )
    assert all(
        set(m.payload) == {"member_id", "payout_item_id", "status", "currency"} for m in attention
    )

    # They fix their addresses: a new item each, paid once.
    fixed = {p.name: receiver(p.name, 1) for p in (returned, unclaimed)}
    for person in (returned, unclaimed):
        set_receiver(database, clock, person.member_id, fixed[person.name])
    drain(database, clock, client, settings)
    assert_paid_once(database, fake, people, receivers=fixed)
    assert fake.paid_total(receiver(returned.name)) == {}
    assert [i.status for i in items(database, returned.member_id)] == ["voided", "paid"]
    assert reconciled(database, client).differences == []


def test_a_failed_or_blocked_item_is_voided_and_the_rest_of_the_batch_paid(
    database: Database, clock: FrozenClock, fake: FakePayPal, client: PayPalClient
) -> None:
    people = winners(database, clock, 3)
    fake.outcomes.append(OutcomeRule(f"^{people[0].name}\\.", ItemStatus.FAILED))
    fake.outcomes.append(OutcomeRule(f"^{people[1].name}\\.", ItemStatus.BLOCKED))
    settings = settings_for(fake)
    first = run(database, clock, client, settings)
    clock.advance(timedelta(seconds=10))
    second = run(database, clock, client, settings)
    assert (first.submitted, second.paid, second.voided) == (1, 1, 2)
    assert paid_in_ledger(database) == CASH
    # Their cash is theirs again, but it is not sent to the same address again.
    third = run(database, clock, client, settings)
    assert (third.awaiting_receiver_fix, third.prepared_items) == (2, 0)
    assert fake.batch_count == 1
    assert reconciled(database, client).differences == []


def test_a_member_erased_before_or_after_the_batch_is_prepared_is_not_paid(
    database: Database, clock: FrozenClock, fake: FakePayPal, client: PayPalClient
) -> None:
    early, late, *fine = winners(database, clock, 4)
    database.run(lambda s: members.erase(session=s, member_id=early.member_id, clock=clock))
    settings = settings_for(fake)
    prepared = database.run(
        lambda s: service.prepare_batches(session=s, clock=clock, min_amount_minor=100)
    )
    assert (prepared.items, prepared.skipped_no_receiver) == (3, 1)
    database.run(lambda s: members.erase(session=s, member_id=late.member_id, clock=clock))
    drain(database, clock, client, settings)
    assert fake.paid_total(receiver(late.name)) == {}
    assert [i.void_reason for i in items(database, late.member_id)] == ["not_sent"]
    assert_paid_once(database, fake, fine)
    assert reconciled(database, client).differences == []


def test_cash_from_two_campaigns_is_one_item_and_each_currency_its_own_batch(
    database: Database, clock: FrozenClock, fake: FakePayPal, client: PayPalClient
) -> None:
    first = Programme.launch(database, clock, friends_needed=1)
    second = Programme.launch(database, clock, friends_needed=1, reward_cash_minor=1500)
    france = Programme.launch(database, clock, region=FR, friends_needed=1)
    both = [first.enrol("ann", paypal_receiver=receiver("ann")), second.enrol("ann")]
    assert both[0].member_id == both[1].member_id  # one member, two campaigns
    first.invite(both[0], "ann-friend-1")
    second.invite(both[1], "ann-friend-2")
    marie = france.enrol("marie", paypal_receiver=receiver("marie"))
    france.invite(marie, "marie-ami")
    clock.advance(timedelta(days=8))
    while first.release_due():
        pass

    reports = drain(database, clock, client, settings_for(fake))
    assert reports[0].prepared_batches == 2
    assert fake.paid_total(receiver("ann")) == {"GBP": 3500}
    assert fake.paid_total(receiver("marie")) == {"EUR": 2000}
    [ann_item] = items(database, both[0].member_id)
    assert (ann_item.amount_minor, ann_item.status) == (3500, "paid")
    assert paid_in_ledger(database, "EUR") == 2000
    assert reconciled(database, client).differences == []


def test_a_poll_that_hangs_is_retried_next_round(
    database: Database,
    clock: FrozenClock,
    fake: FakePayPal,
    sleeps: RecordedSleeps,
    client: PayPalClient,
) -> None:
    people = winners(database, clock, 2)
    settings = settings_for(fake)
    fake.settle_after = timedelta(0)
    fake.inject(Endpoint.GET_BATCH, Fault.HANG, times=2)
    with impatient_client(fake, clock, sleeps, max_attempts=2) as impatient:
        first = run(database, clock, impatient, settings)
    assert (first.submitted, first.paid, first.in_flight_batches) == (1, 0, 1)
    drain(database, clock, client, settings)
    assert fake.batch_count == 1
    assert_paid_once(database, fake, people)


def test_a_receiver_paypal_refuses_is_set_aside_and_the_others_paid_next_round(
    database: Database, clock: FrozenClock, fake: FakePayPal, client: PayPalClient
) -> None:
    bad, *fine = winners(database, clock, 3)
    too_long = "x" * 130 + "@pay.example"  # we accept it; PayPal's limit is 127
    set_receiver(database, clock, bad.member_id, too_long)
    settings = settings_for(fake)
    first = run(database, clock, client, settings)
    assert (first.denied, first.submitted) == (1, 0)
    assert fake.batch_count == 0
    reasons = {i.member_id: i.void_reason for i in items(database)}
    assert reasons[bad.member_id] == "receiver_refused"
    assert {reasons[p.member_id] for p in fine} == {"batch_refused"}

    drain(database, clock, client, settings)
    assert_paid_once(database, fake, fine)
    again = run(database, clock, client, settings)
    assert (again.awaiting_receiver_fix, again.prepared_items) == (1, 0)
    attention = database.read(lambda s: by_topic(s, service.ATTENTION_TOPIC))
    assert [m.payload["member_id"] for m in attention] == [str(bad.member_id)]
    assert reconciled(database, client).differences == []


def test_a_batch_that_may_be_at_paypal_is_never_voided_even_if_a_retry_is_refused(
    database: Database,
    clock: FrozenClock,
    fake: FakePayPal,
    sleeps: RecordedSleeps,
    client: PayPalClient,
) -> None:
    people = winners(database, clock, 2)
    settings = settings_for(fake)
    fake.inject(Endpoint.CREATE_BATCH, Fault.DROP_RESPONSE, times=1)
    fake.inject(Endpoint.CREATE_BATCH, Fault.HANG, times=1)
    with impatient_client(fake, clock, sleeps, max_attempts=2) as impatient:
        assert run(database, clock, impatient, settings).submit_failures == 1
    assert fake.batch_count == 1  # accepted, answer lost
    set_receiver(database, clock, people[0].member_id, "x" * 130 + "@pay.example")
    retry = run(database, clock, client, settings)
    assert retry.denied == 0
    assert all(i.status != "voided" for i in items(database))

    set_receiver(database, clock, people[0].member_id, receiver(people[0].name))
    drain(database, clock, client, settings)
    assert fake.batch_count == 1
    assert_paid_once(database, fake, people)
    assert reconciled(database, client).differences == []
