"""Pydantic shapes of API keys. A read model never holds the secret or its hash."""

from __future__ import annotations

import enum
import re
from datetime import datetime
from typing import Annotated
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

#: Longest key name accepted (characters, after trimming).
MAX_NAME = 80
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class ApiKeyScope(enum.StrEnum):
    """What a key may call. Stable: integrations are configured with these names."""

    EVENTS = "events"
    CONSENT = "consent"
    PRIVACY = "privacy"  # a member's export and erasure, asked for on their behalf


def _name(value: str) -> str:
    text = value.strip()
    if not text:
        raise ValueError("must not be empty")
    if len(text) > MAX_NAME:
        raise ValueError(f"must be at most {MAX_NAME} characters")
    if _CONTROL.search(text):
        raise ValueError("must not contain control characters")
    return text


ApiKeyName = Annotated[str, AfterValidator(_name)]


class ApiKeyCreate(BaseModel):
    """A new key: a unique name saying who holds it, and at least one scope."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: ApiKeyName
    scopes: list[ApiKeyScope] = Field(min_length=1, max_length=len(ApiKeyScope))

    @field_validator("scopes")
    @classmethod
    def _distinct(cls, scopes: list[ApiKeyScope]) -> list[ApiKeyScope]:
        if len(set(scopes)) != len(scopes):
            raise ValueError("a scope is listed twice")
        return sorted(scopes)


class ApiKeyRead(BaseModel):
    """A key as lists and the web edge see it: who, which scopes, when used and revoked."""

    model_config = ConfigDict(frozen=True)

    id: UUID
    name: str
    prefix: str = Field(description="The public part of the key, `prn_<prefix>_…`.")
    scopes: list[ApiKeyScope]
    created_at: datetime
    last_used_at: datetime | None = Field(
        description="When the key was last accepted, to within about a minute."
    )
    revoked_at: datetime | None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    @property
    def actor(self) -> str:
        """How the audit log names a request made with this key: ``api_key:<prefix>``."""
        return f"api_key:{self.prefix}"


class CreatedApiKey(BaseModel):
    """A key just created: the only time its plaintext ``key`` exists outside the caller."""

    model_config = ConfigDict(frozen=True)

    key: str = Field(repr=False, description="`prn_<prefix>_<secret>`; shown once, never again.")
    api_key: ApiKeyRead
