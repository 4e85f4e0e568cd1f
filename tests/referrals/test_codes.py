"""Sponsorship codes: unguessable, readable aloud, and typos refused before any lookup."""

from __future__ import annotations

import itertools
import random
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parrain.errors import InvalidInput
from parrain.referrals.codes import (
    ALPHABET,
    MAX_INPUT_CHARS,
    MAX_RANDOM_SYMBOLS,
    SponsorshipCode,
    check_symbol,
    link_for,
    new_code,
    parse_code,
)
from parrain.referrals.errors import (
    InvalidCode,
    InvalidCodeCharacter,
    InvalidCodeCheck,
    InvalidCodeLength,
)

codes = st.text(alphabet=ALPHABET, min_size=8, max_size=8).map(
    lambda payload: SponsorshipCode(payload + check_symbol(payload))
)
SAMPLE = [new_code() for _ in range(200)] + [
    SponsorshipCode(c) for c in ("000000000", "0000000ZV", "Z0000000F", "7K3M9XQ2D")
]


def test_the_alphabet_is_crockford_base32() -> None:
    assert ALPHABET == "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    assert len(set(ALPHABET)) == 32
    assert not set("ILOU") & set(ALPHABET)


@pytest.mark.parametrize(
    ("payload", "check"),
    [
        ("00000000", "0"),
        ("00000001", "2"),  # x·1
        ("10000000", "D"),  # x^8 = x^5 + x^3 = (x^2 + 1) + x^3 = 0b01101 = 13
        ("7K3M9XQ2", "D"),
        ("MEMBER42", "P"),
        ("0000000Z", "V"),
        ("Z0000000", "F"),
    ],
)
def test_check_symbols_of_known_payloads(payload: str, check: str) -> None:
    assert check_symbol(payload) == check
    assert parse_code(payload + check).canonical == payload + check


def test_a_code_has_a_canonical_and_a_display_form() -> None:
    code = SponsorshipCode("7K3M9XQ2D")
    assert code.canonical == str(code) == "7K3M9XQ2D"
    assert code.display == "7K3M-9XQ2-D"
    assert parse_code("7k3m-9xq2-d") == code


@pytest.mark.parametrize(
    "typed",
    [
        "7K3M9XQ2D",
        "7k3m9xq2d",
        "7K3M-9XQ2-D",
        " 7k3m 9xq2 d\n",
        "7K3M\u20139XQ2\u2013D",  # en dashes, as phones autocorrect hyphens
        "7K3M\u00a09XQ2\u2011D",  # no-break space and non-breaking hyphen from a message
        "7-K-3-M-9-X-Q-2-D",
    ],
)
def test_parse_ignores_case_hyphens_dashes_and_spaces(typed: str) -> None:
    assert parse_code(typed).canonical == "7K3M9XQ2D"


@pytest.mark.parametrize("typed", ["10000000D", "I0000000D", "l0000000d", "LOOO-oooo-D"])
def test_look_alikes_decode_as_crockford_says(typed: str) -> None:
    assert parse_code(typed).canonical == "10000000D"


@pytest.mark.parametrize(
    ("typed", "position"),
    [
        ("7K3M-9XQ2-U", 11),
        ("7K3M#9XQ2D", 5),
        ("7K3M9XQ2\u0131", 9),  # dotless ı upper-cases to I in Python; it is not a code letter
        ("\uff17K3M9XQ2D", 1),  # a full-width 7
        ("7K3M_9XQ2D", 5),
    ],
)
def test_characters_outside_the_alphabet_are_refused(typed: str, position: int) -> None:
    with pytest.raises(InvalidCodeCharacter) as caught:
        parse_code(typed)
    assert caught.value.code == "invalid_code_character"
    assert caught.value.status_code == 422
    assert caught.value.details["position"] == position
    assert f"(character {position}) is not used in sponsorship codes" in caught.value.message


def test_a_u_gets_a_hint() -> None:
    with pytest.raises(InvalidCodeCharacter, match=r"'U' \(character 9\).*\(is it a V\?\)"):
        parse_code("7K3M9XQ2U")


def test_control_characters_are_named_not_printed() -> None:
    with pytest.raises(InvalidCodeCharacter, match=r"U\+0000 \(character 2\)"):
        parse_code("7\x00K3M9XQ2D")


@pytest.mark.parametrize(("typed", "length"), [("", 0), ("7K3M9XQ2", 8), ("7K3M-9XQ2-D0", 10)])
def test_a_wrong_number_of_symbols_is_refused(typed: str, length: int) -> None:
    with pytest.raises(InvalidCodeLength) as caught:
        parse_code(typed)
    assert caught.value.code == "invalid_code_length"
    assert caught.value.details == {"expected": 9, "length": length}
    assert f"has 9 characters (hyphens and spaces aside); this one has {length}" in (
        caught.value.message
    )


def test_input_past_64_characters_is_refused_before_it_is_read() -> None:
    padded = "7K3M9XQ2D".center(MAX_INPUT_CHARS, "-")
    assert parse_code(padded).canonical == "7K3M9XQ2D"
    with pytest.raises(InvalidCodeLength, match="too long") as caught:
        parse_code(padded + "-")
    assert caught.value.details["max_input_chars"] == 64
    # Even a character that would be refused is not reached: length is checked first.
    with pytest.raises(InvalidCodeLength):
        parse_code("#" * 65)


def test_a_wrong_check_symbol_is_refused() -> None:
    with pytest.raises(InvalidCodeCheck) as caught:
        parse_code("7K3M-9XQ2-E")
    assert caught.value.code == "invalid_code_check"
    assert "mistyped or two are swapped" in caught.value.message


def test_code_errors_are_invalid_input() -> None:
    for error in (InvalidCodeCharacter, InvalidCodeLength, InvalidCodeCheck):
        assert issubclass(error, InvalidCode)
        assert issubclass(error, InvalidInput)


def test_parse_refuses_what_is_not_text() -> None:
    with pytest.raises(InvalidCode) as caught:
        parse_code(None)  # type: ignore[arg-type]
    assert caught.value.code == "invalid_code"


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("7k3m9xq2d", InvalidCodeCharacter),
        ("7K3M-9XQ2-D", InvalidCodeCharacter),
        ("I0000000D", InvalidCodeCharacter),
        ("0000000", InvalidCodeLength),
        ("0" * 33, InvalidCodeLength),
        ("7K3M9XQ2E", InvalidCodeCheck),
    ],
)
def test_the_value_takes_only_a_valid_canonical_code(text: str, error: type[InvalidCode]) -> None:
    with pytest.raises(error):
        SponsorshipCode(text)


def test_ten_thousand_new_codes_are_unique_nine_symbols_and_valid() -> None:
    fresh = [new_code() for _ in range(10_000)]
    assert len({code.canonical for code in fresh}) == 10_000
    assert all(len(code.canonical) == 9 for code in fresh)
    assert all(set(code.canonical) <= set(ALPHABET) for code in fresh)
    assert all(parse_code(code.canonical) == code for code in fresh)
    # Every random position takes every symbol: no position is stuck or biased to a few.
    for position in range(8):
        assert {code.canonical[position] for code in fresh} == set(ALPHABET)


def test_longer_codes_can_be_configured() -> None:
    code = new_code(random_symbols=12)
    assert len(code.canonical) == 13
    assert len(code.display) == 16
    assert code.display[4] == code.display[9] == code.display[14] == "-"
    assert parse_code(code.display, random_symbols=12) == code
    with pytest.raises(InvalidCodeLength):
        parse_code(code.display)
    with pytest.raises(InvalidCodeLength):
        parse_code("7K3M9XQ2D", random_symbols=12)


@pytest.mark.parametrize("random_symbols", [7, 31, 0, True, 8.0])
def test_code_lengths_are_bounded(random_symbols: int) -> None:
    with pytest.raises(ValueError, match="random symbols"):
        new_code(random_symbols=random_symbols)
    with pytest.raises(ValueError, match="random symbols"):
        parse_code("7K3M9XQ2D", random_symbols=random_symbols)


@given(codes, st.randoms(use_true_random=False))
def test_every_code_reads_back_from_what_people_type(
    code: SponsorshipCode, rnd: random.Random
) -> None:
    assert parse_code(code.canonical) == code
    assert parse_code(code.display) == code
    assert parse_code(code.display.lower()) == code
    spaced = "".join(symbol + rnd.choice(["", "", "-", " ", " - "]) for symbol in code.canonical)
    assert parse_code(spaced) == code
    look_alikes = "".join(
        rnd.choice("IiLl1") if s == "1" else rnd.choice("Oo0") if s == "0" else s
        for s in code.canonical
    )
    assert parse_code(look_alikes) == code


@given(
    codes,
    st.integers(min_value=0, max_value=8),
    st.sampled_from(ALPHABET + string.ascii_lowercase.replace("u", "") + "ILO"),
)
def test_any_single_substitution_is_refused(
    code: SponsorshipCode, position: int, replacement: str
) -> None:
    typed = code.canonical[:position] + replacement + code.canonical[position + 1 :]
    if typed.upper().translate(str.maketrans("ILO", "110")) == code.canonical:
        return  # the same symbol in lower case or as a look-alike: not an error
    with pytest.raises(InvalidCodeCheck):
        parse_code(typed)


@given(codes, st.integers(min_value=0, max_value=7))
def test_any_adjacent_transposition_is_refused(code: SponsorshipCode, position: int) -> None:
    symbols = list(code.canonical)
    if symbols[position] == symbols[position + 1]:
        return
    symbols[position], symbols[position + 1] = symbols[position + 1], symbols[position]
    with pytest.raises(InvalidCodeCheck):
        parse_code("".join(symbols))


def test_on_a_sample_every_substitution_and_every_transposition_is_refused() -> None:
    refused = 0
    for code in SAMPLE:
        symbols = code.canonical
        for position, replacement in itertools.product(range(9), ALPHABET):
            if replacement == symbols[position]:
                continue
            with pytest.raises(InvalidCodeCheck):
                parse_code(symbols[:position] + replacement + symbols[position + 1 :])
            refused += 1
        for first, second in itertools.combinations(range(9), 2):  # adjacent or not
            if symbols[first] == symbols[second]:
                continue
            swapped = list(symbols)
            swapped[first], swapped[second] = swapped[second], swapped[first]
            with pytest.raises(InvalidCodeCheck):
                parse_code("".join(swapped))
            refused += 1
    assert refused > len(SAMPLE) * 9 * 31


def test_every_pair_of_symbols_swapped_at_every_adjacent_position_is_refused() -> None:
    # Payload positions 0..7, every ordered pair of different symbols: 7 x 992 codes.
    for position, (left, right) in itertools.product(range(7), itertools.permutations(ALPHABET, 2)):
        payload = "0" * position + left + right + "0" * (6 - position)
        swapped = "0" * position + right + left + "0" * (6 - position)
        with pytest.raises(InvalidCodeCheck):
            parse_code(swapped + check_symbol(payload))
    # The last payload symbol and the check symbol: every pair that occurs.
    for left, right in itertools.product(ALPHABET, repeat=2):
        code = "000000" + left + right
        code += check_symbol(code)
        if code[7] != code[8]:
            with pytest.raises(InvalidCodeCheck):
                parse_code(code[:7] + code[8] + code[7])


def test_the_longest_codes_still_catch_every_transposition() -> None:
    code = new_code(random_symbols=MAX_RANDOM_SYMBOLS).canonical
    assert len(code) == 31
    for first, second in itertools.combinations(range(31), 2):
        if code[first] != code[second]:
            swapped = list(code)
            swapped[first], swapped[second] = swapped[second], swapped[first]
            with pytest.raises(InvalidCodeCheck):
                parse_code("".join(swapped), random_symbols=MAX_RANDOM_SYMBOLS)


@settings(max_examples=50)
@given(codes)
def test_links_carry_the_canonical_form(code: SponsorshipCode) -> None:
    link = link_for(code, base_url="https://parrain.example")
    assert link == f"https://parrain.example/r/{code.canonical}"
    assert parse_code(link.rsplit("/", 1)[1]) == code


def test_link_bases() -> None:
    code = SponsorshipCode("7K3M9XQ2D")
    assert link_for(code, base_url="https://parrain.example/") == (
        "https://parrain.example/r/7K3M9XQ2D"
    )
    assert link_for(code, base_url="https://shop.example/fr") == (
        "https://shop.example/fr/r/7K3M9XQ2D"
    )
    assert link_for(code, base_url="http://localhost:8000") == "http://localhost:8000/r/7K3M9XQ2D"
    for bad in ("parrain.example", "ftp://parrain.example", "https://x.example/?a=1", "https:///r"):
        with pytest.raises(ValueError, match="link base"):
            link_for(code, base_url=bad)
