from __future__ import annotations

import hashlib
import threading
from datetime import timedelta
from typing import Any

import pytest
from argon2 import PasswordHasher
from pydantic import SecretStr, ValidationError
from sqlalchemy import text

from parrain.audit import service as audit
from parrain.db.session import Database
from parrain.kit.clock import FrozenClock
from parrain.operators import service
from parrain.operators.errors import UsernameTaken, WeakPassword
from parrain.operators.roles import Role
from parrain.operators.schemas import (
    OperatorCreate,
    OperatorRead,
    SignInFailure,
    SignInPolicy,
    SignInResult,
)
from tests.operators.helpers import CHEAP_HASHER, PASSWORD, create_operator, open_session

POLICY = SignInPolicy(
    session_lifetime=timedelta(hours=8),
    idle_timeout=timedelta(minutes=30),
    lockout_threshold=3,
    lockout_duration=timedelta(minutes=15),
)


class CountingHasher(PasswordHasher):
    """The cheap hasher, counting how many passwords it verified."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=8, parallelism=1)
        self.verified = 0

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        self.verified += 1
        return super().verify(hash, password)


def sign_in(
    database: Database,
    clock: FrozenClock,
    username: str,
    password: str = PASSWORD,
    *,
    hasher: PasswordHasher = CHEAP_HASHER,
    policy: SignInPolicy = POLICY,
) -> SignInResult:
    """As the sign-in page does it: the password checked in a read-only transaction, then
    counted, locked and audited in a short write transaction."""
    checked = database.read(
        lambda s: service.check_password(
            session=s, username=username, password=password, clock=clock, hasher=hasher
        )
    )
    return database.run(
        lambda s: service.authenticate(
            session=s,
            username=username,
            password=password,
            policy=policy,
            clock=clock,
            hasher=hasher,
            checked=checked,
        )
    )


def operator_row(database: Database, username: str) -> dict[str, Any]:
    return database.read(
        lambda s: dict(
            s.execute(
                text("SELECT * FROM operators WHERE username_key = :key"), {"key": username.lower()}
            )
            .mappings()
            .one()
        )
    )


def audit_entries(database: Database) -> list[tuple[str, str, str]]:
    entries = database.read(lambda s: audit.list_entries(session=s, limit=1000))
    return [(entry.actor, entry.action, entry.details) for entry in entries]


def actions(database: Database) -> list[str]:
    return [action for _, action, _ in audit_entries(database)]


# --- Creating operators ---------------------------------------------------------------------


def test_an_operator_is_stored_with_an_argon2id_hash_and_audited_without_the_password(
    database: Database, clock: FrozenClock
) -> None:
    created = create_operator(database, clock, "Alice", Role.MARKETER)
    assert (created.username, created.role, created.disabled) == ("Alice", Role.MARKETER, False)
    row = operator_row(database, "alice")
    assert row["username_key"] == "alice"
    assert row["password_hash"].startswith("$argon2id$")
    assert PASSWORD not in row["password_hash"]
    assert CHEAP_HASHER.verify(row["password_hash"], PASSWORD)
    [(actor, action, details)] = audit_entries(database)
    assert (actor, action) == ("operator:test", "operator.created")
    assert '"role":"marketer"' in details
    assert PASSWORD not in details


def test_usernames_are_unique_whatever_their_case(database: Database, clock: FrozenClock) -> None:
    create_operator(database, clock, "alice")
    with pytest.raises(UsernameTaken) as caught:
        create_operator(database, clock, "ALICE", Role.AUDITOR)
    assert caught.value.code == "operator_username_taken"
    assert caught.value.status_code == 409
    assert len(database.read(lambda s: service.list_operators(session=s))) == 1


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("short pass", "at least 12 characters long; this one has 10"),
        ("xx-alice-2026-xx", "must not contain the username"),
        ("ALICEalice2026!!", "must not contain the username"),
        ("p" * 1025, "at most 1024 characters"),
    ],
)
def test_weak_passwords_are_refused_with_the_reason(
    database: Database, clock: FrozenClock, password: str, reason: str
) -> None:
    with pytest.raises(WeakPassword, match=reason) as caught:
        create_operator(database, clock, "alice", password=password)
    assert caught.value.code == "weak_password"
    assert caught.value.status_code == 422
    assert database.read(lambda s: service.list_operators(session=s)) == []
    assert audit_entries(database) == []


@pytest.mark.parametrize("username", ["al", "alice smith", "-alice", "a" * 65, "alicé"])
def test_malformed_usernames_are_refused(username: str) -> None:
    with pytest.raises(ValidationError):
        OperatorCreate(username=username, password=SecretStr(PASSWORD), role=Role.ADMIN)


def test_an_unknown_role_is_refused() -> None:
    with pytest.raises(ValidationError):
        OperatorCreate.model_validate(
            {"username": "alice", "password": PASSWORD, "role": "superuser"}
        )


# --- Signing in -----------------------------------------------------------------------------


def test_the_right_password_signs_in_whatever_the_username_case(
    database: Database, clock: FrozenClock
) -> None:
    create_operator(database, clock, "Alice", Role.FINANCE)
    result = sign_in(database, clock, "aLiCe")
    assert isinstance(result.operator, OperatorRead)
    assert result.operator.username == "Alice"
    assert result.failure is None
    assert operator_row(database, "alice")["last_sign_in_at"] is not None


def test_a_wrong_password_is_counted_and_audited(database: Database, clock: FrozenClock) -> None:
    create_operator(database, clock, "alice")
    result = sign_in(database, clock, "alice", "not the password at all")
    assert result.operator is None
    assert result.failure is SignInFailure.WRONG_PASSWORD
    assert result.locked_until is None
    assert operator_row(database, "alice")["failed_attempts"] == 1
    actor, action, details = audit_entries(database)[-1]
    assert (actor, action) == ("operator:alice", "operator.sign_in_failed")
    assert '"reason":"wrong_password"' in details
    assert "not the password" not in details


def test_an_unknown_username_costs_one_verification_like_a_known_one(
    database: Database, clock: FrozenClock
) -> None:
    create_operator(database, clock, "alice")
    hasher = CountingHasher()
    known = sign_in(database, clock, "alice", "wrong password here", hasher=hasher)
    assert hasher.verified == 1
    unknown = sign_in(database, clock, "mallory", "wrong password here", hasher=hasher)
    assert hasher.verified == 2
    assert known.failure is SignInFailure.WRONG_PASSWORD
    assert unknown.failure is SignInFailure.UNKNOWN_USERNAME
    actor, action, details = audit_entries(database)[-1]
    assert (actor, action) == ("console:anonymous", "operator.sign_in_failed")
    assert "mallory" not in details  # what was typed may be a password


def test_consecutive_failures_lock_the_account_until_the_lock_ends(
    database: Database, clock: FrozenClock
) -> None:
    create_operator(database, clock, "alice")
    for attempt in (1, 2):
        failed = sign_in(database, clock, "alice", f"wrong password {attempt}")
        assert failed.failure is SignInFailure.WRONG_PASSWORD
    locked = sign_in(database, clock, "alice", "wrong password 3")
    assert locked.failure is SignInFailure.LOCKED
    assert locked.locked_until == clock.now() + timedelta(minutes=15)
    assert actions(database)[-2:] == ["operator.sign_in_failed", "operator.locked_out"]

    # While locked even the right password is refused, and nothing more is counted.
    clock.advance(timedelta(minutes=14, seconds=59))
    still = sign_in(database, clock, "alice")
    assert still.operator is None
    assert still.failure is SignInFailure.LOCKED
    assert operator_row(database, "alice")["failed_attempts"] == 0

    clock.advance(timedelta(seconds=1))
    assert sign_in(database, clock, "alice").operator is not None
    row = operator_row(database, "alice")
    assert (row["failed_attempts"], row["locked_until"]) == (0, None)


def test_after_a_lock_the_count_starts_again(database: Database, clock: FrozenClock) -> None:
    create_operator(database, clock, "alice")
    for attempt in range(3):
        sign_in(database, clock, "alice", f"wrong password {attempt}")
    clock.advance(timedelta(minutes=16))
    assert sign_in(database, clock, "alice", "wrong again, sorry").failure == (
        SignInFailure.WRONG_PASSWORD
    )
    assert sign_in(database, clock, "alice", "wrong again, twice").failure == (
        SignInFailure.WRONG_PASSWORD
    )
    assert sign_in(database, clock, "alice").operator is not None


def test_a_success_resets_the_count(database: Database, clock: FrozenClock) -> None:
    create_operator(database, clock, "alice")
    sign_in(database, clock, "alice", "wrong password one")
    sign_in(database, clock, "alice", "wrong password two")
    assert sign_in(database, clock, "alice").operator is not None
    sign_in(database, clock, "alice", "wrong password three")
    assert operator_row(database, "alice")["failed_attempts"] == 1


def test_a_hash_with_old_parameters_is_replaced_at_sign_in(
    database: Database, clock: FrozenClock
) -> None:
    create_operator(database, clock, "alice")
    before = operator_row(database, "alice")["password_hash"]
    assert "$m=8,t=1,p=1$" in before
    stronger = PasswordHasher(time_cost=2, memory_cost=16, parallelism=1)
    assert sign_in(database, clock, "alice", hasher=stronger).operator is not None
    after = operator_row(database, "alice")["password_hash"]
    assert "$m=16,t=2,p=1$" in after
    assert stronger.verify(after, PASSWORD)
    assert not stronger.check_needs_rehash(after)
    # Signing in again with the same parameters keeps the hash.
    sign_in(database, clock, "alice", hasher=stronger)
    assert operator_row(database, "alice")["password_hash"] == after


def test_a_disabled_account_cannot_sign_in_and_its_sessions_end(
    database: Database, clock: FrozenClock
) -> None:
    alice = create_operator(database, clock, "alice")
    started = open_session(database, clock, alice, POLICY)
    database.run(
        lambda s: service.set_disabled(
            session=s, operator_id=alice.id, disabled=True, actor="operator:test", clock=clock
        )
    )
    assert sign_in(database, clock, "alice").failure is SignInFailure.DISABLED
    assert sign_in(database, clock, "alice", "a wrong password").failure is (
        SignInFailure.WRONG_PASSWORD
    )
    assert resume(database, clock, started.token) is None
    database.run(
        lambda s: service.set_disabled(
            session=s, operator_id=alice.id, disabled=False, actor="operator:test", clock=clock
        )
    )
    assert sign_in(database, clock, "alice").operator is not None
    assert resume(database, clock, started.token) is None  # revoked, not only refused


# --- Sessions -------------------------------------------------------------------------------


def resume(database: Database, clock: FrozenClock, token: str) -> OperatorRead | None:
    found = database.run(
        lambda s: service.resume_session(session=s, token=token, policy=POLICY, clock=clock)
    )
    return None if found is None else found.operator


def test_a_session_stores_only_the_hash_of_its_token(
    database: Database, clock: FrozenClock
) -> None:
    alice = create_operator(database, clock, "alice", Role.REVIEWER)
    started = open_session(database, clock, alice, POLICY)
    row = database.read(
        lambda s: dict(s.execute(text("SELECT * FROM operator_sessions")).mappings().one())
    )
    assert row["token_hash"] == hashlib.sha256(started.token.encode()).hexdigest()
    assert started.token not in {str(value) for value in row.values()}
    assert len(bytes(row["csrf_secret"])) == 32
    assert started.session.expires_at == clock.now() + timedelta(hours=8)
    resumed = resume(database, clock, started.token)
    assert resumed is not None
    assert (resumed.username, resumed.role) == ("alice", Role.REVIEWER)
    assert actions(database)[-1] == "operator.signed_in"


def test_unknown_or_malformed_tokens_open_nothing(database: Database, clock: FrozenClock) -> None:
    alice = create_operator(database, clock, "alice")
    started = open_session(database, clock, alice, POLICY)
    assert resume(database, clock, started.token[:-1] + "x") is None
    assert resume(database, clock, "") is None
    assert resume(database, clock, "x" * 500) is None


def test_a_session_ends_when_it_expires_even_when_used(
    database: Database, clock: FrozenClock
) -> None:
    alice = create_operator(database, clock, "alice")
    started = open_session(database, clock, alice, POLICY)
    for _ in range(23):  # a page every 20 minutes for 7 h 40
        clock.advance(timedelta(minutes=20))
        assert resume(database, clock, started.token) is not None
    clock.advance(timedelta(minutes=19))
    assert resume(database, clock, started.token) is not None
    clock.advance(timedelta(minutes=1))  # 8 hours after the sign-in
    assert resume(database, clock, started.token) is None


def test_a_session_idle_for_too_long_ends(database: Database, clock: FrozenClock) -> None:
    alice = create_operator(database, clock, "alice")
    started = open_session(database, clock, alice, POLICY)
    clock.advance(timedelta(minutes=29, seconds=59))
    assert resume(database, clock, started.token) is not None  # and counts as activity
    clock.advance(timedelta(minutes=29, seconds=59))
    assert resume(database, clock, started.token) is not None
    clock.advance(timedelta(minutes=30))
    assert resume(database, clock, started.token) is None


def test_last_use_is_written_at_most_once_a_minute(database: Database, clock: FrozenClock) -> None:
    alice = create_operator(database, clock, "alice")
    started = open_session(database, clock, alice, POLICY)

    def last_seen() -> Any:
        return database.read(
            lambda s: s.execute(text("SELECT last_seen_at FROM operator_sessions")).scalar_one()
        )

    opened = last_seen()
    clock.advance(timedelta(seconds=59))
    resume(database, clock, started.token)
    assert last_seen() == opened
    clock.advance(timedelta(seconds=1))
    resume(database, clock, started.token)
    assert last_seen() != opened


def test_signing_out_revokes_the_session(database: Database, clock: FrozenClock) -> None:
    alice = create_operator(database, clock, "alice")
    started = open_session(database, clock, alice, POLICY)
    other = open_session(database, clock, alice, POLICY)
    ended = database.run(lambda s: service.end_session(session=s, token=started.token, clock=clock))
    assert ended is not None
    assert ended.revoked_at == clock.now()
    assert resume(database, clock, started.token) is None
    assert resume(database, clock, other.token) is not None  # another browser stays signed in
    assert actions(database)[-1] == "operator.signed_out"
    again = database.run(lambda s: service.end_session(session=s, token=started.token, clock=clock))
    assert again is None
    assert actions(database)[-1] == "operator.signed_out"
    assert actions(database).count("operator.signed_out") == 1


def test_no_password_ever_reaches_the_audit_log(database: Database, clock: FrozenClock) -> None:
    create_operator(database, clock, "alice")
    sign_in(database, clock, "alice", "a mistaken password")
    sign_in(database, clock, "nobody", "another mistaken password")
    sign_in(database, clock, "alice")
    text_of_log = repr(audit_entries(database))
    for secret in (PASSWORD, "a mistaken password", "another mistaken password"):
        assert secret not in text_of_log


# --- The slow check outside the write transaction ---------------------------------------------


class BlockingHasher(PasswordHasher):
    """The cheap hasher; while it verifies, ``during`` runs on another thread and must end."""

    def __init__(self, during: Any) -> None:
        super().__init__(time_cost=1, memory_cost=8, parallelism=1)
        self.during = during
        self.outcomes: list[object] = []

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        def run() -> None:
            try:
                self.outcomes.append(self.during())
            except Exception as error:  # pragma: no cover - what the test guards
                self.outcomes.append(error)

        other = threading.Thread(target=run)
        other.start()
        other.join(timeout=10)
        if other.is_alive():  # pragma: no cover - what the test guards
            self.outcomes.append("still waiting")
        return super().verify(hash, password)


def test_the_password_is_verified_while_no_lock_is_held(
    database: Database, clock: FrozenClock
) -> None:
    """While the hash is checked, another transaction writes the operator's own row: no
    write lock (SQLite) and no row lock (PostgreSQL) is held by the sign-in meanwhile."""
    operator = create_operator(database, clock, "alice")
    hasher = BlockingHasher(
        lambda: (
            database.run(
                lambda s: service.unlock(
                    session=s, operator_id=operator.id, actor="operator:other", clock=clock
                )
            ).username
        )
    )
    result = sign_in(database, clock, "alice", hasher=hasher)
    assert hasher.outcomes == ["alice"]
    assert result.operator is not None


def test_a_password_changed_after_the_check_is_verified_again(
    database: Database, clock: FrozenClock
) -> None:
    create_operator(database, clock, "alice")
    checked = database.read(
        lambda s: service.check_password(
            session=s, username="alice", password=PASSWORD, clock=clock, hasher=CHEAP_HASHER
        )
    )
    assert checked.matched
    other = CHEAP_HASHER.hash("another password entirely")
    database.run(
        lambda s: s.execute(
            text("UPDATE operators SET password_hash = :h WHERE username_key = 'alice'"),
            {"h": other},
        )
    )
    result = database.run(
        lambda s: service.authenticate(
            session=s,
            username="alice",
            password=PASSWORD,
            policy=POLICY,
            clock=clock,
            hasher=CHEAP_HASHER,
            checked=checked,
        )
    )
    assert result.failure is SignInFailure.WRONG_PASSWORD


def test_a_lock_taken_after_the_check_refuses_the_right_password(
    database: Database, clock: FrozenClock
) -> None:
    create_operator(database, clock, "alice")
    checked = database.read(
        lambda s: service.check_password(
            session=s, username="alice", password=PASSWORD, clock=clock, hasher=CHEAP_HASHER
        )
    )
    for attempt in range(3):
        sign_in(database, clock, "alice", f"wrong password {attempt}")
    result = database.run(
        lambda s: service.authenticate(
            session=s,
            username="alice",
            password=PASSWORD,
            policy=POLICY,
            clock=clock,
            hasher=CHEAP_HASHER,
            checked=checked,
        )
    )
    assert result.failure is SignInFailure.LOCKED


def test_authenticate_alone_still_checks_the_password_itself(
    database: Database, clock: FrozenClock
) -> None:
    create_operator(database, clock, "alice")
    hasher = CountingHasher()

    def alone(password: str) -> SignInResult:
        return database.run(
            lambda s: service.authenticate(
                session=s,
                username="alice",
                password=password,
                policy=POLICY,
                clock=clock,
                hasher=hasher,
            )
        )

    assert alone("wrong password here").failure is SignInFailure.WRONG_PASSWORD
    assert alone(PASSWORD).operator is not None
    assert hasher.verified == 2
