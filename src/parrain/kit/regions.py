"""Markets, languages and currencies as validated Pydantic types (ISO 3166, 639-1, 4217)."""

from __future__ import annotations

import functools
from typing import Annotated

from babel import Locale
from pydantic import AfterValidator, Field

from parrain.kit.errors import UnknownCurrency
from parrain.kit.money import validate_currency

#: Babel's two-letter regions that are not countries (unknown, EU, UN, pseudo-locales...).
_NOT_COUNTRIES = frozenset({"ZZ", "EU", "EZ", "UN", "QO", "XA", "XB"})


@functools.cache
def _territories() -> frozenset[str]:
    regions = Locale("en").territories
    return frozenset(c for c in regions if isinstance(c, str) and len(c) == 2) - _NOT_COUNTRIES


@functools.cache
def _languages() -> frozenset[str]:
    return frozenset(c for c in Locale("en").languages if isinstance(c, str) and len(c) == 2)


def validate_market(value: str) -> str:
    code = value.upper()
    if code not in _territories():
        raise ValueError(f"{value!r} is not an ISO 3166 country code such as GB or FR")
    return code


def validate_language(value: str) -> str:
    code = value.lower()
    if code not in _languages():
        raise ValueError(f"{value!r} is not an ISO 639-1 language code such as en or fr")
    return code


def _currency(value: str) -> str:
    try:
        return validate_currency(value.upper())
    except UnknownCurrency:
        raise ValueError(f"{value!r} is not an ISO 4217 currency code such as GBP") from None


Market = Annotated[str, Field(min_length=2, max_length=2), AfterValidator(validate_market)]
Language = Annotated[str, Field(min_length=2, max_length=2), AfterValidator(validate_language)]
Currency = Annotated[str, Field(min_length=3, max_length=3), AfterValidator(_currency)]
