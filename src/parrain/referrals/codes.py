"""Sponsorship codes: what a member shares, what a friend types or follows. No database here.

A code is :data:`RANDOM_SYMBOLS` random symbols (5 bits each, 40 bits from :mod:`secrets`)
followed by one check symbol, all from Crockford's base32 alphabet
``0123456789ABCDEFGHJKMNPQRSTVWXYZ``: no I, L, O or U, so nothing reads as another symbol or
spells a common word. Two spellings of one code:

* ``canonical`` — ``7K3M9XQ2D``: upper case, no separator. The database stores it under a
  UNIQUE constraint and links carry it;
* ``display`` — ``7K3M-9XQ2-D``: groups of four for people to read aloud and copy.

**The check symbol** (ADR 0006). Symbols are read as elements of GF(32), the field
GF(2)[x]/(x^5 + x^2 + 1), and a code ``c_0 … c_n`` is valid when
``c_0·x^n + c_1·x^(n-1) + … + c_n = 0``; the check symbol ``c_n`` is the one that makes the
sum zero. Changing one symbol by ``e ≠ 0`` at weight ``x^k`` changes the sum by ``e·x^k ≠ 0``;
swapping two different symbols at weights ``x^i`` and ``x^j`` changes it by
``(c_i - c_j)(x^i - x^j)``, which is not zero because ``x`` has order 31 and codes are at most
31 symbols long. So **every single-symbol substitution and every transposition of two
symbols, adjacent or not, is refused** — a Luhn mod 32 check would miss the ``0Z ↔ Z0``
swap — and a random string passes with probability 1/32. The check is in the alphabet, so
codes stay easy to read aloud and to put in a link.

**Reading what people type** (:func:`parse_code`): upper or lower case; hyphens, dashes and
whitespace are ignored; I and L read as 1 and O as 0 (Crockford's decoding); anything else
outside the alphabet, U included, is refused; so are a wrong number of symbols and a wrong
check symbol — each with its own error code and a message a person understands. Input longer
than :data:`MAX_INPUT_CHARS` is refused before any other work.

**Links** (:func:`link_for`) carry the canonical form: one code, one URL.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from parrain.referrals.errors import (
    InvalidCode,
    InvalidCodeCharacter,
    InvalidCodeCheck,
    InvalidCodeLength,
)

#: Crockford's base32 alphabet; a symbol's value is its index.
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

#: Random symbols in a new code (40 bits). The check symbol comes on top.
RANDOM_SYMBOLS = 8
MIN_RANDOM_SYMBOLS = 8
#: A whole code (random symbols + check) stays within 31 symbols, the order of ``x`` in
#: GF(32), so that the check catches every transposition.
MAX_RANDOM_SYMBOLS = 30

#: Longer input is refused before it is read: no code, however spaced, needs more.
MAX_INPUT_CHARS = 64

#: Symbols per group in the display form.
GROUP_SIZE = 4

_FIELD_MODULUS = 0b100101  # x^5 + x^2 + 1: irreducible, hence primitive since 31 is prime
_VALUES = {symbol: value for value, symbol in enumerate(ALPHABET)}
_DECODING = {
    **_VALUES,
    **{symbol.lower(): value for symbol, value in _VALUES.items()},
    **dict.fromkeys("IiLl", _VALUES["1"]),
    **dict.fromkeys("Oo", _VALUES["0"]),
}
# ASCII hyphen-minus, then the dashes that phones and word processors substitute for it.
_SEPARATORS = frozenset("-\u2010\u2011\u2012\u2013\u2014\u2212")


@dataclass(frozen=True, slots=True)
class SponsorshipCode:
    """A valid sponsorship code in canonical form; building one checks it.

    Read what people type with :func:`parse_code`; this constructor takes only the exact
    canonical form (from the database, say).
    """

    canonical: str

    def __post_init__(self) -> None:
        _require_canonical(self.canonical)

    @property
    def display(self) -> str:
        """The code in groups of four, for people: ``7K3M-9XQ2-D``."""
        return "-".join(
            self.canonical[start : start + GROUP_SIZE]
            for start in range(0, len(self.canonical), GROUP_SIZE)
        )

    def __str__(self) -> str:
        return self.canonical


def new_code(*, random_symbols: int = RANDOM_SYMBOLS) -> SponsorshipCode:
    """A new code of ``random_symbols`` random symbols and a check symbol.

    Codes are not unique by construction (2^40 of them at the default length): the database's
    UNIQUE constraint decides, and enrolment draws again when it refuses one.
    """
    _require_random_symbols(random_symbols)
    bits = secrets.randbits(5 * random_symbols)
    payload = "".join(
        ALPHABET[(bits >> (5 * shift)) & 0b11111] for shift in reversed(range(random_symbols))
    )
    return SponsorshipCode(payload + check_symbol(payload))


def parse_code(text: str, *, random_symbols: int = RANDOM_SYMBOLS) -> SponsorshipCode:
    """Read a code as a person typed it or a link carried it; see the module doc for rules.

    Raises :class:`InvalidCodeCharacter`, :class:`InvalidCodeLength` or
    :class:`InvalidCodeCheck` (in that order of precedence).
    """
    _require_random_symbols(random_symbols)
    expected = random_symbols + 1
    if not isinstance(text, str):
        raise InvalidCode("a sponsorship code is text")
    if len(text) > MAX_INPUT_CHARS:
        raise InvalidCodeLength(
            f"this is too long to be a sponsorship code, which has {expected} characters",
            expected=expected,
            max_input_chars=MAX_INPUT_CHARS,
        )
    values: list[int] = []
    for position, char in enumerate(text, start=1):
        if char in _SEPARATORS or char.isspace():
            continue
        value = _DECODING.get(char)
        if value is None:
            raise InvalidCodeCharacter(_character_message(char, position), position=position)
        values.append(value)
    if len(values) != expected:
        raise InvalidCodeLength(
            f"a sponsorship code has {expected} characters (hyphens and spaces aside); "
            f"this one has {len(values)}",
            expected=expected,
            length=len(values),
        )
    if _weighted_sum(values) != 0:
        raise InvalidCodeCheck(
            "this sponsorship code does not exist: a character is probably mistyped "
            "or two are swapped"
        )
    return SponsorshipCode("".join(ALPHABET[value] for value in values))


def check_symbol(symbols: str) -> str:
    """The check symbol that completes ``symbols`` (canonical symbols) into a valid code."""
    return ALPHABET[_times_x(_weighted_sum(_canonical_values(symbols)))]


def link_for(code: SponsorshipCode, *, base_url: str) -> str:
    """The sponsorship link of ``code``: ``{base_url}/r/{canonical}``.

    The canonical form, not the display one, so that each code has exactly one URL (what
    click counting, caches and link previews key on); the route reads it with
    :func:`parse_code`, so a hand-typed display form reaches the same page. ``base_url`` is a
    deployment setting (``https://example.com`` or ``https://example.com/fr``); a trailing
    slash is dropped and anything but an http(s) URL without query or fragment is a
    :class:`ValueError`.
    """
    parts = urlsplit(base_url)
    if parts.scheme not in ("https", "http") or not parts.netloc or parts.query or parts.fragment:
        raise ValueError(
            f"a link base is an http(s) URL without query or fragment, not {base_url!r}"
        )
    return f"{base_url.rstrip('/')}/r/{code.canonical}"


def _times_x(value: int) -> int:
    """Multiply a GF(32) element by ``x``."""
    value <<= 1
    if value & 0b100000:
        value ^= _FIELD_MODULUS
    return value


def _weighted_sum(values: Iterable[int]) -> int:
    """``v_0·x^n + … + v_n`` in GF(32), by Horner's rule (addition in GF(2^k) is XOR)."""
    total = 0
    for value in values:
        total = _times_x(total) ^ value
    return total


def _require_canonical(text: str) -> None:
    if not isinstance(text, str):
        raise InvalidCode("a sponsorship code is text")
    if not MIN_RANDOM_SYMBOLS + 1 <= len(text) <= MAX_RANDOM_SYMBOLS + 1:
        raise InvalidCodeLength(
            f"a sponsorship code has {MIN_RANDOM_SYMBOLS + 1} to {MAX_RANDOM_SYMBOLS + 1} "
            f"characters; this one has {len(text)}",
            length=len(text),
        )
    if _weighted_sum(_canonical_values(text)) != 0:
        raise InvalidCodeCheck(f"{text} is not a valid sponsorship code: its check fails")


def _canonical_values(text: str) -> list[int]:
    values = []
    for position, char in enumerate(text, start=1):
        value = _VALUES.get(char)
        if value is None:
            raise InvalidCodeCharacter(
                f"{_shown(char)} (character {position}) is not canonical: a stored code uses "
                "upper-case symbols of the alphabet only; read typed codes with parse_code",
                position=position,
            )
        values.append(value)
    return values


def _require_random_symbols(random_symbols: int) -> None:
    if (
        isinstance(random_symbols, bool)
        or not isinstance(random_symbols, int)
        or not MIN_RANDOM_SYMBOLS <= random_symbols <= MAX_RANDOM_SYMBOLS
    ):
        raise ValueError(
            f"a code has {MIN_RANDOM_SYMBOLS} to {MAX_RANDOM_SYMBOLS} random symbols, "
            f"not {random_symbols!r}"
        )


def _character_message(char: str, position: int) -> str:
    hint = " (is it a V?)" if char in "Uu" else ""
    return (
        f"{_shown(char)} (character {position}) is not used in sponsorship codes{hint}: "
        "they are made of digits and the letters A to Z except U"
    )


def _shown(char: str) -> str:
    return f"'{char}'" if char.isprintable() and not char.isspace() else f"U+{ord(char):04X}"
