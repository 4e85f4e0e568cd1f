"""Keyed lookup hashes: find a person by email without storing the email in the clear.

Personal fields are stored twice: encrypted (to read back, see
:mod:`parrain.kit.crypto.envelope`) and as an HMAC-SHA256 under the lookup key (to find
rows). A plain SHA-256 of an email can be reversed by hashing every known address; without
the lookup key, these cannot. Callers normalise a value first, so that ``" Ann@Example.org"``
and ``"ann@example.org"`` find the same member.
"""

from __future__ import annotations

import functools
import hmac
import unicodedata

from parrain.kit.crypto._framing import frame, require_label
from parrain.kit.crypto.keys import LookupKey

#: Length of every lookup hash: HMAC-SHA256 in lowercase hex.
LOOKUP_HASH_LENGTH = 64

_LOOKUP_LABEL = b"parrain/lookup"


def lookup_hash(lookup_key: LookupKey, value: str, *, purpose: str) -> str:
    """HMAC-SHA256 of ``purpose`` and ``value``: 64 lowercase hex characters.

    The same value gives the same hash for the same purpose, which is what makes it a lookup;
    ``purpose`` (``"member.email"``, ``"payout.paypal_receiver"``) keeps hashes of one value
    used in two roles from matching, so one column cannot be joined against another.
    """
    raw = value.encode("utf-8")
    message = (
        _framed_purpose(purpose) + len(raw).to_bytes(4, "big") + raw
    )  # frame(label, purpose, value)
    return hmac.digest(lookup_key.secret, message, "sha256").hex()


@functools.lru_cache(maxsize=64)
def _framed_purpose(purpose: str) -> bytes:
    """The framed label and purpose every lookup hash of ``purpose`` starts with."""
    require_label(purpose, name="purpose")
    return frame(_LOOKUP_LABEL, purpose)


def normalise_email(text: str) -> str:
    """Trim, compose Unicode (NFC) and lowercase an email address before hashing it.

    Lowercasing the local part is not what RFC 5321 promises, but it is what every mail
    provider people use does. Plus-addressing (``ann+promo@...``) and dots are kept on
    purpose: this normaliser decides which row is the same address, and ``ann+1`` is a
    different address; spotting one person behind many aliases is fraud's job, which
    compares its own, more aggressive canonical form.
    """
    return unicodedata.normalize("NFC", text.strip()).lower()


def normalise_identifier(text: str) -> str:
    """Trim and compose Unicode (NFC) an opaque identifier (marketplace user id, username).

    Case is kept: whether ``Ann`` and ``ann`` are one account is the marketplace's rule.
    """
    return unicodedata.normalize("NFC", text.strip())
