"""API key operations: create (the key is shown once), list, revoke, and authenticate.

Nothing commits: the edges run each call in :meth:`parrain.db.session.Database.run` (or
``read``). Creating and revoking append to the audit chain with the key's id, name, prefix
and scopes, never its secret or the secret's hash.

**Format.** A key is ``prn_<prefix>_<secret>``: ``prn`` says whose key it is (secret
scanners and people recognise it), ``<prefix>`` is :data:`PREFIX_LENGTH` lower-case symbols
of Crockford's base32 alphabet, public, unique, shown in lists and used to find the row;
``<secret>`` is ``secrets.token_urlsafe(32)``: 256 random bits in 43 URL-safe characters.

**Hashing.** Only the SHA-256 of the secret is stored, and a presented secret is compared
with :func:`hmac.compare_digest`. A slow password hash (argon2, kept for operator passwords)
exists to make guessing a *low-entropy* secret expensive after a database leak; a 256-bit
random secret cannot be guessed however fast the hash is, so the slow hash would only make
every API request pay milliseconds of CPU for no protection. A leaked table therefore gives
no usable key.

**Last use.** ``last_used_at`` is written at most once per :data:`LAST_USE_RESOLUTION` per
key, by a conditional UPDATE, so the events path does not write a row per request.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import datetime, timedelta
from typing import Final
from uuid import UUID

from sqlalchemy.orm import Session

from parrain.access import repository
from parrain.access.errors import ApiKeyNameTaken, ApiKeyNotFound, ApiKeyScopeDenied, InvalidApiKey
from parrain.access.models import ApiKey
from parrain.access.schemas import ApiKeyCreate, ApiKeyRead, ApiKeyScope, CreatedApiKey
from parrain.audit import service as audit
from parrain.kit.clock import Clock
from parrain.kit.ids import new_id

KEY_TAG: Final = "prn"
#: Crockford's base32 symbols in lower case: no i, l, o or u to misread.
PREFIX_ALPHABET: Final = "0123456789abcdefghjkmnpqrstvwxyz"
PREFIX_LENGTH: Final = 8
SECRET_BYTES: Final = 32
#: ``last_used_at`` is precise to about this much: it is not written more often per key.
LAST_USE_RESOLUTION: Final = timedelta(minutes=1)
#: How long an edge process may trust a key it checked without asking the database again,
#: hence how long a revocation takes to reach every process (docs/adr/0009).
CACHE_SECONDS: Final = 5.0
#: Anything longer is refused before it is parsed (a key is 56 characters).
MAX_PRESENTED_CHARS: Final = 128

_KEY_SHAPE = re.compile(
    rf"{KEY_TAG}_([{PREFIX_ALPHABET}]{{{PREFIX_LENGTH}}})_([A-Za-z0-9_-]{{43}})"
)
#: Compared against when no key has the presented prefix, so both paths do the same work.
_NO_SUCH_HASH: Final = "0" * 64
_PREFIX_ATTEMPTS: Final = 8


def hash_secret(secret: str) -> str:
    """The SHA-256 hex digest stored for ``secret`` (a fast hash is right: see above)."""
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def parse_api_key(presented: str) -> tuple[str, str]:
    """``(prefix, secret)`` of a key shaped ``prn_<prefix>_<secret>``, else InvalidApiKey."""
    match = _KEY_SHAPE.fullmatch(presented) if len(presented) <= MAX_PRESENTED_CHARS else None
    if match is None:
        raise InvalidApiKey(
            "the API key is malformed: parrain keys look like prn_<prefix>_<secret>"
        )
    return match.group(1), match.group(2)


def _scope(scope: ApiKeyScope | str) -> ApiKeyScope:
    try:
        return ApiKeyScope(scope)
    except ValueError:
        known = ", ".join(s.value for s in ApiKeyScope)
        raise ValueError(f"unknown API key scope {scope!r}; the scopes are {known}") from None


def _subject(key_id: UUID) -> str:
    return f"api_key:{key_id}"


def to_read(api_key: ApiKey) -> ApiKeyRead:
    return ApiKeyRead(
        id=api_key.id,
        name=api_key.name,
        prefix=api_key.prefix,
        scopes=[ApiKeyScope(scope) for scope in api_key.scopes],
        created_at=api_key.created_at,
        last_used_at=api_key.last_used_at,
        revoked_at=api_key.revoked_at,
    )


def _new_prefix(session: Session) -> str:
    # 40 random bits: a clash is rare, and a concurrent one fails the UNIQUE constraint.
    for _ in range(_PREFIX_ATTEMPTS):
        prefix = "".join(secrets.choice(PREFIX_ALPHABET) for _ in range(PREFIX_LENGTH))
        if repository.get_by_prefix(session, prefix) is None:
            return prefix
    raise RuntimeError("could not draw an unused API key prefix")  # pragma: no cover


def create_api_key(
    *, session: Session, key_in: ApiKeyCreate, actor: str, clock: Clock
) -> CreatedApiKey:
    """Create a key and return it in full, the only time it is available."""
    if repository.get_by_name(session, key_in.name) is not None:
        raise ApiKeyNameTaken(f"an API key called {key_in.name!r} already exists", name=key_in.name)
    prefix = _new_prefix(session)
    secret = secrets.token_urlsafe(SECRET_BYTES)
    scopes = [scope.value for scope in key_in.scopes]
    row = ApiKey(
        id=new_id(),
        name=key_in.name,
        prefix=prefix,
        secret_hash=hash_secret(secret),
        scopes=scopes,
        created_at=clock.now(),
        last_used_at=None,
        revoked_at=None,
    )
    repository.add(session, row)
    audit.record(
        session=session,
        actor=actor,
        action="access.api_key_created",
        subject=_subject(row.id),
        details={"name": row.name, "prefix": prefix, "scopes": scopes},
        clock=clock,
    )
    return CreatedApiKey(key=f"{KEY_TAG}_{prefix}_{secret}", api_key=to_read(row))


def list_api_keys(*, session: Session) -> list[ApiKeyRead]:
    """Every key, revoked ones included, oldest first."""
    return [to_read(row) for row in repository.list_all(session)]


def get_api_key(*, session: Session, key_id: UUID) -> ApiKeyRead:
    row = repository.get(session, key_id)
    if row is None:
        raise ApiKeyNotFound(f"API key {key_id} does not exist", key_id=str(key_id))
    return to_read(row)


def find_by_prefix(*, session: Session, prefix: str) -> ApiKeyRead | None:
    row = repository.get_by_prefix(session, prefix)
    return None if row is None else to_read(row)


def revoke_api_key(*, session: Session, key_id: UUID, actor: str, clock: Clock) -> ApiKeyRead:
    """Revoke a key for good. Revoking a revoked key changes nothing and writes no entry."""
    row = repository.get(session, key_id, for_update=True)
    if row is None:
        raise ApiKeyNotFound(f"API key {key_id} does not exist", key_id=str(key_id))
    if row.revoked_at is not None:
        return to_read(row)
    row.revoked_at = clock.now()
    session.flush()
    audit.record(
        session=session,
        actor=actor,
        action="access.api_key_revoked",
        subject=_subject(row.id),
        details={"name": row.name, "prefix": row.prefix},
        clock=clock,
    )
    return to_read(row)


def identify_api_key(*, session: Session, presented: str) -> ApiKeyRead:
    """The live key ``presented`` is, whatever its scopes; InvalidApiKey otherwise.

    A revoked key is named as revoked only to a caller who holds its secret.
    """
    prefix, secret = parse_api_key(presented)
    row = repository.get_by_prefix(session, prefix)
    expected = row.secret_hash if row is not None else _NO_SUCH_HASH
    if not hmac.compare_digest(hash_secret(secret), expected) or row is None:
        raise InvalidApiKey("the API key is not valid")
    if row.revoked_at is not None:
        raise InvalidApiKey(
            f"the API key {KEY_TAG}_{prefix}_… was revoked; ask for a new one",
            prefix=prefix,
            revoked_at=row.revoked_at.isoformat(),
        )
    return to_read(row)


def check_scope(api_key: ApiKeyRead, scope: ApiKeyScope | str) -> ApiKeyRead:
    """``api_key`` if it was granted ``scope``, else ApiKeyScopeDenied (403)."""
    needed = _scope(scope)
    if needed not in api_key.scopes:
        raise ApiKeyScopeDenied(
            f"the API key {KEY_TAG}_{api_key.prefix}_… may not use {needed.value!r}: "
            f"it was granted {', '.join(s.value for s in api_key.scopes)}",
            scope=needed.value,
            granted=[s.value for s in api_key.scopes],
        )
    return api_key


def use_due(api_key: ApiKeyRead, now: datetime) -> bool:
    """Whether a use at ``now`` should be written to ``last_used_at``."""
    last = api_key.last_used_at
    return last is None or now - last >= LAST_USE_RESOLUTION


def record_api_key_use(*, session: Session, key_id: UUID, clock: Clock) -> datetime | None:
    """Note a use now, unless one was noted less than a minute ago; the time written or None."""
    now = clock.now()
    written = repository.mark_used(session, key_id, now=now, not_since=now - LAST_USE_RESOLUTION)
    return now if written else None


def authenticate(
    *,
    session: Session,
    presented: str,
    scope: ApiKeyScope | str,
    clock: Clock,
    record_use: bool = True,
) -> ApiKeyRead:
    """The live key ``presented`` is, if it was granted ``scope``.

    Raises InvalidApiKey (401) for a malformed, unknown, wrong or revoked key and
    ApiKeyScopeDenied (403) for a missing scope. With ``record_use`` (the default; it needs
    a writing transaction) ``last_used_at`` is brought up to date if it is a minute old.
    """
    needed = _scope(scope)
    api_key = check_scope(identify_api_key(session=session, presented=presented), needed)
    if record_use and use_due(api_key, clock.now()):
        used_at = record_api_key_use(session=session, key_id=api_key.id, clock=clock)
        if used_at is not None:
            api_key = api_key.model_copy(update={"last_used_at": used_at})
    return api_key
