"""Ledger errors. Each code is stable; clients and other domains rely on it."""

from __future__ import annotations

from parrain.errors import Conflict, InvalidInput, NotFound, ParrainError


class LedgerError(ParrainError):
    code = "ledger_error"
    status_code = 409


class AmountMustBePositive(InvalidInput, LedgerError):
    code = "amount_must_be_positive"
    status_code = 422


class AmountTooLarge(InvalidInput, LedgerError):
    code = "amount_exceeds_maximum"
    status_code = 422


class AccountsMustBeDifferent(InvalidInput, LedgerError):
    code = "accounts_must_be_different"
    status_code = 422


class InvalidTransfer(InvalidInput, LedgerError):
    """A transfer whose fields do not fit together (a timeout on a single transfer, say)."""

    code = "invalid_transfer"
    status_code = 422


class AccountNotFound(NotFound, LedgerError):
    code = "account_not_found"
    status_code = 404


class AccountExists(Conflict, LedgerError):
    code = "account_exists"


class UnknownLedgerCurrency(InvalidInput, LedgerError):
    code = "unknown_currency"
    status_code = 422


class LedgerCurrencyMismatch(LedgerError):
    code = "currency_mismatch"
    status_code = 422


class ExceedsCredits(LedgerError):
    """The debit account has ``debits_must_not_exceed_credits`` and this would break it."""

    code = "exceeds_credits"


class ExceedsDebits(LedgerError):
    """The credit account has ``credits_must_not_exceed_debits`` and this would break it."""

    code = "exceeds_debits"


class BalanceOverflow(LedgerError):
    code = "balance_overflow"
    status_code = 422


class TransferExistsWithDifferentField(Conflict, LedgerError):
    """A transfer id was reused with other fields; ``details["field"]`` names the first one."""

    code = "transfer_exists_with_different_field"


class TransferExistsOutsideChain(Conflict, LedgerError):
    code = "transfer_exists_outside_chain"


class PendingTransferNotFound(NotFound, LedgerError):
    code = "pending_transfer_not_found"
    status_code = 404


class PendingTransferNotPending(LedgerError):
    code = "pending_transfer_not_pending"


class PendingTransferAlreadyPosted(LedgerError):
    code = "pending_transfer_already_posted"


class PendingTransferAlreadyVoided(LedgerError):
    code = "pending_transfer_already_voided"


class PendingTransferExpired(LedgerError):
    code = "pending_transfer_expired"


class PendingTransferMismatch(LedgerError):
    """A post or void names an account, currency or amount that the pending transfer lacks."""

    code = "pending_transfer_mismatch"
    status_code = 422


class ExceedsPendingAmount(LedgerError):
    code = "exceeds_pending_amount"
    status_code = 422


class LinkedEventFailed(LedgerError):
    """Another transfer of the same linked chain failed, so this one was not applied."""

    code = "linked_event_failed"


class LinkedChainOpen(InvalidInput, LedgerError):
    code = "linked_event_chain_open"
    status_code = 422
