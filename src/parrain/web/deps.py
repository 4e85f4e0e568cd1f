"""Dependencies of the routes, as ``Annotated`` aliases: ``database: DatabaseDep``.

``create_app`` stores the database, clock and settings on ``app.state``; these read them
back, so a test or the CLI decides what a route works with.

Integrations authenticate with an API key: ``api_key: EventsKeyDep`` (or ``ConsentKeyDep``,
or ``Depends(require_api_key(scope))``) admits a request only with a live key granted that
scope, answered from a small per-process cache for :data:`API_KEY_CACHE_TTL_SECONDS`.

Operators call the management API with a token of theirs: ``dependencies=[operator(
"campaigns.edit")]`` admits a live operator API token whose role holds that permission, and
``actor: ActorDep`` is then that operator, as the audit log names them (ADR 24).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param
from sqlalchemy.exc import DBAPIError

from parrain.access import service as access
from parrain.access.errors import InvalidApiKey
from parrain.access.schemas import ApiKeyRead, ApiKeyScope
from parrain.config import Settings
from parrain.db.session import Database
from parrain.kit.clock import Clock
from parrain.logging import get_logger
from parrain.members.service import MemberKeys
from parrain.operators import service as operators
from parrain.operators.errors import OperatorUnauthenticated, PermissionDenied
from parrain.operators.roles import Permission, allows
from parrain.operators.schemas import ResumedSession, SessionKind, SignInPolicy

_log = get_logger(__name__)

T = TypeVar("T")

# --- Blocking work from coroutines ----------------------------------------------------------

#: Threads of :func:`run_blocking` per process (as many as Starlette's thread pool has).
BLOCKING_THREADS = 40
_blocking: ThreadPoolExecutor | None = None
_blocking_creation = threading.Lock()


def _blocking_executor() -> ThreadPoolExecutor:
    global _blocking
    if _blocking is None:
        with _blocking_creation:
            if _blocking is None:
                _blocking = ThreadPoolExecutor(BLOCKING_THREADS, thread_name_prefix="parrain-io")
    return _blocking


async def run_blocking(work: Callable[[], T]) -> T:
    """``work()`` (a database transaction, say) in a worker thread, awaited by the event loop.

    What a route that is a coroutine hands over instead of being a plain ``def``: FastAPI
    runs a ``def`` route, and then the validation of its answer, each in its thread pool.
    This is also cheaper per call than that pool (Starlette's ``run_in_threadpool``, anyio's
    ``to_thread``): about 25 µs of CPU against 40 µs, 10 µs against 40 µs when calls
    overlap. ``work`` runs in a copy of the caller's context variables, as there. A caller
    cancelled while ``work`` runs stops waiting; ``work`` still runs to its end.
    """
    return await _run_in(_blocking_executor(), work)


#: The thread of :func:`run_quick_read`: one per process (ADR 27).
_quick: ThreadPoolExecutor | None = None


async def run_quick_read(work: Callable[[], T]) -> T:
    """Short read-only ``work`` (a consent check: one statement when the check cache is
    warm) on this process's single quick-read thread, awaited by the event loop.

    One thread, not :func:`run_blocking`'s pool: with many threads each taking a request,
    they and the event loop pass the interpreter's lock back and forth several times per
    request, which cost a consent check a quarter more CPU and put tens of milliseconds on
    its slowest answers (the consent benchmark, docs/performance.md). Quick reads queue
    behind each other instead; each takes a fraction of a millisecond. Long work (a batch
    of checks, any write) belongs in :func:`run_blocking`.
    """
    global _quick
    if _quick is None:
        with _blocking_creation:
            if _quick is None:
                _quick = ThreadPoolExecutor(1, thread_name_prefix="parrain-quick-read")
    return await _run_in(_quick, work)


async def _run_in(executor: ThreadPoolExecutor, work: Callable[[], T]) -> T:
    """``work()`` on ``executor``, in a copy of the caller's context variables."""
    loop = asyncio.get_running_loop()
    context = contextvars.copy_context()
    return await loop.run_in_executor(executor, context.run, work)


def get_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


def get_clock(request: Request) -> Clock:
    clock: Clock = request.app.state.clock
    return clock


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_actor(request: Request) -> str:
    """Who the audit log names for this request: the operator whose token the route's
    :func:`require_operator` dependency admitted (``operator:<username>``)."""
    resumed: ResumedSession | None = getattr(request.state, "operator", None)
    if resumed is None:  # a route that writes must declare who may call it
        raise RuntimeError("ActorDep needs a require_operator(...) dependency on the route")
    return resumed.operator.actor


def get_member_keys(request: Request) -> MemberKeys:
    keys: MemberKeys = request.app.state.member_keys
    return keys


# FastAPI runs a plain ``def`` dependency in the thread pool: a hop to a worker thread and
# back, which costs more CPU than a whole trivial request. These only read ``app.state``, so
# the dependencies are coroutines that call them on the event loop.


async def _database(request: Request) -> Database:
    return get_database(request)


async def _clock(request: Request) -> Clock:
    return get_clock(request)


async def _settings(request: Request) -> Settings:
    return get_settings(request)


async def _actor(request: Request) -> str:
    return get_actor(request)


async def _member_keys(request: Request) -> MemberKeys:
    return get_member_keys(request)


DatabaseDep = Annotated[Database, Depends(_database)]
ClockDep = Annotated[Clock, Depends(_clock)]
SettingsDep = Annotated[Settings, Depends(_settings)]
ActorDep = Annotated[str, Depends(_actor)]
MemberKeysDep = Annotated[MemberKeys, Depends(_member_keys)]


# --- Integration API keys -------------------------------------------------------------------

API_KEY_HEADER = "X-Parrain-Api-Key"
#: How long this process trusts a key it checked, without asking the database again: a
#: revoked key is refused by every process at most this long after the revocation.
API_KEY_CACHE_TTL_SECONDS = access.CACHE_SECONDS
#: Keys remembered per process; past it, the oldest entry is forgotten first.
API_KEY_CACHE_MAX_ENTRIES = 1024

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKeyBearer",
    description="An integration API key: `Authorization: Bearer prn_<prefix>_<secret>`.",
)
_api_key_header = APIKeyHeader(
    name=API_KEY_HEADER,
    auto_error=False,
    scheme_name="ApiKeyHeader",
    description=f"An integration API key in `{API_KEY_HEADER}`, for clients that cannot set "
    "`Authorization`.",
)


class ApiKeyCache:
    """Keys this process authenticated recently, by the SHA-256 of the presented key.

    An entry expires ``ttl_seconds`` after it was loaded from the database, however often
    it is used meanwhile, so a revocation made anywhere is seen within the TTL. Only keys
    that were valid are kept (scopes are checked on every request); at most ``max_entries``,
    the oldest forgotten first. ``monotonic`` is injectable so tests need not sleep.
    """

    def __init__(
        self,
        *,
        ttl_seconds: float = API_KEY_CACHE_TTL_SECONDS,
        max_entries: int = API_KEY_CACHE_MAX_ENTRIES,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl_seconds < 0 or max_entries < 1:
            raise ValueError("the API key cache needs ttl_seconds >= 0 and max_entries >= 1")
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self._monotonic = monotonic
        self._entries: OrderedDict[bytes, tuple[ApiKeyRead, float]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, digest: bytes) -> ApiKeyRead | None:
        with self._lock:
            entry = self._entries.get(digest)
            if entry is None:
                return None
            if self._monotonic() >= entry[1]:
                del self._entries[digest]
                return None
            return entry[0]

    def remember(self, digest: bytes, api_key: ApiKeyRead) -> None:
        """Keep ``api_key`` for a full TTL from now."""
        with self._lock:
            self._entries.pop(digest, None)
            self._entries[digest] = (api_key, self._monotonic() + self.ttl_seconds)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)  # all TTLs are equal: the oldest expires first

    def update(self, digest: bytes, api_key: ApiKeyRead) -> None:
        """Replace a remembered key's read model without extending its expiry."""
        with self._lock:
            entry = self._entries.get(digest)
            if entry is not None:
                self._entries[digest] = (api_key, entry[1])

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


_cache_creation = threading.Lock()


def get_api_key_cache(request: Request) -> ApiKeyCache:
    """The app's cache, made on first use (a test may set ``app.state.api_key_cache``)."""
    state = request.app.state
    cache: ApiKeyCache | None = getattr(state, "api_key_cache", None)
    if cache is None:
        with _cache_creation:
            cache = getattr(state, "api_key_cache", None)
            if cache is None:
                cache = ApiKeyCache()
                state.api_key_cache = cache
    return cache


def _missing_key() -> InvalidApiKey:
    return InvalidApiKey(
        f"this operation needs an API key: send `Authorization: Bearer <key>` or "
        f"`{API_KEY_HEADER}: <key>`"
    )


@functools.cache
def require_api_key(scope: str) -> Callable[..., Awaitable[ApiKeyRead]]:
    """A dependency that admits a request carrying a live API key granted ``scope``.

    The key is read from ``Authorization: Bearer`` or else ``X-Parrain-Api-Key``. A key seen
    in the last :data:`API_KEY_CACHE_TTL_SECONDS` is answered from memory without touching
    the event loop's thread pool or the database; otherwise it is checked in a read-only
    transaction. ``last_used_at`` is written in its own short transaction at most once a
    minute per key. Raises InvalidApiKey (401, with ``WWW-Authenticate: Bearer``) or
    ApiKeyScopeDenied (403). An unknown ``scope`` fails here, when the route is declared.
    """
    needed = ApiKeyScope(scope)

    async def api_key(
        request: Request,
        bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
        header_key: Annotated[str | None, Depends(_api_key_header)],
    ) -> ApiKeyRead:
        presented = bearer.credentials if bearer is not None else header_key
        return await _admit_api_key(request, presented, needed)

    return api_key


#: The OpenAPI ``security`` of a route that checks its API key with :func:`api_key_of`.
API_KEY_SECURITY: list[dict[str, list[str]]] = [{"ApiKeyBearer": []}, {"ApiKeyHeader": []}]


async def api_key_of(request: Request, scope: ApiKeyScope) -> ApiKeyRead:
    """What :func:`require_api_key` checks, for a route that reads its key from the headers
    itself rather than through three dependencies (FastAPI solves each on every request;
    on the events route they cost more than queuing an event). The same key is read: the
    ``Authorization`` header's ``Bearer`` credentials, or else ``X-Parrain-Api-Key``; such a
    route declares :data:`API_KEY_SECURITY` in its ``openapi_extra``."""
    scheme, credentials = get_authorization_scheme_param(request.headers.get("authorization"))
    bearer = credentials if scheme.lower() == "bearer" and credentials else None
    return await _admit_api_key(request, bearer or request.headers.get(API_KEY_HEADER), scope)


async def _admit_api_key(
    request: Request, presented: str | None, needed: ApiKeyScope
) -> ApiKeyRead:
    """The check of an API key presented for ``needed``, wherever it was read from."""
    if not presented:
        raise _missing_key()
    if len(presented) > access.MAX_PRESENTED_CHARS:
        access.parse_api_key(presented)  # raises: hashing a huge header is wasted work
    digest = hashlib.sha256(presented.encode()).digest()
    cache = get_api_key_cache(request)
    found = cache.get(digest)
    if found is None:
        access.parse_api_key(presented)  # a malformed key never costs a database trip
        database = get_database(request)
        found = await run_blocking(
            lambda: database.read(
                lambda session: access.identify_api_key(session=session, presented=presented)
            )
        )
        cache.remember(digest, found)
    access.check_scope(found, needed)
    clock = get_clock(request)
    now = clock.now()
    if access.use_due(found, now):
        # Marked in memory first, so concurrent requests do not all queue a write.
        cache.update(digest, found.model_copy(update={"last_used_at": now}))
        await _record_use(get_database(request), found, clock)
    return found


async def _record_use(database: Database, api_key: ApiKeyRead, clock: Clock) -> None:
    try:
        await run_blocking(
            lambda: database.run(
                lambda session: access.record_api_key_use(
                    session=session, key_id=api_key.id, clock=clock
                )
            )
        )
    except DBAPIError as error:
        # Bookkeeping only: the request goes on; the next due use writes it.
        _log.warning(
            "api_key_use_not_recorded", api_key=api_key.prefix, reason=type(error.orig).__name__
        )


EventsKeyDep = Annotated[ApiKeyRead, Depends(require_api_key(ApiKeyScope.EVENTS.value))]
ConsentKeyDep = Annotated[ApiKeyRead, Depends(require_api_key(ApiKeyScope.CONSENT.value))]
PrivacyKeyDep = Annotated[ApiKeyRead, Depends(require_api_key(ApiKeyScope.PRIVACY.value))]


# --- Operators (the management API) ---------------------------------------------------------

_operator_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="OperatorToken",
    description=(
        "An operator's token: `Authorization: Bearer <token>`, from `parrain operator token` "
        "(it expires, and is revoked with its operator). What it may do is its operator's "
        "role (ADR 24)."
    ),
)


@functools.cache
def require_operator(permission: str) -> Callable[..., ResumedSession]:
    """A dependency that admits a request carrying a live operator token whose role holds
    ``permission``; the operator is kept on ``request.state.operator`` (see
    :func:`get_actor`). Raises OperatorUnauthenticated (401) or PermissionDenied (403)."""
    needed = Permission(permission)

    def operator(
        request: Request,
        bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_operator_bearer)],
    ) -> ResumedSession:
        if bearer is None or not bearer.credentials:
            raise OperatorUnauthenticated(
                "this operation needs an operator token: send `Authorization: Bearer <token>` "
                "(`parrain operator token` makes one)"
            )
        token = bearer.credentials
        policy = SignInPolicy.from_settings(get_settings(request).console)
        clock = get_clock(request)
        resumed = get_database(request).read(
            lambda session: operators.resume_session(
                session=session,
                token=token,
                policy=policy,
                clock=clock,
                touch=False,
                kind=SessionKind.API,
            )
        )
        if resumed is None:
            raise OperatorUnauthenticated("the operator token is unknown, expired or revoked")
        if not allows(resumed.operator.role, needed):
            raise PermissionDenied(
                f"the role {resumed.operator.role.value} does not allow this ({needed.value})",
                permission=needed.value,
                role=resumed.operator.role.value,
            )
        request.state.operator = resumed
        return resumed

    return operator


def operator(permission: str) -> Any:
    """``dependencies=[operator("campaigns.edit")]`` on a route of the management API."""
    return Depends(require_operator(permission))
