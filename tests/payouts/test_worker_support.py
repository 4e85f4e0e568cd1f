"""What the worker tests share: members who won prizes (through the programme driver), a
worker wired to the PayPal fake, and the checks that everyone was paid exactly once."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID

from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.orm import Session

from parrain.config import PayoutSettings
from parrain.db.session import Database
from parrain.kit.clock import FrozenClock
from parrain.kit.pii import Pii
from parrain.ledger import service as ledger
from parrain.members import service as members
from parrain.members.schemas import PaypalReceiverUpdate
from parrain.payouts import reconcile, service
from parrain.payouts.models import PayoutItem
from parrain.payouts.providers.fake import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, FakePayPal
from parrain.payouts.providers.paypal import PayPalClient
from parrain.payouts.schemas import ReconcileReport, RoundReport
from parrain.payouts.worker import run_round
from tests.referrals.programme import KEYS, Programme

CASH = 2000  # the programme's cash part, GBP minor units


def settings_for(fake: FakePayPal, **changes: Any) -> PayoutSettings:
    fields: dict[str, Any] = {
        "paypal_base_url": fake.base_url,
        "paypal_client_id": DEFAULT_CLIENT_ID,
        "paypal_client_secret": SecretStr(DEFAULT_CLIENT_SECRET),
        "lease_seconds": 60.0,
    }
    fields.update(changes)
    return PayoutSettings(**fields)


def receiver(name: str, generation: int = 0) -> str:
    return f"{name}.{generation}@pay.example"


@dataclass
class Winner:
    name: str
    member_id: UUID


def winners(
    database: Database,
    clock: FrozenClock,
    count: int,
    *,
    prefix: str = "m",
    with_receiver: bool = True,
    programme: Programme | None = None,
) -> list[Winner]:
    """``count`` members who each won the programme's prize (one friend needed), posted
    after the holding period, with a PayPal receiver unless told otherwise."""
    programme = programme or Programme.launch(
        database, clock, friends_needed=1, budget_minor=10_000_000
    )
    out = []
    for index in range(count):
        name = f"{prefix}{index}"
        changes = {"paypal_receiver": receiver(name)} if with_receiver else {}
        enrolment = programme.enrol(name, **changes)
        programme.invite(enrolment, f"{name}-friend")
        out.append(Winner(name=name, member_id=enrolment.member_id))
    clock.advance(timedelta(days=8))
    while programme.release_due():
        pass
    return out


def set_receiver(
    database: Database, clock: FrozenClock, member_id: UUID, value: str | None
) -> None:
    database.run(
        lambda session: members.update_paypal_receiver(
            session=session,
            member_id=member_id,
            receiver_in=PaypalReceiverUpdate(
                paypal_receiver=Pii(value) if value is not None else None
            ),
            keys=KEYS,
            clock=clock,
        )
    )


def run(
    database: Database,
    clock: FrozenClock,
    client: PayPalClient,
    settings: PayoutSettings,
    **kwargs: Any,
) -> RoundReport:
    return run_round(
        database=database, clock=clock, client=client, keys=KEYS, settings=settings, **kwargs
    )


def drain(
    database: Database,
    clock: FrozenClock,
    client: PayPalClient,
    settings: PayoutSettings,
    *,
    max_rounds: int = 10,
    step: timedelta = timedelta(seconds=10),
) -> list[RoundReport]:
    """Rounds until nothing is in flight, the clock moving on between them (items settle)."""
    reports = []
    for _ in range(max_rounds):
        report = run(database, clock, client, settings)
        reports.append(report)
        if report.in_flight_batches == 0:
            return reports
        clock.advance(step)
    raise AssertionError(f"still in flight after {max_rounds} rounds: {reports[-1]}")


def items(database: Database, member_id: UUID | None = None) -> list[PayoutItem]:
    def work(session: Session) -> list[PayoutItem]:
        statement = select(PayoutItem).order_by(PayoutItem.created_at, PayoutItem.id)
        if member_id is not None:
            statement = statement.where(PayoutItem.member_id == member_id)
        return list(session.scalars(statement))

    return database.read(work)


def paid_in_ledger(database: Database, currency: str = "GBP") -> int:
    """What reached PayPal's settlement account, posted."""

    def work(session: Session) -> int:
        account = ledger.find_account(
            session=session, reference=service.settlement_reference(currency)
        )
        return 0 if account is None else account.credits_posted

    return database.read(work)


def assert_paid_once(
    database: Database,
    fake: FakePayPal,
    people: Iterable[Winner],
    *,
    receivers: dict[str, str] | None = None,
    amount: int = CASH,
) -> None:
    """Each member paid ``amount`` exactly once, at the fake and in our tables and ledger."""
    people = list(people)
    for person in people:
        address = (receivers or {}).get(person.name, receiver(person.name))
        successes = [
            p for p in fake.payments_to(address) if p.payout_item_id
        ]  # every item accepted for them
        assert fake.paid_total(address) == {"GBP": amount}, (person.name, successes)
        paid = [i for i in items(database, person.member_id) if i.status == "paid"]
        assert len(paid) == 1, person.name
        assert paid[0].amount_minor == amount
    assert paid_in_ledger(database) == amount * len(people)
    assert database.read(lambda s: ledger.find_discrepancies(session=s)) == []


def reconciled(database: Database, client: PayPalClient) -> ReconcileReport:
    return reconcile.reconcile(database=database, client=client)


def names(people: Sequence[Winner]) -> list[str]:
    return [p.name for p in people]
