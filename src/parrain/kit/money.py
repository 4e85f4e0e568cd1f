"""Money as an integer count of minor units with an ISO 4217 currency.

No float ever becomes an amount: :class:`Money` refuses floats outright, people's input is
parsed from text through :class:`decimal.Decimal`, and an amount with more decimal places
than its currency allows is refused rather than rounded.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Self

from babel.numbers import format_currency, get_currency_precision, list_currencies

from parrain.kit.errors import AmountOutOfRange, CurrencyMismatch, InvalidAmount, UnknownCurrency

#: The largest amount a signed 64-bit column can hold, in minor units.
MAX_MINOR_UNITS = 2**63 - 1

_ISO_4217_WITHDRAWN = frozenset(
    # Babel still knows these for historical formatting; nobody pays in them today.
    {"FRF", "DEM", "ITL", "ESP", "NLG", "BEF", "ATS", "PTE", "IEP", "FIM", "GRD", "LUF"}
)


@functools.cache
def _known_currencies() -> frozenset[str]:
    return frozenset(c for c in list_currencies() if len(c) == 3) - _ISO_4217_WITHDRAWN


def validate_currency(code: object) -> str:
    """Return ``code`` if it is a current ISO 4217 currency code, else raise UnknownCurrency."""
    if not isinstance(code, str) or code not in _known_currencies():
        raise UnknownCurrency(f"{code!r} is not an ISO 4217 currency code", currency=str(code))
    return code


@functools.cache
def minor_unit_exponent(currency: str) -> int:
    """Number of decimal places of ``currency``'s minor unit (GBP 2, JPY 0, BHD 3)."""
    return int(get_currency_precision(validate_currency(currency)))


def check_minor_units(
    amount: object, *, allow_zero: bool = True, allow_negative: bool = False
) -> int:
    """Return ``amount`` if it is an int within the 64-bit range and the given sign rules."""
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise InvalidAmount(
            f"an amount is an integer number of minor units, not {type(amount).__name__}",
            amount=repr(amount),
        )
    if amount > MAX_MINOR_UNITS or amount < -MAX_MINOR_UNITS:
        raise AmountOutOfRange(
            "the amount exceeds 2^63-1 minor units",
            amount=str(amount),
            maximum=str(MAX_MINOR_UNITS),
        )
    if amount < 0 and not allow_negative:
        raise InvalidAmount("the amount must not be negative", amount=amount)
    if amount == 0 and not allow_zero:
        raise InvalidAmount("the amount must be greater than zero", amount=amount)
    return amount


@dataclass(frozen=True, slots=True, order=False)
class Money:
    """An exact amount: ``minor`` units (pence, cents) of ``currency``.

    Amounts may be negative (a balance can be); ``Money.parse`` and the ledger refuse
    non-positive amounts where a payment is meant.
    """

    minor: int
    currency: str

    def __post_init__(self) -> None:
        check_minor_units(self.minor, allow_negative=True)
        validate_currency(self.currency)

    @classmethod
    def zero(cls, currency: str) -> Self:
        return cls(0, currency)

    @classmethod
    def parse(cls, text: str, currency: str) -> Self:
        """Parse what a person typed (``"50.00"``, ``"50"``, ``"1234.5"``) in ``currency``.

        Refuses floats, exponents, thousands separators and more decimals than the currency
        has; never rounds.
        """
        if not isinstance(text, str):
            raise InvalidAmount(
                f"an amount to parse must be text, not {type(text).__name__}", amount=repr(text)
            )
        exponent = minor_unit_exponent(currency)
        cleaned = text.strip()
        if not cleaned or any(ch not in "0123456789.-+" for ch in cleaned):
            raise InvalidAmount(f"{text!r} is not a decimal amount such as 50.00", amount=text)
        try:
            value = Decimal(cleaned)
        except InvalidOperation:
            raise InvalidAmount(
                f"{text!r} is not a decimal amount such as 50.00", amount=text
            ) from None
        if not value.is_finite():
            raise InvalidAmount(f"{text!r} is not a decimal amount such as 50.00", amount=text)
        scaled = value.scaleb(exponent)
        if scaled != scaled.to_integral_value():
            raise InvalidAmount(
                f"{currency} has {exponent} decimal places; {text!r} has more",
                amount=text,
                currency=currency,
            )
        return cls(int(scaled), currency)

    def __add__(self, other: object) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        self._require_same_currency(other)
        return Money(self.minor + other.minor, self.currency)

    def __sub__(self, other: object) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        self._require_same_currency(other)
        return Money(self.minor - other.minor, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.minor, self.currency)

    def __lt__(self, other: Money) -> bool:
        self._require_same_currency(other)
        return self.minor < other.minor

    def __le__(self, other: Money) -> bool:
        self._require_same_currency(other)
        return self.minor <= other.minor

    def __gt__(self, other: Money) -> bool:
        self._require_same_currency(other)
        return self.minor > other.minor

    def __ge__(self, other: Money) -> bool:
        self._require_same_currency(other)
        return self.minor >= other.minor

    def _require_same_currency(self, other: Money) -> None:
        if self.currency != other.currency:
            raise CurrencyMismatch(
                f"cannot combine {self.currency} with {other.currency}",
                currencies=[self.currency, other.currency],
            )

    def as_decimal(self) -> Decimal:
        """The amount in major units, exactly (``Money(5000, "GBP")`` → ``Decimal("50.00")``)."""
        exponent = minor_unit_exponent(self.currency)
        return Decimal(self.minor).scaleb(-exponent).quantize(Decimal(1).scaleb(-exponent))

    def plain(self) -> str:
        """Locale-free text a person could type back in: ``"50.00"``."""
        return str(self.as_decimal())

    def format(self, locale: str = "en_GB") -> str:
        """Format for people with Babel: ``£50.00`` in en_GB, ``50,00 €`` in fr_FR."""
        return str(format_currency(self.as_decimal(), self.currency, locale=locale))

    def __str__(self) -> str:
        return f"{self.plain()} {self.currency}"
