"""The member's page session: one cookie, sealed with a key derived from the web session key.

After ``/m/enter`` checked the marketplace's token, the browser holds ``parrain_member``:
who (the member id once they are one; before enrolment, the marketplace user id, which the
enrolment needs), the user id's lookup hash, the market, when the session ends and the
random secret of its CSRF tokens. The cookie is sealed with AES-GCM (authenticated
encryption: a changed byte fails to open, like a bad signature, and the user id it may hold
is not readable in the browser's storage). HttpOnly, SameSite=Lax, Secure unless the
settings turn it off, scoped to ``/m``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from fastapi import Depends, Request, Response

from parrain.config import Settings
from parrain.kit.clock import Clock
from parrain.kit.pii import Pii
from parrain.web.deps import get_clock, get_settings

COOKIE = "parrain_member"
COOKIE_PATH = "/m"
#: A sealed session is a few hundred characters; anything far longer is not ours.
_MAX_COOKIE_CHARS = 4096
_NONCE_BYTES = 12
_LABEL = b"parrain-member-session-v1"


@dataclass(frozen=True, slots=True)
class MemberSession:
    """Who this browser is on the member pages, until ``expires_at``."""

    user_hash: str
    market: str
    expires_at: datetime
    csrf_secret: bytes
    member_id: UUID | None = None
    #: The marketplace user id, kept only until the person is a member (enrolment needs it).
    user_id: Pii | None = None

    def as_member(self, member_id: UUID) -> MemberSession:
        return replace(self, member_id=member_id, user_id=None)


def new_session(
    *,
    user_hash: str,
    market: str,
    member_id: UUID | None,
    user_id: Pii,
    now: datetime,
    seconds: int,
) -> MemberSession:
    return MemberSession(
        user_hash=user_hash,
        market=market,
        expires_at=now + timedelta(seconds=seconds),
        csrf_secret=secrets.token_bytes(32),
        member_id=member_id,
        user_id=None if member_id is not None else user_id,
    )


def _key(settings: Settings) -> bytes:
    session_key = settings.web.session_key_bytes(settings.crypto)
    return hmac.new(session_key, _LABEL, hashlib.sha256).digest()


def seal(session: MemberSession, settings: Settings) -> str:
    payload = {
        "h": session.user_hash,
        "k": session.market,
        "e": int(session.expires_at.timestamp()),
        "c": base64.b64encode(session.csrf_secret).decode("ascii"),
        "m": str(session.member_id) if session.member_id is not None else None,
        "u": session.user_id.reveal() if session.user_id is not None else None,
    }
    nonce = secrets.token_bytes(_NONCE_BYTES)
    sealed = AESGCM(_key(settings)).encrypt(
        nonce, json.dumps(payload, separators=(",", ":")).encode("utf-8"), _LABEL
    )
    return base64.urlsafe_b64encode(nonce + sealed).decode("ascii").rstrip("=")


def unseal(value: str, settings: Settings, now: datetime) -> MemberSession | None:
    """The session in ``value``, or ``None`` when it is absent, changed, or has ended."""
    if not value or len(value) > _MAX_COOKIE_CHARS:
        return None
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        opened = AESGCM(_key(settings)).decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], _LABEL)
        payload: dict[str, Any] = json.loads(opened)
        session = MemberSession(
            user_hash=str(payload["h"]),
            market=str(payload["k"]),
            expires_at=datetime.fromtimestamp(int(payload["e"]), UTC),
            csrf_secret=base64.b64decode(payload["c"]),
            member_id=UUID(payload["m"]) if payload.get("m") else None,
            user_id=Pii(str(payload["u"])) if payload.get("u") else None,
        )
    except (InvalidTag, ValueError, KeyError, TypeError, binascii.Error):
        return None
    if now >= session.expires_at or len(session.csrf_secret) < 32:
        return None
    return session


def set_cookie(
    response: Response, session: MemberSession, settings: Settings, now: datetime
) -> None:
    response.set_cookie(
        COOKIE,
        seal(session, settings),
        max_age=max(1, int((session.expires_at - now).total_seconds())),
        path=COOKIE_PATH,
        httponly=True,
        samesite="lax",
        secure=settings.web.cookie_secure,
    )


def clear_cookie(response: Response, settings: Settings) -> None:
    response.delete_cookie(
        COOKIE, path=COOKIE_PATH, httponly=True, samesite="lax", secure=settings.web.cookie_secure
    )


def read_session(request: Request) -> MemberSession | None:
    settings: Settings = get_settings(request)
    clock: Clock = get_clock(request)
    return unseal(request.cookies.get(COOKIE, ""), settings, clock.now())


SessionDep = Annotated[MemberSession | None, Depends(read_session)]
