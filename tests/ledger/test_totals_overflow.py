"""The books can be checked even when a currency's totals pass 2^63-1 minor units."""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from parrain.db.session import Database
from parrain.kit.clock import FrozenClock
from parrain.ledger import service as ledger
from parrain.ledger.postings import Phase, TransferRequest
from parrain.ledger.schemas import AccountCreate

MAX = 2**63 - 1


def test_totals_past_64_bits_are_checked_without_overflow(
    database: Database, clock: FrozenClock
) -> None:
    def books(session: Session) -> None:
        a, b, c = (
            ledger.create_account(
                session=session, account_in=AccountCreate(currency="GBP", kind=k), clock=clock
            )
            for k in ("a", "b", "c")
        )
        requests = [
            TransferRequest(uuid.uuid4(), "t", a.id, b.id, MAX, "GBP"),
            TransferRequest(uuid.uuid4(), "t", b.id, c.id, 1, "GBP"),
        ]
        for _ in range(3):  # held and released three times: 3 x 2^62 voided in all
            hold = TransferRequest(uuid.uuid4(), "hold", b.id, c.id, 2**62, "GBP", Phase.PENDING)
            void = TransferRequest(
                uuid.uuid4(), "void", phase=Phase.VOID_PENDING, pending_id=hold.id
            )
            requests += [hold, void]
        results = ledger.create_transfers(session=session, transfers=requests, clock=clock)
        assert [type(r).__name__ for r in results] == ["Created"] * 8

    database.run(books)
    totals = database.read(lambda s: ledger.balance_totals(session=s))
    assert totals["GBP"].debits_posted == totals["GBP"].credits_posted == MAX + 1
    assert totals["GBP"].debits_pending == 0
    assert database.read(lambda s: ledger.find_discrepancies(session=s)) == []
