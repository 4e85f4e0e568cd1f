"""The ledger service, behaviour by behaviour, with exact balances on the real database.

Single transfers; two-phase transfers posted in full, in part or voided; resolving twice;
expiry; linked chains that fail as one; ids as idempotency keys; invalid input refused with
a stable code and nothing written; balance limits. Balances are written
``(debits_pending, debits_posted, credits_pending, credits_posted)``.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from uuid import UUID

import pytest
from sqlalchemy import func, select

from parrain.db.session import Database
from parrain.kit.clock import FrozenClock
from parrain.kit.ids import new_id
from parrain.kit.money import Money
from parrain.ledger import service as ledger
from parrain.ledger.errors import (
    AccountNotFound,
    AccountsMustBeDifferent,
    AmountMustBePositive,
    AmountTooLarge,
    ExceedsCredits,
    ExceedsDebits,
    InvalidTransfer,
    LedgerCurrencyMismatch,
    LedgerError,
    LinkedChainOpen,
    LinkedEventFailed,
    PendingTransferAlreadyPosted,
    PendingTransferAlreadyVoided,
    PendingTransferExpired,
    TransferExistsWithDifferentField,
    UnknownLedgerCurrency,
)
from parrain.ledger.models import LedgerTransfer
from parrain.ledger.postings import (
    EXPIRY_KIND,
    MAX_TIMEOUT_SECONDS,
    Account,
    Created,
    Failed,
    PendingStatus,
    Phase,
    Replayed,
    Transfer,
    TransferRequest,
)
from tests.factories import fund_account, open_account

GBP = "GBP"
Balances = tuple[int, int, int, int]


def balances(database: Database, account: Account) -> Balances:
    found = database.read(lambda s: ledger.get_account(session=s, account_id=account.id))
    return (found.debits_pending, found.debits_posted, found.credits_pending, found.credits_posted)


def transfer_rows(database: Database) -> int:
    return database.read(lambda s: s.scalar(select(func.count()).select_from(LedgerTransfer)) or 0)


def stored(database: Database, transfer_id: UUID) -> Transfer | None:
    return database.read(lambda s: ledger.get_transfer(session=s, transfer_id=transfer_id))


def available(database: Database, account: Account) -> int:
    return database.read(
        lambda s: ledger.get_account(session=s, account_id=account.id)
    ).available_credit


def books_are_sound(database: Database) -> bool:
    return database.read(lambda s: ledger.find_discrepancies(session=s)) == []


def request(debit: Account, credit: Account, amount: int, **fields: object) -> TransferRequest:
    """A single transfer in the debit account's currency; ``fields`` override any field."""
    base = TransferRequest(
        id=new_id(),
        kind="test",
        debit_account_id=debit.id,
        credit_account_id=credit.id,
        amount=amount,
        currency=debit.currency,
    )
    return replace(base, **fields)  # type: ignore[arg-type]


def send(database: Database, clock: FrozenClock, transfer: TransferRequest) -> Transfer:
    return database.run(lambda s: ledger.create_transfer(session=s, transfer=transfer, clock=clock))


def post(database: Database, clock: FrozenClock, pending_id: UUID, **fields: object) -> Transfer:
    return database.run(
        lambda s: ledger.post_pending(session=s, pending_id=pending_id, clock=clock, **fields)  # type: ignore[arg-type]
    )


def void(database: Database, clock: FrozenClock, pending_id: UUID, **fields: object) -> Transfer:
    return database.run(
        lambda s: ledger.void_pending(session=s, pending_id=pending_id, clock=clock, **fields)  # type: ignore[arg-type]
    )


@pytest.fixture
def pair(database: Database, clock: FrozenClock) -> tuple[Account, Account]:
    """Two unlimited GBP accounts."""
    return open_account(database, clock), open_account(database, clock)


def test_a_single_transfer_moves_posted_balances(
    database: Database, clock: FrozenClock, pair: tuple[Account, Account]
) -> None:
    a, b = pair
    tid = new_id()
    made = database.run(
        lambda s: ledger.transfer(
            session=s,
            transfer_id=tid,
            debit_account_id=a.id,
            credit_account_id=b.id,
            amount=Money(1250, GBP),
            kind="test",
            clock=clock,
        )
    )
    assert (made.id, made.amount, made.currency, made.phase) == (tid, 1250, GBP, Phase.SINGLE)
    assert (made.status, made.expires_at, made.created_at) == (None, None, clock.now())
    assert stored(database, tid) == made
    assert balances(database, a) == (0, 1250, 0, 0)
    assert balances(database, b) == (0, 0, 0, 1250)
    assert books_are_sound(database)


def test_a_pending_transfer_posted_in_full(
    database: Database, clock: FrozenClock, pair: tuple[Account, Account]
) -> None:
    a, b = pair
    pending = send(database, clock, request(a, b, 1000, phase=Phase.PENDING))
    assert pending.status is PendingStatus.PENDING
    assert balances(database, a) == (1000, 0, 0, 0)
    assert balances(database, b) == (0, 0, 1000, 0)

    posted = post(database, clock, pending.id)
    assert (posted.amount, posted.phase, posted.pending_id) == (
        1000,
        Phase.POST_PENDING,
        pending.id,
    )
    assert (posted.debit_account_id, posted.credit_account_id) == (a.id, b.id)
    assert balances(database, a) == (0, 1000, 0, 0)
    assert balances(database, b) == (0, 0, 0, 1000)
    assert stored(database, pending.id).status is PendingStatus.POSTED  # type: ignore[union-attr]
    assert books_are_sound(database)


def test_a_pending_transfer_posted_in_part_releases_the_rest(
    database: Database, clock: FrozenClock
) -> None:
    budget = open_account(database, clock, debits_must_not_exceed_credits=True)
    fund_account(database, clock, budget, 1000)
    payee = open_account(database, clock)
    pending = send(database, clock, request(budget, payee, 1000, phase=Phase.PENDING))
    assert available(database, budget) == 0

    posted = post(database, clock, pending.id, amount=600)
    assert posted.amount == 600
    assert balances(database, budget) == (0, 600, 0, 1000)
    assert balances(database, payee) == (0, 0, 0, 600)
    assert available(database, budget) == 400
    assert stored(database, pending.id).status is PendingStatus.POSTED  # type: ignore[union-attr]
    assert books_are_sound(database)


def test_a_pending_transfer_voided(
    database: Database, clock: FrozenClock, pair: tuple[Account, Account]
) -> None:
    a, b = pair
    pending = send(database, clock, request(a, b, 750, phase=Phase.PENDING))
    voided = void(database, clock, pending.id)
    assert (voided.amount, voided.phase, voided.pending_id) == (750, Phase.VOID_PENDING, pending.id)
    assert balances(database, a) == (0, 0, 0, 0)
    assert balances(database, b) == (0, 0, 0, 0)
    assert stored(database, pending.id).status is PendingStatus.VOIDED  # type: ignore[union-attr]
    assert transfer_rows(database) == 2
    assert books_are_sound(database)


def test_posting_twice_replays_and_a_second_resolution_is_refused(
    database: Database, clock: FrozenClock, pair: tuple[Account, Account]
) -> None:
    a, b = pair
    pending = send(database, clock, request(a, b, 500, phase=Phase.PENDING))
    first = post(database, clock, pending.id)
    clock.advance(timedelta(minutes=5))
    again = post(database, clock, pending.id)  # the same derived id: a replay
    assert again == first
    assert again.created_at == first.created_at != clock.now()

    with pytest.raises(PendingTransferAlreadyPosted) as twice:
        post(database, clock, pending.id, transfer_id=new_id())
    assert twice.value.code == "pending_transfer_already_posted"
    assert twice.value.details["pending_id"] == str(pending.id)
    with pytest.raises(PendingTransferAlreadyPosted):
        void(database, clock, pending.id)
    assert balances(database, a) == (0, 500, 0, 0)
    assert balances(database, b) == (0, 0, 0, 500)
    assert transfer_rows(database) == 2
    assert books_are_sound(database)


def test_voiding_twice_replays_and_a_second_resolution_is_refused(
    database: Database, clock: FrozenClock, pair: tuple[Account, Account]
) -> None:
    a, b = pair
    pending = send(database, clock, request(a, b, 500, phase=Phase.PENDING))
    void_id = new_id()
    first = void(database, clock, pending.id, transfer_id=void_id)
    assert void(database, clock, pending.id, transfer_id=void_id) == first

    with pytest.raises(PendingTransferAlreadyVoided) as twice:
        void(database, clock, pending.id, transfer_id=new_id())
    assert twice.value.code == "pending_transfer_already_voided"
    with pytest.raises(PendingTransferAlreadyVoided):
        post(database, clock, pending.id)
    assert balances(database, a) == (0, 0, 0, 0)
    assert balances(database, b) == (0, 0, 0, 0)
    assert transfer_rows(database) == 2
    assert books_are_sound(database)


def test_an_expired_pending_transfer_is_voided_once_and_cannot_be_posted(
    database: Database, clock: FrozenClock, pair: tuple[Account, Account]
) -> None:
    a, b = pair
    pending = send(database, clock, request(a, b, 300, phase=Phase.PENDING, timeout_seconds=60))
    lasting = send(database, clock, request(a, b, 40, phase=Phase.PENDING))  # no timeout
    assert pending.expires_at == clock.now() + timedelta(seconds=60)
    assert lasting.expires_at is None

    clock.advance(timedelta(seconds=59))
    assert database.run(lambda s: ledger.void_expired_pending(session=s, clock=clock)) == []
    clock.advance(timedelta(seconds=2))
    with pytest.raises(PendingTransferExpired):  # due, even before the job has run
        post(database, clock, pending.id)

    expired = database.run(lambda s: ledger.void_expired_pending(session=s, clock=clock))
    assert [(t.pending_id, t.kind, t.amount) for t in expired] == [(pending.id, EXPIRY_KIND, 300)]
    assert database.run(lambda s: ledger.void_expired_pending(session=s, clock=clock)) == []
    assert stored(database, pending.id).status is PendingStatus.EXPIRED  # type: ignore[union-attr]
    assert stored(database, lasting.id).status is PendingStatus.PENDING  # type: ignore[union-attr]
    assert balances(database, a) == (40, 0, 0, 0)
    assert balances(database, b) == (0, 0, 40, 0)

    with pytest.raises(PendingTransferExpired) as late:
        post(database, clock, pending.id)
    assert late.value.code == "pending_transfer_expired"
    with pytest.raises(PendingTransferExpired):
        void(database, clock, pending.id)
    assert transfer_rows(database) == 3  # two pending and one expiry
    assert books_are_sound(database)


def test_a_linked_chain_whose_last_transfer_fails_writes_nothing(
    database: Database, clock: FrozenClock
) -> None:
    budget = open_account(database, clock, debits_must_not_exceed_credits=True)
    fund_account(database, clock, budget, 100)
    cash, coupons = open_account(database, clock), open_account(database, clock)
    before = [balances(database, x) for x in (budget, cash, coupons)]
    rows = transfer_rows(database)
    chain = [
        request(budget, cash, 60, phase=Phase.PENDING),
        request(cash, coupons, 10),
        request(budget, coupons, 41),  # 60 + 41 > 100
    ]
    with pytest.raises(ExceedsCredits) as refused:
        database.run(lambda s: ledger.create_linked(session=s, transfers=chain, clock=clock))
    assert refused.value.details["available"] == 40
    assert [balances(database, x) for x in (budget, cash, coupons)] == before
    assert transfer_rows(database) == rows
    assert all(stored(database, t.id) is None for t in chain)

    # The same chain through create_transfers: one result per request, all failed.
    linked = [replace(t, linked=i < 2) for i, t in enumerate(chain)]
    results = database.run(
        lambda s: ledger.create_transfers(session=s, transfers=linked, clock=clock)
    )
    assert [type(r) for r in results] == [Failed, Failed, Failed]
    errors = [r.error for r in results if isinstance(r, Failed)]
    assert [type(e) for e in errors] == [LinkedEventFailed, LinkedEventFailed, ExceedsCredits]
    assert errors[0].details == {"failed_transfer_id": str(chain[2].id), "cause": "exceeds_credits"}
    assert [balances(database, x) for x in (budget, cash, coupons)] == before
    assert transfer_rows(database) == rows
    assert books_are_sound(database)


def test_a_batch_ending_in_an_open_chain_is_refused(
    database: Database, clock: FrozenClock, pair: tuple[Account, Account]
) -> None:
    a, b = pair
    results = database.run(
        lambda s: ledger.create_transfers(
            session=s, transfers=[request(a, b, 5, linked=True)], clock=clock
        )
    )
    assert len(results) == 1
    assert isinstance(results[0], Failed)
    assert isinstance(results[0].error, LinkedChainOpen)
    assert results[0].error.code == "linked_event_chain_open"
    assert transfer_rows(database) == 0


def test_the_same_id_with_the_same_fields_returns_the_original(
    database: Database, clock: FrozenClock, pair: tuple[Account, Account]
) -> None:
    a, b = pair
    first = request(a, b, 420)
    [created] = database.run(
        lambda s: ledger.create_transfers(session=s, transfers=[first], clock=clock)
    )
    clock.advance(timedelta(hours=1))
    [again] = database.run(
        lambda s: ledger.create_transfers(session=s, transfers=[first], clock=clock)
    )
    assert isinstance(created, Created)
    assert isinstance(again, Replayed)
    assert again.transfer == created.transfer
    assert again.transfer.created_at == clock.now() - timedelta(hours=1)
    assert balances(database, a) == (0, 420, 0, 0)
    assert balances(database, b) == (0, 0, 0, 420)
    assert transfer_rows(database) == 1


@pytest.mark.parametrize(
    ("field", "change"),
    [
        ("amount", lambda t, other: {"amount": 421}),
        ("kind", lambda t, other: {"kind": "something_else"}),
        ("credit_account_id", lambda t, other: {"credit_account_id": other.id}),
        ("phase", lambda t, other: {"phase": Phase.PENDING}),
    ],
)
def test_the_same_id_with_another_field_is_refused_and_names_it(
    database: Database,
    clock: FrozenClock,
    pair: tuple[Account, Account],
    field: str,
    change: object,
) -> None:
    a, b = pair
    other = open_account(database, clock)
    original = request(a, b, 420)
    first = send(database, clock, original)
    reused = replace(original, **change(first, other))  # type: ignore[operator]
    with pytest.raises(TransferExistsWithDifferentField) as refused:
        send(database, clock, reused)
    assert refused.value.code == "transfer_exists_with_different_field"
    assert refused.value.details == {"transfer_id": str(first.id), "field": field}
    assert stored(database, first.id) == first
    assert balances(database, a) == (0, 420, 0, 0)
    assert balances(database, other) == (0, 0, 0, 0)
    assert transfer_rows(database) == 1


@pytest.mark.parametrize(
    ("case", "error", "code"),
    [
        ("zero amount", AmountMustBePositive, "amount_must_be_positive"),
        ("negative amount", AmountMustBePositive, "amount_must_be_positive"),
        ("amount 2^63", AmountTooLarge, "amount_exceeds_maximum"),
        ("GBP account to EUR account", LedgerCurrencyMismatch, "currency_mismatch"),
        ("EUR transfer between GBP accounts", LedgerCurrencyMismatch, "currency_mismatch"),
        ("unknown currency", UnknownLedgerCurrency, "unknown_currency"),
        ("unknown debit account", AccountNotFound, "account_not_found"),
        ("unknown credit account", AccountNotFound, "account_not_found"),
        ("debit is credit", AccountsMustBeDifferent, "accounts_must_be_different"),
        ("timeout on a single transfer", InvalidTransfer, "invalid_transfer"),
        ("timeout past 2^31-1 seconds", InvalidTransfer, "invalid_transfer"),
        ("empty kind", InvalidTransfer, "invalid_transfer"),
    ],
)
def test_invalid_input_is_refused_with_a_stable_code_and_nothing_written(
    database: Database,
    clock: FrozenClock,
    pair: tuple[Account, Account],
    case: str,
    error: type[LedgerError],
    code: str,
) -> None:
    a, b = pair
    euros = open_account(database, clock, currency="EUR")
    good = request(a, b, 100)
    bad = {
        "zero amount": {"amount": 0},
        "negative amount": {"amount": -100},
        "amount 2^63": {"amount": 2**63},
        "GBP account to EUR account": {"credit_account_id": euros.id},
        "EUR transfer between GBP accounts": {"currency": "EUR"},
        "unknown currency": {"currency": "XXQ"},
        "unknown debit account": {"debit_account_id": new_id()},
        "unknown credit account": {"credit_account_id": new_id()},
        "debit is credit": {"credit_account_id": a.id},
        "timeout on a single transfer": {"timeout_seconds": 30},
        "timeout past 2^31-1 seconds": {"phase": Phase.PENDING, "timeout_seconds": 2**31},
        "empty kind": {"kind": ""},
    }[case]
    with pytest.raises(error) as refused:
        send(database, clock, replace(good, **bad))  # type: ignore[arg-type]
    assert refused.value.code == code
    assert 400 <= refused.value.status_code < 500
    assert transfer_rows(database) == 0
    for account in (a, b, euros):
        assert balances(database, account) == (0, 0, 0, 0)
    # The same id is still free: the valid request goes through afterwards.
    assert send(database, clock, good).amount == 100


def test_the_longest_timeout_is_stored(
    database: Database, clock: FrozenClock, pair: tuple[Account, Account]
) -> None:
    a, b = pair
    pending = send(
        database, clock, request(a, b, 1, phase=Phase.PENDING, timeout_seconds=MAX_TIMEOUT_SECONDS)
    )
    assert stored(database, pending.id) == pending
    assert pending.expires_at == clock.now() + timedelta(seconds=2**31 - 1)


def test_the_budget_limit_refuses_an_overspend(database: Database, clock: FrozenClock) -> None:
    budget = open_account(database, clock, debits_must_not_exceed_credits=True)
    fund_account(database, clock, budget, 1000)
    member = open_account(database, clock)
    rows = transfer_rows(database)

    with pytest.raises(ExceedsCredits) as refused:
        send(database, clock, request(budget, member, 1001))
    assert refused.value.code == "exceeds_credits"
    assert refused.value.details == {"account_id": str(budget.id), "available": 1000}
    assert transfer_rows(database) == rows

    send(database, clock, request(budget, member, 700, phase=Phase.PENDING))
    with pytest.raises(ExceedsCredits) as held:  # pending holds count
        send(database, clock, request(budget, member, 301))
    assert held.value.details["available"] == 300
    send(database, clock, request(budget, member, 300))
    assert balances(database, budget) == (700, 300, 0, 1000)
    assert available(database, budget) == 0
    with pytest.raises(ExceedsCredits):
        send(database, clock, request(budget, member, 1))
    assert books_are_sound(database)


def test_an_account_that_must_not_be_credited_past_its_debits(
    database: Database, clock: FrozenClock, pair: tuple[Account, Account]
) -> None:
    a, _ = pair
    clearing = open_account(database, clock, credits_must_not_exceed_debits=True)
    with pytest.raises(ExceedsDebits) as refused:
        send(database, clock, request(a, clearing, 1))
    assert refused.value.code == "exceeds_debits"
    send(database, clock, request(clearing, a, 50))
    send(database, clock, request(a, clearing, 50))
    assert balances(database, clearing) == (0, 50, 0, 50)
    with pytest.raises(ExceedsDebits):
        send(database, clock, request(a, clearing, 1))


def test_a_batch_applies_independent_transfers_and_fails_only_the_bad_one(
    database: Database, clock: FrozenClock, pair: tuple[Account, Account]
) -> None:
    a, b = pair
    batch = [request(a, b, 10), request(a, b, 0), request(b, a, 3)]
    results = database.run(
        lambda s: ledger.create_transfers(session=s, transfers=batch, clock=clock)
    )
    assert [type(r) for r in results] == [Created, Failed, Created]
    assert balances(database, a) == (0, 10, 0, 3)
    assert balances(database, b) == (0, 3, 0, 10)
    assert transfer_rows(database) == 2


def test_a_batch_past_the_maximum_is_refused_whole(
    database: Database, clock: FrozenClock, pair: tuple[Account, Account]
) -> None:
    a, b = pair
    batch = [request(a, b, 1) for _ in range(ledger.MAX_BATCH + 1)]
    with pytest.raises(InvalidTransfer):
        database.run(lambda s: ledger.create_transfers(session=s, transfers=batch, clock=clock))
    assert transfer_rows(database) == 0
    assert (
        database.run(lambda s: ledger.create_transfers(session=s, transfers=[], clock=clock)) == []
    )
