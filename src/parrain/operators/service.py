"""Operator accounts, sign-in and sessions. Nothing commits: the edges run each call in
:meth:`parrain.db.session.Database.run`.

**Passwords** are hashed with argon2id (argon2-cffi's :class:`PasswordHasher`, whose
defaults follow RFC 9106's low-memory profile). The hasher is a keyword argument so the
tests can use cheap parameters and a deployment can raise them; a hash made with other
parameters than the hasher's is replaced at the next successful sign-in.

**Sign-in** (:func:`authenticate`) never raises for a wrong password: it returns a
:class:`SignInResult` so that the failure it counts is committed. An unknown username is
checked against a dummy hash made with the same parameters, so it costs the same time as a
known one. The slow check can run first, in a read-only transaction
(:func:`check_password`), so that the write transaction that counts, locks and audits holds
its locks (on SQLite, the whole database's) for milliseconds, not for the hash.
``lockout_threshold`` wrong passwords in a row lock the account for
``lockout_duration``; while locked, every attempt is refused without checking or counting,
and when the lock ends the count starts again from zero.

**Sessions** (:func:`start_session`, :func:`resume_session`, :func:`end_session`): the
token is 256 random bits, only its SHA-256 is stored. A session ends at ``expires_at``, after
``idle_timeout`` without a page, when revoked (signed out), or when its operator is
disabled. ``last_seen_at`` is written at most once a minute.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Final
from uuid import UUID

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.orm import Session

from parrain.audit import service as audit
from parrain.kit.clock import Clock
from parrain.kit.ids import new_id
from parrain.operators import repository
from parrain.operators.errors import (
    InvalidTokenLifetime,
    OperatorNotFound,
    UsernameTaken,
    WeakPassword,
)
from parrain.operators.models import Operator, OperatorSession
from parrain.operators.roles import Role
from parrain.operators.schemas import (
    MAX_PASSWORD,
    MAX_USERNAME,
    MIN_PASSWORD,
    OperatorCreate,
    OperatorRead,
    PasswordCheck,
    ResumedSession,
    SessionKind,
    SessionRead,
    SignInFailure,
    SignInPolicy,
    SignInResult,
    StartedSession,
    username_key,
)

#: Argon2id with argon2-cffi's defaults (RFC 9106, low-memory profile: t=3, m=64 MiB, p=4).
DEFAULT_HASHER: Final = PasswordHasher()
TOKEN_BYTES: Final = 32
CSRF_SECRET_BYTES: Final = 32
#: ``last_seen_at`` is precise to about this much: a page view writes it at most this often.
SEEN_RESOLUTION: Final = timedelta(minutes=1)
#: Longest presented token looked up (one is 43 characters); longer is refused unhashed.
MAX_TOKEN_CHARS: Final = 128
#: How long an API token lives unless told, and at most (``parrain operator token``).
DEFAULT_API_TOKEN_LIFETIME: Final = timedelta(days=1)
MAX_API_TOKEN_LIFETIME: Final = timedelta(days=365)
#: Who the audit log names for an attempt on a username that does not exist.
ANONYMOUS_ACTOR: Final = "console:anonymous"


def hash_token(token: str) -> str:
    """The SHA-256 hex digest stored for a session token (256 random bits need no slow hash)."""
    return hashlib.sha256(token.encode("ascii", errors="replace")).hexdigest()


_dummy_hashes: dict[tuple[object, ...], str] = {}


def _dummy_hash_for(hasher: PasswordHasher) -> str:
    """A hash of a random password, made with ``hasher``'s parameters (once per process)."""
    parameters = (
        hasher.time_cost,
        hasher.memory_cost,
        hasher.parallelism,
        hasher.hash_len,
        hasher.salt_len,
        hasher.type,
    )
    found = _dummy_hashes.get(parameters)
    if found is None:
        found = _dummy_hashes.setdefault(parameters, hasher.hash(secrets.token_urlsafe(24)))
    return found


def _verify(hasher: PasswordHasher, stored: str, password: str) -> bool:
    try:
        return hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def to_read(row: Operator) -> OperatorRead:
    return OperatorRead(
        id=row.id,
        username=row.username,
        role=Role(row.role),
        disabled=row.disabled,
        failed_attempts=row.failed_attempts,
        locked_until=row.locked_until,
        created_at=row.created_at,
        last_sign_in_at=row.last_sign_in_at,
    )


def _session_read(row: OperatorSession) -> SessionRead:
    return SessionRead(
        id=row.id,
        operator_id=row.operator_id,
        created_at=row.created_at,
        expires_at=row.expires_at,
        last_seen_at=row.last_seen_at,
        revoked_at=row.revoked_at,
        kind=SessionKind(row.kind),
    )


def _subject(operator_id: UUID) -> str:
    return f"operator:{operator_id}"


def check_password_strength(*, username: str, password: str) -> None:
    """Raise :class:`WeakPassword`, saying why, for a password the console refuses."""
    if len(password) < MIN_PASSWORD:
        raise WeakPassword(
            f"the password must be at least {MIN_PASSWORD} characters long; "
            f"this one has {len(password)}",
            min_length=MIN_PASSWORD,
        )
    if len(password) > MAX_PASSWORD:
        raise WeakPassword(
            f"the password must be at most {MAX_PASSWORD} characters long",
            max_length=MAX_PASSWORD,
        )
    if username_key(username) in password.lower():
        raise WeakPassword("the password must not contain the username")


def create_operator(
    *,
    session: Session,
    operator_in: OperatorCreate,
    actor: str,
    clock: Clock,
    hasher: PasswordHasher = DEFAULT_HASHER,
) -> OperatorRead:
    """Create an operator with a role. Refuses a weak password or a username in use."""
    password = operator_in.password.get_secret_value()
    check_password_strength(username=operator_in.username, password=password)
    key = username_key(operator_in.username)
    if repository.get_by_username_key(session, key) is not None:
        raise UsernameTaken(
            f"an operator called {operator_in.username!r} already exists",
            username=operator_in.username,
        )
    row = Operator(
        id=new_id(),
        username=operator_in.username,
        username_key=key,
        password_hash=hasher.hash(password),
        role=operator_in.role.value,
        disabled=False,
        failed_attempts=0,
        locked_until=None,
        created_at=clock.now(),
        last_sign_in_at=None,
    )
    repository.add(session, row)
    audit.record(
        session=session,
        actor=actor,
        action="operator.created",
        subject=_subject(row.id),
        details={"username": row.username, "role": row.role},
        clock=clock,
    )
    return to_read(row)


def get_operator(*, session: Session, operator_id: UUID) -> OperatorRead:
    row = repository.get(session, operator_id)
    if row is None:
        raise OperatorNotFound(
            f"operator {operator_id} does not exist", operator_id=str(operator_id)
        )
    return to_read(row)


def find_operator(*, session: Session, username: str) -> OperatorRead | None:
    row = repository.get_by_username_key(session, username_key(username))
    return None if row is None else to_read(row)


def list_operators(*, session: Session) -> list[OperatorRead]:
    return [to_read(row) for row in repository.list_all(session)]


def set_disabled(
    *, session: Session, operator_id: UUID, disabled: bool, actor: str, clock: Clock
) -> OperatorRead:
    """Disable an operator (their sessions end at once) or enable them again."""
    row = repository.get(session, operator_id, for_update=True)
    if row is None:
        raise OperatorNotFound(
            f"operator {operator_id} does not exist", operator_id=str(operator_id)
        )
    if row.disabled == disabled:
        return to_read(row)
    row.disabled = disabled
    session.flush()
    if disabled:
        repository.revoke_sessions_of(session, row.id, now=clock.now())
    audit.record(
        session=session,
        actor=actor,
        action="operator.disabled" if disabled else "operator.enabled",
        subject=_subject(row.id),
        details={"username": row.username},
        clock=clock,
    )
    return to_read(row)


def unlock(*, session: Session, operator_id: UUID, actor: str, clock: Clock) -> OperatorRead:
    """End a lockout now and clear the count of failures (an admin, from the CLI)."""
    row = repository.get(session, operator_id, for_update=True)
    if row is None:
        raise OperatorNotFound(
            f"operator {operator_id} does not exist", operator_id=str(operator_id)
        )
    was_locked = row.locked_until is not None and row.locked_until > clock.now()
    if not was_locked and row.failed_attempts == 0:
        return to_read(row)
    row.locked_until = None
    row.failed_attempts = 0
    session.flush()
    audit.record(
        session=session,
        actor=actor,
        action="operator.unlocked",
        subject=_subject(row.id),
        details={"username": row.username, "was_locked": was_locked},
        clock=clock,
    )
    return to_read(row)


def _failed(
    *,
    session: Session,
    row: Operator,
    failure: SignInFailure,
    policy: SignInPolicy,
    clock: Clock,
) -> SignInResult:
    now = clock.now()
    details: dict[str, object] = {"reason": failure.value}
    if failure is SignInFailure.WRONG_PASSWORD:
        row.failed_attempts += 1
        details["failed_attempts"] = row.failed_attempts
        if row.failed_attempts >= policy.lockout_threshold:
            row.locked_until = now + policy.lockout_duration
            row.failed_attempts = 0  # the lock's end gives a fresh count
        session.flush()
    actor = f"operator:{row.username}"
    audit.record(
        session=session,
        actor=actor,
        action="operator.sign_in_failed",
        subject=_subject(row.id),
        details=details,
        clock=clock,
    )
    locked_until = row.locked_until if row.locked_until and row.locked_until > now else None
    if failure is SignInFailure.WRONG_PASSWORD and locked_until is not None:
        audit.record(
            session=session,
            actor=actor,
            action="operator.locked_out",
            subject=_subject(row.id),
            details={
                "until": locked_until.isoformat(),
                "after_failures": policy.lockout_threshold,
            },
            clock=clock,
        )
        return SignInResult(None, SignInFailure.LOCKED, locked_until)
    return SignInResult(None, failure, locked_until)


def _check(
    row: Operator | None, password: str, *, hasher: PasswordHasher, now: datetime
) -> PasswordCheck:
    """Verify ``password`` against ``row``'s hash, or a dummy hash (same cost) when there is
    no row or it is locked at ``now`` (a locked account answers no faster)."""
    if row is None or (row.locked_until is not None and row.locked_until > now):
        _verify(hasher, _dummy_hash_for(hasher), password[: MAX_PASSWORD + 1])
        # Checked against no real hash: if the lock has ended by the write transaction,
        # authenticate verifies the password there.
        return PasswordCheck(row.id if row else None, None, False)
    matched = len(password) <= MAX_PASSWORD and _verify(hasher, row.password_hash, password)
    new_hash = None
    if matched and hasher.check_needs_rehash(row.password_hash):
        new_hash = hasher.hash(password)
    return PasswordCheck(row.id, row.password_hash, matched, new_hash)


def check_password(
    *,
    session: Session,
    username: str,
    password: str,
    clock: Clock,
    hasher: PasswordHasher = DEFAULT_HASHER,
) -> PasswordCheck:
    """The slow half of a sign-in, for a read-only transaction: find the operator and verify
    the password (against a dummy hash when unknown or locked). Writes nothing: pass the
    result to :func:`authenticate`, which decides, counts and audits."""
    row = (
        repository.get_by_username_key(session, username_key(username))
        if len(username) <= MAX_USERNAME
        else None
    )
    return _check(row, password, hasher=hasher, now=clock.now())


def authenticate(
    *,
    session: Session,
    username: str,
    password: str,
    policy: SignInPolicy,
    clock: Clock,
    hasher: PasswordHasher = DEFAULT_HASHER,
    checked: PasswordCheck | None = None,
) -> SignInResult:
    """Check a username and password; count, lock and audit as the module says.

    ``checked`` is :func:`check_password`'s result from a transaction before this one; the
    password is verified again here only if the operator's hash changed since (without it,
    it is verified here, under the row's lock). Returns the operator on success (their
    failure count reset, their hash upgraded when the hasher's parameters changed), else the
    reason, never raising for a refused attempt.
    """
    row = (
        repository.get_by_username_key(session, username_key(username), for_update=True)
        if len(username) <= MAX_USERNAME
        else None
    )
    now = clock.now()
    if row is None:
        if checked is None:
            _check(None, password, hasher=hasher, now=now)  # the same cost as a known one
        audit.record(
            session=session,
            actor=ANONYMOUS_ACTOR,
            action="operator.sign_in_failed",
            subject="operator:unknown",  # what was typed may be a password: never recorded
            details={"reason": SignInFailure.UNKNOWN_USERNAME.value},
            clock=clock,
        )
        return SignInResult(None, SignInFailure.UNKNOWN_USERNAME)
    if row.locked_until is not None and row.locked_until > now:
        # Refused whatever the password, after one verification (here or in the check).
        if checked is None:
            _check(row, password, hasher=hasher, now=now)
        return _failed(
            session=session, row=row, failure=SignInFailure.LOCKED, policy=policy, clock=clock
        )
    if checked is None or (row.id, row.password_hash) != (
        checked.operator_id,
        checked.checked_hash,
    ):
        checked = _check(row, password, hasher=hasher, now=now)
    if not checked.matched:
        return _failed(
            session=session,
            row=row,
            failure=SignInFailure.WRONG_PASSWORD,
            policy=policy,
            clock=clock,
        )
    if row.disabled:
        return _failed(
            session=session, row=row, failure=SignInFailure.DISABLED, policy=policy, clock=clock
        )
    if checked.new_hash is not None:
        row.password_hash = checked.new_hash
    row.failed_attempts = 0
    row.locked_until = None
    row.last_sign_in_at = now
    session.flush()
    return SignInResult(to_read(row))


def start_session(
    *,
    session: Session,
    operator_id: UUID,
    policy: SignInPolicy,
    clock: Clock,
    kind: SessionKind = SessionKind.CONSOLE,
    lifetime: timedelta | None = None,
) -> StartedSession:
    """Open a session for a signed-in operator and audit the sign-in; the token is returned
    once, for the cookie. ``kind=API`` opens a token for the management API instead (its
    ``lifetime``, at most :data:`MAX_API_TOKEN_LIFETIME`; no idle timeout), audited as
    ``operator.token_issued``."""
    if kind is SessionKind.API:
        lifetime = lifetime or DEFAULT_API_TOKEN_LIFETIME
        if not timedelta(0) < lifetime <= MAX_API_TOKEN_LIFETIME:
            raise InvalidTokenLifetime(
                f"an API token lives more than 0 and at most {MAX_API_TOKEN_LIFETIME.days} days",
                max_days=MAX_API_TOKEN_LIFETIME.days,
            )
    operator = repository.get(session, operator_id)
    if operator is None:
        raise OperatorNotFound(
            f"operator {operator_id} does not exist", operator_id=str(operator_id)
        )
    now = clock.now()
    token = secrets.token_urlsafe(TOKEN_BYTES)
    row = OperatorSession(
        id=new_id(),
        token_hash=hash_token(token),
        operator_id=operator_id,
        csrf_secret=secrets.token_bytes(CSRF_SECRET_BYTES),
        created_at=now,
        expires_at=now + (lifetime or policy.session_lifetime),
        last_seen_at=now,
        revoked_at=None,
        kind=kind.value,
    )
    repository.add(session, row)
    audit.record(
        session=session,
        actor=f"operator:{operator.username}",
        action="operator.token_issued" if kind is SessionKind.API else "operator.signed_in",
        subject=_subject(operator.id),
        details={"session_id": str(row.id), "expires_at": row.expires_at.isoformat()},
        clock=clock,
    )
    return StartedSession(token=token, session=_session_read(row), operator=to_read(operator))


def session_ended(
    row: OperatorSession, operator: Operator, *, now: datetime, idle: timedelta
) -> bool:
    """Whether a session can no longer be used at ``now`` (an API token does not idle out)."""
    idled = row.kind == SessionKind.CONSOLE.value and now >= row.last_seen_at + idle
    return row.revoked_at is not None or now >= row.expires_at or idled or operator.disabled


def resume_session(
    *,
    session: Session,
    token: str,
    policy: SignInPolicy,
    clock: Clock,
    touch: bool = True,
    kind: SessionKind = SessionKind.CONSOLE,
) -> ResumedSession | None:
    """The live session ``token`` opens, or None (unknown, expired, idle, revoked, or its
    operator disabled). With ``touch`` (it needs a writing transaction) the session's last
    use is brought up to date when a minute old, which keeps it from idling out."""
    if not token or len(token) > MAX_TOKEN_CHARS:
        return None
    found = repository.get_session_by_token_hash(session, hash_token(token))
    if found is None:
        return None
    row, operator = found
    now = clock.now()
    if row.kind != kind.value or session_ended(row, operator, now=now, idle=policy.idle_timeout):
        return None
    if touch and now - row.last_seen_at >= SEEN_RESOLUTION:
        repository.touch_session(session, row.id, now=now, not_since=now - SEEN_RESOLUTION)
    return ResumedSession(
        session=_session_read(row), operator=to_read(operator), csrf_secret=bytes(row.csrf_secret)
    )


def end_session(*, session: Session, token: str, clock: Clock) -> SessionRead | None:
    """Revoke the session ``token`` opens (signing out) and audit it; None when there was
    none, or it had already ended."""
    if not token or len(token) > MAX_TOKEN_CHARS:
        return None
    found = repository.get_session_by_token_hash(session, hash_token(token))
    if found is None:
        return None
    row, operator = found
    if row.revoked_at is not None:
        return None
    row.revoked_at = clock.now()
    session.flush()
    audit.record(
        session=session,
        actor=f"operator:{operator.username}",
        action="operator.signed_out",
        subject=_subject(operator.id),
        details={"session_id": str(row.id)},
        clock=clock,
    )
    return _session_read(row)
