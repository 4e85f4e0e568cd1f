"""An account's four balances through time, replayed from its transfers. Pure.

Each transfer that touches the account moves one side of it (debits when the account is
debited, credits when credited): a single transfer adds to posted; a pending transfer adds
to pending; a post takes the whole pending amount off pending and adds what it posts to
posted; a void (or an expiry) takes the pending amount off pending. Replayed in the order
they were written, the last point equals the stored balances (the tests hold it to that).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from parrain.ledger.postings import Delta, Phase


@dataclass(frozen=True, slots=True)
class Movement:
    """One transfer as seen from one account."""

    at: datetime
    phase: Phase
    debit: bool  # the account is the transfer's debit side
    amount: int
    pending_amount: int | None  # of the pending transfer a post or void resolves


@dataclass(frozen=True, slots=True)
class BalancePoint:
    """The account's balances right after the transfers written at ``at``."""

    at: datetime
    balances: Delta

    @property
    def credit_available(self) -> int:
        """What a ``debits_must_not_exceed_credits`` account (a budget) can still give:
        posted credits less every debit, pending holds included."""
        b = self.balances
        return b.credits_posted - b.debits_posted - b.debits_pending


def _delta(movement: Movement) -> Delta:
    amount = movement.amount
    if movement.phase is Phase.SINGLE:
        pending, posted = 0, amount
    elif movement.phase is Phase.PENDING:
        pending, posted = amount, 0
    else:
        if movement.pending_amount is None:
            raise ValueError("a post or void needs the amount of the transfer it resolves")
        released = -movement.pending_amount
        pending, posted = released, amount if movement.phase is Phase.POST_PENDING else 0
    if movement.debit:
        return Delta(debits_pending=pending, debits_posted=posted)
    return Delta(credits_pending=pending, credits_posted=posted)


def replay(movements: Iterable[Movement]) -> list[BalancePoint]:
    """The balances after each instant, ``movements`` given in the order they were written
    (transfers written at the same instant make one point)."""
    points: list[BalancePoint] = []
    balances = Delta()
    for movement in movements:
        balances = balances + _delta(movement)
        if points and points[-1].at == movement.at:
            points[-1] = BalancePoint(movement.at, balances)
        else:
            points.append(BalancePoint(movement.at, balances))
    return points
