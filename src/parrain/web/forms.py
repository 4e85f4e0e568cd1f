"""Forms of the pages: the CSRF token every form carries.

A session (a member's or an operator's) keeps a random secret of its own. Each form of
that session carries ``csrf_token``, an HMAC of the secret, and every POST is refused unless
the token it sends matches (the synchronizer-token pattern). The secret itself never
reaches the page, and a token from one session is worthless in another.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from parrain.errors import ParrainError

FIELD = "csrf_token"
#: The shortest session secret accepted: 32 random bytes (``secrets.token_bytes(32)``).
MIN_SECRET_BYTES = 32


class CsrfFailed(ParrainError):
    """The form was not sent from a page of this session (missing or wrong ``csrf_token``)."""

    code = "csrf_failed"
    status_code = 403


def csrf_token(secret: bytes) -> str:
    """The token the forms of the session holding ``secret`` carry."""
    if len(secret) < MIN_SECRET_BYTES:
        raise ValueError("a CSRF secret must hold at least 32 random bytes")
    digest = hmac.new(secret, b"parrain-csrf-v1", hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def check_csrf(secret: bytes, submitted: str | None) -> None:
    """Raise :class:`CsrfFailed` unless ``submitted`` is this session's token."""
    if not submitted or not hmac.compare_digest(submitted.encode(), csrf_token(secret).encode()):
        raise CsrfFailed(
            "this form has expired or was not sent from this site: reload the page and try again"
        )
