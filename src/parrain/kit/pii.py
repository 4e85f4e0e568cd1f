"""Personal data that cannot slip into a log line: the :class:`Pii` type and a log processor.

``Pii`` wraps a string and shows only a mask in every textual form (``str``, ``repr``,
f-strings, ``format``, ``%``); the value comes out only through :meth:`Pii.reveal`, a call a
reviewer can search for. It deliberately does not subclass ``str``: a ``str`` subclass leaks
through concatenation, slicing, ``.lower()`` and ``json.dumps``, which read the characters
and never ask ``__str__``.

:func:`mask_personal_data` is the structlog processor that replaces every ``Pii`` in an event
(nested dicts and lists included) with :data:`MASK`, and, as a second line of defence for
plain strings, masks values stored under keys named like personal data (``email``,
``phone``, ``paypal_receiver``, ``username``, ``client_ip``, ``user_agent``...).
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Mapping
from typing import Any, Final, final

from pydantic import GetCoreSchemaHandler
from pydantic_core import CoreSchema, core_schema
from structlog.typing import EventDict, WrappedLogger

#: What a log line shows in place of personal data.
MASK: Final = "***"
_TEXT: Final = "Pii('***')"
#: Deeper than this, a logged structure is masked whole rather than walked (and a cycle ends).
_MAX_DEPTH: Final = 12

_SENSITIVE_WORDS: Final = frozenset(
    {
        "email", "emails", "phone", "phones", "telephone", "paypal", "username", "usernames",
        "useragent", "ip", "ips", "ipv",
    }
)  # fmt: skip
_SENSITIVE_PAIRS: Final = frozenset(
    {
        ("e", "mail"), ("pay", "pal"), ("user", "name"), ("user", "agent"), ("forwarded", "for"),
        ("remote", "addr"), ("remote", "address"),
    }
)  # fmt: skip
_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")


@final
class Pii:
    """A piece of personal data: masked wherever it is turned into text.

    Equality and hashing use the value, so ``Pii`` works as a dict key or in a set. In a
    Pydantic model a field typed ``Pii`` accepts a string, and JSON output shows the mask
    (like ``SecretStr``): sending the value out is a deliberate ``reveal()`` into a ``str``.
    """

    __slots__ = ("_value",)
    _value: str

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            # The offending value is not quoted: it may be personal data of another type.
            raise TypeError(f"Pii wraps a str, not {type(value).__name__}")
        object.__setattr__(self, "_value", value)

    def reveal(self) -> str:
        """The value itself. Call it only where the value must leave: encrypt, hash, send."""
        return self._value

    def __str__(self) -> str:
        return _TEXT

    def __repr__(self) -> str:
        return _TEXT

    def __format__(self, format_spec: str) -> str:
        return format(_TEXT, format_spec)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Pii):
            return NotImplemented
        return self._value == other._value

    def __hash__(self) -> int:
        return hash((Pii, self._value))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Pii is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("Pii is immutable")

    def __reduce__(self) -> tuple[type[Pii], tuple[str]]:
        return (Pii, (self._value,))

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source_type: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        from_text = core_schema.no_info_after_validator_function(cls, core_schema.str_schema())
        return core_schema.json_or_python_schema(
            json_schema=from_text,
            python_schema=core_schema.union_schema(
                [core_schema.is_instance_schema(cls), from_text]
            ),
            serialization=core_schema.plain_serializer_function_ser_schema(
                _masked, when_used="json"
            ),
        )


def _masked(_: Pii) -> str:
    return MASK


@functools.lru_cache(maxsize=1024)
def is_sensitive_key(key: str) -> bool:
    """Whether a log key is named like personal data: ``email``, ``userAgent``, ``client_ip``.

    Keys are split into words (snake, kebab and camel case) so that ``ip`` matches
    ``client_ip`` and ``IPAddress`` but not ``recipient`` or ``zip``.
    """
    words = [word.lower() for word in _WORD.findall(key)]
    if any(word in _SENSITIVE_WORDS for word in words):
        return True
    return any(pair in _SENSITIVE_PAIRS for pair in itertools.pairwise(words))


def _mask_value(value: object, depth: int) -> object:
    if isinstance(value, Pii):
        return MASK
    if depth >= _MAX_DEPTH:
        return MASK if isinstance(value, Mapping | list | tuple | set | frozenset) else value
    if isinstance(value, Mapping):
        return {key: _mask_entry(key, item, depth + 1) for key, item in value.items()}
    if type(value) is tuple:
        return tuple(_mask_value(item, depth + 1) for item in value)
    if isinstance(value, list | tuple | set | frozenset):
        return [_mask_value(item, depth + 1) for item in value]
    return value


def _mask_entry(key: object, value: object, depth: int) -> object:
    if (
        isinstance(key, str)
        and value is not None
        and not isinstance(value, bool)
        and is_sensitive_key(key)
    ):
        return MASK
    return _mask_value(value, depth)


def mask_personal_data(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """structlog processor: mask every :class:`Pii` and every value under a personal key.

    Nested containers are rebuilt, never changed in place: the caller's dicts stay intact.
    ``None`` and booleans under a personal key are kept (``email_verified=True`` tells
    nothing about a person).
    """
    return {key: _mask_entry(key, value, 0) for key, value in event_dict.items()}
