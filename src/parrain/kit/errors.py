"""Errors raised by the kit."""

from __future__ import annotations

from parrain.errors import InvalidInput, ParrainError


class UnknownCurrency(InvalidInput):
    code = "unknown_currency"


class CurrencyMismatch(ParrainError):
    code = "currency_mismatch"
    status_code = 422


class InvalidAmount(InvalidInput):
    code = "invalid_amount"


class AmountOutOfRange(InvalidInput):
    code = "amount_out_of_range"
