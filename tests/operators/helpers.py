"""Operators for the tests: a cheap argon2id hasher, accounts of each role, sessions."""

from __future__ import annotations

from argon2 import PasswordHasher
from pydantic import SecretStr

from parrain.db.session import Database
from parrain.kit.clock import Clock
from parrain.operators import service
from parrain.operators.roles import Role
from parrain.operators.schemas import OperatorCreate, OperatorRead, SignInPolicy, StartedSession

#: argon2id at its smallest: the same code paths, microseconds instead of a third of a second.
CHEAP_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
PASSWORD = "correct horse battery staple"
ACTOR = "operator:test"
POLICY = SignInPolicy()


def create_operator(
    database: Database,
    clock: Clock,
    username: str,
    role: Role | str = Role.ADMIN,
    *,
    password: str = PASSWORD,
    hasher: PasswordHasher = CHEAP_HASHER,
) -> OperatorRead:
    operator_in = OperatorCreate(username=username, password=SecretStr(password), role=Role(role))
    return database.run(
        lambda s: service.create_operator(
            session=s, operator_in=operator_in, actor=ACTOR, clock=clock, hasher=hasher
        )
    )


def open_session(
    database: Database, clock: Clock, operator: OperatorRead, policy: SignInPolicy = POLICY
) -> StartedSession:
    return database.run(
        lambda s: service.start_session(
            session=s, operator_id=operator.id, policy=policy, clock=clock
        )
    )
