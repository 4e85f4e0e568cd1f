"""The member token: how the marketplace's backend sends one of its users to their pages.

The marketplace signs a short-lived token for the user who taps "Cash Rewards" in its app;
the app opens ``/m/enter?token=…`` and parrain, holding the same secret, checks it. The token
is a compact JWS (RFC 7515) with HS256 (HMAC-SHA256) and JSON claims, so any JWT library can
mint one (docs/member-tokens.md, ADR 21)::

    {"aud": "parrain-member", "sub": "<the marketplace's user id>", "market": "GB",
     "iat": 1772355600, "exp": 1772355900, "nonce": "<random>"}

``sub`` is the marketplace's own user id: the marketplace does not know parrain's
pseudonymous member id. Pure functions of the token, the secret and the time; nothing is
stored and nothing is logged (a token is a credential, a user id is personal data).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from parrain.kit.pii import Pii
from parrain.kit.regions import validate_market
from parrain.members.errors import (
    MemberTokenExpired,
    MemberTokenMalformed,
    MemberTokenNotYetValid,
    MemberTokenTampered,
    MemberTokenTooLongLived,
    MemberTokenWrongAudience,
)
from parrain.members.schemas import MAX_MARKETPLACE_USER_ID

AUDIENCE = "parrain-member"
ALGORITHM = "HS256"
#: The longest lifetime (``exp`` − ``iat``) accepted, in seconds: ten minutes.
MAX_LIFETIME_SECONDS = 600
#: How far the marketplace's clock may be from ours, in seconds, either way.
CLOCK_SKEW_SECONDS = 60
#: The shortest shared secret accepted, in bytes.
MIN_SECRET_BYTES = 32
#: Longer than any honest token: anything past it is refused before it is parsed.
MAX_TOKEN_CHARS = 2048
_NONCE = re.compile(r"[A-Za-z0-9_-]{16,128}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_HEADER = {"alg": ALGORITHM, "typ": "JWT"}


@dataclass(frozen=True, slots=True)
class MemberTokenClaims:
    """What a valid token says: who (the marketplace's user id), in which market, when."""

    subject: Pii
    market: str
    issued_at: datetime
    expires_at: datetime
    nonce: str


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _decode(text: str) -> bytes:
    if not re.fullmatch(r"[A-Za-z0-9_-]*", text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _check_secret(secret: bytes) -> None:
    if len(secret) < MIN_SECRET_BYTES:
        raise ValueError(f"a member token secret holds at least {MIN_SECRET_BYTES} bytes")


def _signature(secret: bytes, signing_input: str) -> bytes:
    return hmac.new(secret, signing_input.encode("ascii"), hashlib.sha256).digest()


def mint_member_token(
    *,
    secret: bytes,
    subject: str,
    market: str,
    now: datetime,
    lifetime_seconds: int = 300,
    nonce: str | None = None,
) -> str:
    """A token for the marketplace user ``subject`` of ``market``, valid from ``now`` for
    ``lifetime_seconds`` (at most :data:`MAX_LIFETIME_SECONDS`).

    This is what the marketplace's backend does; parrain mints one only for the demo and
    for support (``parrain member token``)."""
    _check_secret(secret)
    if not 1 <= lifetime_seconds <= MAX_LIFETIME_SECONDS:
        raise ValueError(f"a member token lives 1 to {MAX_LIFETIME_SECONDS} seconds")
    issued = int(now.timestamp())
    claims = {
        "aud": AUDIENCE,
        "sub": subject,
        "market": validate_market(market),
        "iat": issued,
        "exp": issued + lifetime_seconds,
        "nonce": nonce if nonce is not None else secrets.token_urlsafe(18),
    }
    header = _encode(json.dumps(_HEADER, separators=(",", ":")).encode())
    payload = _encode(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = f"{header}.{payload}"
    return f"{signing_input}.{_encode(_signature(secret, signing_input))}"


def _json_object(part: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(_decode(part))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise MemberTokenMalformed(f"the token's {what} is not base64url JSON") from None
    if not isinstance(value, dict):
        raise MemberTokenMalformed(f"the token's {what} is not a JSON object")
    return value


def _seconds(claims: dict[str, Any], name: str, *, required: bool = True) -> int | None:
    value = claims.get(name)
    if value is None and not required:
        return None
    # bool is an int in Python: ``true`` is not a time.
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**33:
        raise MemberTokenMalformed(f"the token's {name!r} claim is not a time in seconds")
    return value


def _text_claim(claims: dict[str, Any], name: str, max_length: int) -> str:
    value = claims.get(name)
    if not isinstance(value, str) or not value.strip() or len(value) > max_length:
        raise MemberTokenMalformed(f"the token's {name!r} claim is missing or not valid text")
    if _CONTROL.search(value):
        raise MemberTokenMalformed(f"the token's {name!r} claim holds control characters")
    return value


def _moment(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def verify_member_token(
    token: str,
    *,
    secret: bytes,
    now: datetime,
    clock_skew_seconds: int = CLOCK_SKEW_SECONDS,
    max_lifetime_seconds: int = MAX_LIFETIME_SECONDS,
) -> MemberTokenClaims:
    """The claims of ``token`` if the marketplace signed it with ``secret`` for parrain's
    member pages and it is valid at ``now`` (give or take ``clock_skew_seconds``).

    Refused, each with its own error: :class:`MemberTokenMalformed` (not a compact HS256
    token, or a claim missing or of the wrong kind), :class:`MemberTokenTampered` (bad
    signature), :class:`MemberTokenWrongAudience`, :class:`MemberTokenTooLongLived`,
    :class:`MemberTokenNotYetValid` and :class:`MemberTokenExpired`. The signature is
    checked before anything the payload says is believed.
    """
    _check_secret(secret)
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_CHARS:
        raise MemberTokenMalformed("the member token is missing or too long")
    parts = token.strip().split(".")
    if len(parts) != 3 or not all(parts):
        raise MemberTokenMalformed("a member token has three dot-separated parts")
    header_part, payload_part, signature_part = parts
    header = _json_object(header_part, "header")
    # Only HS256: never "none", never an algorithm the token chooses for itself.
    if header.get("alg") != ALGORITHM or "crit" in header:
        raise MemberTokenMalformed(f"a member token is signed with {ALGORITHM}")
    try:
        signature = _decode(signature_part)
    except (ValueError, binascii.Error):
        raise MemberTokenMalformed("the token's signature is not base64url") from None
    expected = _signature(secret, f"{header_part}.{payload_part}")
    if not hmac.compare_digest(signature, expected):
        raise MemberTokenTampered(
            "the member token's signature does not match: it was changed or signed with "
            "another secret"
        )
    claims = _json_object(payload_part, "payload")
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if AUDIENCE not in audiences:
        raise MemberTokenWrongAudience(f"the member token is not meant for {AUDIENCE!r}")
    subject = _text_claim(claims, "sub", MAX_MARKETPLACE_USER_ID)
    market_text = _text_claim(claims, "market", 2)
    try:
        market = validate_market(market_text)
    except ValueError:
        raise MemberTokenMalformed("the token's 'market' claim is not a country code") from None
    nonce = claims.get("nonce")
    if not isinstance(nonce, str) or not _NONCE.fullmatch(nonce):
        raise MemberTokenMalformed(
            "the token's 'nonce' claim must be 16 to 128 base64url characters"
        )
    issued = _seconds(claims, "iat")
    expires = _seconds(claims, "exp")
    not_before = _seconds(claims, "nbf", required=False)
    assert issued is not None
    assert expires is not None
    if expires <= issued:
        raise MemberTokenMalformed("the member token expires before it was issued")
    if expires - issued > max_lifetime_seconds:
        raise MemberTokenTooLongLived(
            f"a member token may live {max_lifetime_seconds} seconds at most",
            max_lifetime_seconds=max_lifetime_seconds,
        )
    skew = timedelta(seconds=clock_skew_seconds)
    starts = _moment(max(issued, not_before or 0))
    if now + skew < starts:
        raise MemberTokenNotYetValid("the member token is not valid yet: check the clocks")
    if now - skew >= _moment(expires):
        raise MemberTokenExpired("the member token has expired: open the page again from the app")
    return MemberTokenClaims(
        subject=Pii(subject.strip()),
        market=market,
        issued_at=_moment(issued),
        expires_at=_moment(expires),
        nonce=nonce,
    )
