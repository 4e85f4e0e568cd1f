"""The consent check: may this member's data of this category be used for this use, on
this channel, in this territory, now? ``allow`` or ``deny``, with a stable reason and the
declaration version and notice hash the answer rests on. Read-only.

Every check reads the current state from the database (one statement for a whole batch):
there is no cache of answers, so a withdrawal committed before a check is what that check
sees. The only thing kept in memory is the parsed programme items of declaration versions,
which are written once and never change.
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from sys import intern
from typing import Literal
from uuid import UUID

from sqlalchemy.orm import Session

from parrain.config import ConsentSettings
from parrain.consent import repository
from parrain.consent.schemas import (
    CheckReason,
    ConsentCheck,
    ConsentDecision,
    DeclarationCreate,
    LegalBasis,
)
from parrain.consent.service.cache import MAX_CHANGES, CacheRegistry, CheckCache
from parrain.kit.clock import Clock

#: A deny reason outranks those after it when several rows of a member could explain it:
#: the most specific answer wins (a grant for another territory says more than no grant).
_DENY_RANK = {
    CheckReason.TERRITORY_NOT_COVERED: 6,
    CheckReason.EXPIRED: 5,
    CheckReason.WITHDRAWN: 4,
    CheckReason.REFUSED: 3,
    CheckReason.CHANNEL_NOT_COVERED: 2,
    CheckReason.NO_CONSENT: 1,
}
_STATUS_REASON = {
    "refused": CheckReason.REFUSED,
    "withdrawn": CheckReason.WITHDRAWN,
    "expired": CheckReason.EXPIRED,
}
_CACHED_DECLARATIONS = 1024


@dataclass(frozen=True, slots=True)
class _ProgrammeUse:
    channels: frozenset[str]
    territories: frozenset[str]


@dataclass(frozen=True, slots=True)
class _Declared:
    """What a check needs of one declaration version: its programme uses and the notice
    hash it answers with (the notice in the campaign market's language)."""

    programme: dict[tuple[str, str], _ProgrammeUse]
    notice_sha256: str | None


@dataclass(frozen=True, slots=True)
class _Basis:
    """What a programme-use answer rests on, shaped like a grant for :func:`_decision`."""

    campaign_id: UUID
    declaration_version: int
    notice_sha256: str | None
    expires_at: None = None


@dataclass(frozen=True, slots=True)
class _Programme:
    """A programme use of a pair (category, use) the member is enrolled for."""

    channels: frozenset[str]
    territories: frozenset[str]
    basis: _Basis


_Pair = tuple[str, str]
_Uses = dict[_Pair, tuple[_Programme, ...]]


class _Declarations:
    """Declaration versions parsed once per process. Safe to keep: a version and its
    notices are written once (the ORM refuses changes); which version is the latest is
    read from the database on every check."""

    def __init__(self, size: int = _CACHED_DECLARATIONS) -> None:
        self._size = size
        self._entries: OrderedDict[UUID, _Declared] = OrderedDict()
        self._programmes: OrderedDict[tuple[UUID, UUID, int], _Uses] = OrderedDict()
        self._lock = threading.Lock()

    def programme(
        self, session: Session, declaration_id: UUID, campaign_id: UUID, version: int
    ) -> _Uses:
        """The programme uses of one enrolment (a campaign and its latest declaration), by
        (category, use): the same object for every member enrolled there."""
        key = (declaration_id, campaign_id, version)
        with self._lock:
            found = self._programmes.get(key)
        if found is not None:
            return found
        declared = self.get(session, declaration_id)
        uses: _Uses = {}
        if declared is not None:
            basis = _Basis(campaign_id, version, declared.notice_sha256)
            uses = {
                pair: (_Programme(use.channels, use.territories, basis),)
                for pair, use in declared.programme.items()
            }
        with self._lock:
            self._programmes[key] = uses
            while len(self._programmes) > self._size:
                self._programmes.popitem(last=False)
        return uses

    def get(self, session: Session, declaration_id: UUID) -> _Declared | None:
        with self._lock:
            found = self._entries.get(declaration_id)
        if found is not None:
            return found
        loaded = repository.declaration_with_notices(session, declaration_id)
        if loaded is None:
            return None
        declaration, market, notices = loaded
        items = DeclarationCreate.model_validate(declaration.body).items
        language = "fr" if market == "FR" else "en"
        hashes = {notice.language: notice.sha256 for notice in notices}
        declared = _Declared(
            programme={
                (item.data_category, item.data_use): _ProgrammeUse(
                    channels=frozenset(item.channels), territories=frozenset(item.territories)
                )
                for item in items
                if item.legal_basis is LegalBasis.PROGRAMME
            },
            notice_sha256=hashes.get(language) or next(iter(sorted(hashes.values())), None),
        )
        with self._lock:
            self._entries[declaration_id] = declared
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)
        return declared


_declarations = _Declarations()


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer to one check, for code in the same process (the API answers it as
    :class:`~parrain.consent.schemas.ConsentDecision`, the same fields): ``allow`` or
    ``deny``, why, and the campaign, declaration version and notice hash it rests on."""

    decision: Literal["allow", "deny"]
    reason: CheckReason
    member_id: UUID
    data_category: str
    data_use: str
    channel: str
    territory: str
    at: datetime
    campaign_id: UUID | None = None
    declaration_version: int | None = None
    notice_sha256: str | None = None
    expires_at: datetime | None = None

    @property
    def allowed(self) -> bool:
        return self.decision == "allow"

    def read(self) -> ConsentDecision:
        return ConsentDecision.model_validate(self, from_attributes=True)


@dataclass(frozen=True, slots=True)
class _Grant:
    """A consent's current state, as a check reads it (``reason``: the deny reason of a
    consent that is not ``granted``)."""

    channel: str
    granted: bool
    reason: CheckReason | None
    granted_at: datetime | None
    expires_at: datetime | None
    territories: frozenset[str]
    campaign_id: UUID | None
    declaration_version: int | None
    notice_sha256: str | None


@dataclass(frozen=True, slots=True)
class _Member:
    """What the checks of one known member need, indexed by (category, use): kept by the
    cache (complete, every category and use) or built for one batch (only what it asks)."""

    erased: bool
    programme: _Uses
    grants: dict[_Pair, tuple[_Grant, ...]]


_NO_PROGRAMME: tuple[_Programme, ...] = ()
_NO_GRANTS: tuple[_Grant, ...] = ()


def _members(session: Session, rows: list[repository.CheckRow]) -> dict[UUID, _Member]:
    """The rows of :func:`repository.check_rows` as one :class:`_Member` per known member.

    Rows are put in a fixed order (campaign, then channel) so that the answer does not
    depend on the order the database returned them in."""
    erased: dict[UUID, bool] = {}
    enrolled: dict[UUID, list[repository.CheckRow]] = {}
    granted: dict[UUID, list[repository.CheckRow]] = {}
    for row in rows:
        if row.kind == "g":
            granted.setdefault(row.member_id, []).append(row)
            continue
        erased[row.member_id] = row.erased
        if row.declaration_id is not None:
            enrolled.setdefault(row.member_id, []).append(row)
    out: dict[UUID, _Member] = {}
    for member_id, is_erased in erased.items():
        enrolments = enrolled.get(member_id)
        programme: _Uses = _NO_USES
        if enrolments is not None:
            if len(enrolments) > 1:
                enrolments.sort(key=_by_campaign)
            for row in enrolments:
                uses = _declarations.programme(
                    session,
                    row.declaration_id,  # type: ignore[arg-type]
                    row.campaign_id,  # type: ignore[arg-type]
                    row.declaration_version,  # type: ignore[arg-type]
                )
                if programme is _NO_USES:
                    programme = uses
                elif uses:
                    merged: dict[_Pair, tuple[_Programme, ...]] = dict(programme)
                    for pair, more in uses.items():
                        merged[pair] = merged.get(pair, _NO_PROGRAMME) + more
                    programme = merged
        grants: dict[_Pair, tuple[_Grant, ...]] = _NO_GRANTS_AT_ALL
        states = granted.get(member_id)
        if states is not None:
            if len(states) > 1:
                states.sort(key=_by_campaign_channel)
            grants = {}
            for row in states:
                # One copy of each text and pair, however many members hold it.
                pair = _shared(row.data_category, row.data_use)  # type: ignore[arg-type]
                is_granted = row.status == "granted"
                grant = _Grant(
                    intern(row.channel),  # type: ignore[arg-type]
                    is_granted,
                    None if is_granted else _STATUS_REASON[row.status],  # type: ignore[index]
                    row.granted_at,
                    row.expires_at,
                    _frozen(row.territories),
                    row.campaign_id,
                    row.declaration_version,
                    None if row.notice_sha256 is None else intern(row.notice_sha256),
                )
                grants[pair] = (*grants.get(pair, _NO_GRANTS), grant)
        out[member_id] = _Member(is_erased, programme, grants)
    return out


_NO_USES: _Uses = {}
_NO_GRANTS_AT_ALL: dict[_Pair, tuple[_Grant, ...]] = {}


_pairs: dict[_Pair, _Pair] = {}


def _shared(data_category: str, data_use: str) -> _Pair:
    pair = (data_category, data_use)
    found = _pairs.get(pair)
    if found is None:
        if len(_pairs) > 10_000:
            _pairs.clear()
        shared = (intern(data_category), intern(data_use))
        found = _pairs.setdefault(shared, shared)
    return found


@functools.lru_cache(maxsize=1024)
def _frozen_of(territories: tuple[str, ...]) -> frozenset[str]:
    return frozenset(territories)


def _frozen(territories: tuple[str, ...] | None) -> frozenset[str]:
    return _frozen_of(territories or ())


def _by_campaign(row: repository.CheckRow) -> tuple[UUID | None, int]:
    return (row.campaign_id, row.declaration_version or 0)


def _by_campaign_channel(row: repository.CheckRow) -> tuple[UUID | None, str]:
    return (row.campaign_id, row.channel or "")


def _decide(check: ConsentCheck, at: datetime, member: _Member | None) -> Decision:
    """The answer to ``check`` at ``at`` from the member's rows."""
    channel = check.channel.value
    if member is None or member.erased:
        reason = CheckReason.MEMBER_UNKNOWN if member is None else CheckReason.MEMBER_ERASED
        return Decision(
            "deny",
            reason,
            check.member_id,
            check.data_category,
            check.data_use,
            channel,
            check.territory,
            at,
        )
    pair = (check.data_category, check.data_use)
    territory = check.territory
    rank = 0
    reason = CheckReason.NO_CONSENT
    basis: _Basis | _Grant | None = None
    for use in member.programme.get(pair, _NO_PROGRAMME):
        if channel not in use.channels:
            found = CheckReason.CHANNEL_NOT_COVERED
        elif territory not in use.territories:
            found = CheckReason.TERRITORY_NOT_COVERED
        else:
            return _answer(check, channel, at, "allow", CheckReason.PROGRAMME_USE, use.basis)
        if _DENY_RANK[found] > rank:
            rank, reason, basis = _DENY_RANK[found], found, use.basis
    for grant in member.grants.get(pair, _NO_GRANTS):
        expires_at = grant.expires_at
        if grant.channel != channel:
            if not grant.granted or expires_at is None or at >= expires_at:
                continue
            found = CheckReason.CHANNEL_NOT_COVERED
        elif grant.reason is not None:
            found = grant.reason
        elif expires_at is None or at >= expires_at:
            found = CheckReason.EXPIRED
        elif grant.granted_at is None or at < grant.granted_at:
            found = CheckReason.NO_CONSENT
        elif territory not in grant.territories:
            found = CheckReason.TERRITORY_NOT_COVERED
        else:
            return _answer(check, channel, at, "allow", CheckReason.CONSENT_GRANTED, grant)
        if _DENY_RANK[found] > rank:
            rank, reason, basis = _DENY_RANK[found], found, grant
    return _answer(check, channel, at, "deny", reason, basis)


def _answer(
    check: ConsentCheck,
    channel: str,
    at: datetime,
    decision: Literal["allow", "deny"],
    reason: CheckReason,
    basis: _Basis | _Grant | None,
) -> Decision:
    if basis is None:
        return Decision(
            decision,
            reason,
            check.member_id,
            check.data_category,
            check.data_use,
            channel,
            check.territory,
            at,
        )
    return Decision(
        decision,
        reason,
        check.member_id,
        check.data_category,
        check.data_use,
        channel,
        check.territory,
        at,
        basis.campaign_id,
        basis.declaration_version,
        basis.notice_sha256,
        basis.expires_at,
    )


_registry: CacheRegistry[_Member] | None = None
_registry_lock = threading.Lock()


def _caches() -> CacheRegistry[_Member]:
    global _registry
    if _registry is None:
        with _registry_lock:
            if _registry is None:
                _registry = CacheRegistry(ConsentSettings().check_cache_members)
    return _registry


def configure_check_cache(*, members: int) -> None:
    """Keep at most ``members`` members' rows in this process's check cache (0: none);
    empties the cache. Without a call, ``PARRAIN_CONSENT_CHECK_CACHE_MEMBERS`` decides."""
    global _registry
    with _registry_lock:
        if _registry is None:
            _registry = CacheRegistry(members)
        else:
            _registry.resize(members)


def check_cache(session: Session) -> CheckCache[_Member] | None:
    """The check cache of the session's database in this process (``None``: off)."""
    bind = session.get_bind()
    return _caches().of(bind.engine.pool)


def check_many(
    *,
    session: Session,
    checks: Sequence[ConsentCheck],
    clock: Clock,
    use_cache: bool = True,
) -> list[Decision]:
    """Answer ``checks`` in order.

    Programme uses declared in the latest declaration of a campaign the member is enrolled
    in are allowed (``programme_use``) on their declared channels and territories; optional
    uses only with a grant in force at ``at`` (default now) covering the channel and
    territory (``consent_granted``). Otherwise ``deny`` with the most specific reason.

    The members' rows come from the process's check cache (ADR 25), brought up to date by
    one statement that reads the consent version and the members changed since; members it
    lacks are read in a second statement. Without the cache (``use_cache=False``, a cache
    size of 0, or a transaction that has written), one statement reads what the batch needs.
    """
    if not checks:
        return []
    now = clock.now()
    member_ids = {check.member_id for check in checks}
    cache = check_cache(session) if use_cache else None
    members: dict[UUID, _Member] | None = None
    if cache is not None:
        since = cache.since()
        read = repository.check_version(session, since=since, limit=MAX_CHANGES)
        if read is None:
            cache.clear()  # no state row: a database emptied by hand; read without
        elif read.clean:
            cache.advance(read, since)
            members = cache.get_many(member_ids)
            if len(members) < len(member_ids):
                fetched = _members(
                    session,
                    repository.check_rows(
                        session,
                        member_ids=member_ids - members.keys(),
                        data_categories=None,
                        data_uses=None,
                    ),
                )
                cache.store(read, fetched)
                members.update(fetched)
    if members is None:
        members = _members(
            session,
            repository.check_rows(
                session,
                member_ids=member_ids,
                data_categories={check.data_category for check in checks},
                data_uses={check.data_use for check in checks},
            ),
        )
    found = members.get
    return [
        _decide(
            check, now if check.at is None else check.at.astimezone(UTC), found(check.member_id)
        )
        for check in checks
    ]


def check(
    *, session: Session, check_in: ConsentCheck, clock: Clock, use_cache: bool = True
) -> Decision:
    """One consent check (see :func:`check_many`)."""
    return check_many(session=session, checks=[check_in], clock=clock, use_cache=use_cache)[0]


def prune_changes(*, session: Session, keep: int) -> int:
    """Delete the consent changes older than the last ``keep`` (a process whose cache is
    further behind clears it at its next check); return how many were deleted."""
    return repository.prune_changes(session, keep=keep)
