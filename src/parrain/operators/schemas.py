"""Pydantic shapes of operators and their sessions, and the sign-in policy.

A read model never holds a password, its hash, a session token or a CSRF secret's copy
outside :class:`ResumedSession` (the console needs the secret to check its forms).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Final
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr

from parrain.config import ConsoleSettings
from parrain.operators.roles import Role

MIN_USERNAME: Final = 3
MAX_USERNAME: Final = 64
#: Shortest password accepted, in characters (NIST SP 800-63B asks for at least 8; a
#: console that moves money asks for more).
MIN_PASSWORD: Final = 12
#: Longest password accepted: longer ones only make every sign-in attempt cost more.
MAX_PASSWORD: Final = 1024
_USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]*")


def _username(value: str) -> str:
    text = value.strip()
    if not MIN_USERNAME <= len(text) <= MAX_USERNAME:
        raise ValueError(f"must be {MIN_USERNAME} to {MAX_USERNAME} characters")
    if not _USERNAME.fullmatch(text):
        raise ValueError(
            "may hold only letters A-Z, digits and . _ @ -, and must start with a letter or digit"
        )
    return text


Username = Annotated[str, AfterValidator(_username)]


def username_key(username: str) -> str:
    """What makes two usernames the same: their lower-case form."""
    return username.strip().lower()


class OperatorCreate(BaseModel):
    """A new operator. The password's strength is checked by the service, which says why."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    username: Username
    password: SecretStr
    role: Role


class OperatorRead(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: UUID
    username: str
    role: Role
    disabled: bool
    failed_attempts: int
    locked_until: datetime | None
    created_at: datetime
    last_sign_in_at: datetime | None

    @property
    def actor(self) -> str:
        """How the audit log names this operator: ``operator:<username>``."""
        return f"operator:{self.username}"


class SignInFailure(enum.StrEnum):
    """Why a sign-in was refused. ``UNKNOWN_USERNAME`` and ``WRONG_PASSWORD`` are told apart
    only in the audit log: the person at the form sees the same message for both."""

    UNKNOWN_USERNAME = "unknown_username"
    WRONG_PASSWORD = "wrong_password"  # noqa: S105 (a reason, not a password)
    LOCKED = "locked"
    DISABLED = "disabled"


@dataclass(frozen=True, slots=True)
class SignInResult:
    """What :func:`~parrain.operators.service.authenticate` found: the operator, or why not.

    ``locked_until`` is set when the account is locked (by this attempt or before it).
    """

    operator: OperatorRead | None
    failure: SignInFailure | None = None
    locked_until: datetime | None = None

    @property
    def succeeded(self) -> bool:
        return self.operator is not None


@dataclass(frozen=True, slots=True)
class PasswordCheck:
    """A password checked before the sign-in's write transaction (argon2id takes tens of
    milliseconds and 64 MiB: no lock is held meanwhile). It names the stored hash it was
    checked against, so :func:`~parrain.operators.service.authenticate` checks again only
    if that hash changed in between; ``new_hash`` is the replacement made when the hash's
    parameters are not the hasher's. It never holds the password."""

    operator_id: UUID | None
    checked_hash: str | None
    matched: bool
    new_hash: str | None = None


@dataclass(frozen=True, slots=True)
class SignInPolicy:
    """How long sessions last and when failures lock an account (from ConsoleSettings)."""

    session_lifetime: timedelta = timedelta(hours=12)
    idle_timeout: timedelta = timedelta(minutes=30)
    lockout_threshold: int = 5
    lockout_duration: timedelta = timedelta(minutes=15)

    @classmethod
    def from_settings(cls, settings: ConsoleSettings) -> SignInPolicy:
        return cls(
            session_lifetime=timedelta(hours=settings.session_hours),
            idle_timeout=timedelta(minutes=settings.idle_minutes),
            lockout_threshold=settings.lockout_threshold,
            lockout_duration=timedelta(minutes=settings.lockout_minutes),
        )


class SessionKind(enum.StrEnum):
    """A browser's console session, or a token for the management API."""

    CONSOLE = "console"
    API = "api"


class SessionRead(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: UUID
    kind: SessionKind = SessionKind.CONSOLE
    operator_id: UUID
    created_at: datetime
    expires_at: datetime
    last_seen_at: datetime
    revoked_at: datetime | None


class StartedSession(BaseModel):
    """A session just opened: the only time its ``token`` exists outside the cookie."""

    model_config = ConfigDict(frozen=True)

    token: str = Field(repr=False)
    session: SessionRead
    operator: OperatorRead


class ResumedSession(BaseModel):
    """A live session found from its cookie: who is signed in, and the CSRF secret of the
    session's forms."""

    model_config = ConfigDict(frozen=True)

    session: SessionRead
    operator: OperatorRead
    csrf_secret: bytes = Field(repr=False)
