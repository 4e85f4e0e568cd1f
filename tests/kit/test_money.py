"""Money: integer minor units with a currency; never a float, never rounded."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from parrain.kit.errors import AmountOutOfRange, CurrencyMismatch, InvalidAmount, UnknownCurrency
from parrain.kit.money import MAX_MINOR_UNITS, Money, minor_unit_exponent


def test_parse_reads_what_people_type_exactly() -> None:
    assert Money.parse("50.00", "GBP") == Money(5000, "GBP")
    assert Money.parse("50", "GBP") == Money(5000, "GBP")
    assert Money.parse(" 1234.5 ", "EUR") == Money(123450, "EUR")
    assert Money.parse("1000", "JPY") == Money(1000, "JPY")
    assert Money.parse("1.234", "BHD") == Money(1234, "BHD")


@pytest.mark.parametrize("text", ["50.005", "0.001"])
def test_parse_refuses_more_decimals_than_the_currency_has(text: str) -> None:
    with pytest.raises(InvalidAmount) as caught:
        Money.parse(text, "GBP")
    assert caught.value.code == "invalid_amount"
    assert "2 decimal places" in caught.value.message


@pytest.mark.parametrize("text", ["", "abc", "1e3", "1,000.00", "NaN", "Infinity", "--1", "1.2.3"])
def test_parse_refuses_what_is_not_a_plain_decimal(text: str) -> None:
    with pytest.raises(InvalidAmount):
        Money.parse(text, "GBP")


def test_parse_refuses_a_float_even_an_exact_one() -> None:
    with pytest.raises(InvalidAmount):
        Money.parse(50.0, "GBP")  # type: ignore[arg-type]


@pytest.mark.parametrize("amount", [0.5, 1.0, Decimal("1"), "100", True, None])
def test_money_holds_only_integers(amount: object) -> None:
    with pytest.raises(InvalidAmount):
        Money(amount, "GBP")  # type: ignore[arg-type]


def test_amounts_past_the_64_bit_range_are_refused() -> None:
    assert Money(MAX_MINOR_UNITS, "GBP").minor == 2**63 - 1
    with pytest.raises(AmountOutOfRange) as caught:
        Money(2**63, "GBP")
    assert caught.value.code == "amount_out_of_range"
    with pytest.raises(AmountOutOfRange):
        Money.parse("92233720368547758.08", "GBP")


@pytest.mark.parametrize("code", ["XXQ", "gbp", "GB", "", "FRF"])
def test_unknown_currencies_are_refused(code: str) -> None:
    with pytest.raises(UnknownCurrency) as caught:
        Money(100, code)
    assert caught.value.code == "unknown_currency"


def test_mixed_currencies_never_combine() -> None:
    with pytest.raises(CurrencyMismatch):
        Money(100, "GBP") + Money(100, "EUR")
    with pytest.raises(CurrencyMismatch):
        Money(100, "GBP") - Money(100, "EUR")
    with pytest.raises(CurrencyMismatch):
        _ = Money(100, "GBP") < Money(100, "EUR")
    assert Money(100, "GBP") + Money(250, "GBP") == Money(350, "GBP")
    assert Money(100, "GBP") - Money(250, "GBP") == Money(-150, "GBP")


def test_formatting_follows_the_locale() -> None:
    assert Money(500000, "GBP").format("en_GB") == "£5,000.00"
    assert Money(500000, "EUR").format("fr_FR") == "5\u202f000,00\xa0€"
    assert Money(5000, "EUR").format("en_GB") == "€50.00"
    assert Money(1000, "JPY").format("en_GB") == "JP¥1,000"
    assert Money(5, "GBP").plain() == "0.05"
    assert str(Money(-150, "EUR")) == "-1.50 EUR"


def test_minor_unit_exponents() -> None:
    assert [minor_unit_exponent(c) for c in ("GBP", "EUR", "JPY", "BHD")] == [2, 2, 0, 3]


@given(st.integers(min_value=-MAX_MINOR_UNITS, max_value=MAX_MINOR_UNITS))
def test_plain_text_parses_back_to_the_same_amount(minor: int) -> None:
    for currency in ("GBP", "JPY", "BHD"):
        money = Money(minor, currency)
        assert Money.parse(money.plain(), currency) == money
