"""Unambiguous byte framing for associated data and MAC input."""

from __future__ import annotations


def frame(*parts: str | bytes) -> bytes:
    """Concatenate ``parts``, each prefixed by its 4-byte length.

    Plain joining would let ``("member:1", "2:email")`` and ``("member:12", ":email")`` meet;
    with lengths in front, different parts always give different bytes.
    """
    out = bytearray()
    for part in parts:
        raw = part.encode("utf-8") if isinstance(part, str) else part
        out += len(raw).to_bytes(4, "big")
        out += raw
    return bytes(out)


def require_label(value: object, *, name: str) -> str:
    """``value`` if it is non-empty text; an empty subject, context or purpose binds nothing."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be non-empty text")
    return value
