"""The consent check: may this member's data of this category be used for this use, on
this channel, in this territory, now? ``allow`` or ``deny``, with a stable reason and the
declaration version and notice hash the answer rests on. Read-only.

Every check reads the current state from the database (one statement for a whole batch):
there is no cache of answers, so a withdrawal committed before a check is what that check
sees. The only thing kept in memory is the parsed programme items of declaration versions,
which are written once and never change.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID

from sqlalchemy.orm import Session

from parrain.consent import repository
from parrain.consent.schemas import (
    CheckReason,
    ConsentCheck,
    ConsentDecision,
    DeclarationCreate,
    LegalBasis,
)
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


class _Declarations:
    """Declaration versions parsed once per process. Safe to keep: a version and its
    notices are written once (the ORM refuses changes); which version is the latest is
    read from the database on every check."""

    def __init__(self, size: int = _CACHED_DECLARATIONS) -> None:
        self._size = size
        self._entries: OrderedDict[UUID, _Declared] = OrderedDict()
        self._lock = threading.Lock()

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


@dataclass(slots=True)
class _MemberRows:
    erased: bool = False
    grants: list[Any] | None = None
    programme: list[Any] | None = None


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


def _deny(check: ConsentCheck, at: datetime, reason: CheckReason, row: Any | None) -> Decision:
    return _decision(check, at, "deny", reason, row)


def _decision(
    check: ConsentCheck,
    at: datetime,
    decision: Literal["allow", "deny"],
    reason: CheckReason,
    row: Any | None,
) -> Decision:
    if row is None:
        return Decision(
            decision,
            reason,
            check.member_id,
            check.data_category,
            check.data_use,
            check.channel.value,
            check.territory,
            at,
        )
    return Decision(
        decision,
        reason,
        check.member_id,
        check.data_category,
        check.data_use,
        check.channel.value,
        check.territory,
        at,
        row.campaign_id,
        row.declaration_version,
        row.notice_sha256,
        row.expires_at,
    )


@dataclass(frozen=True, slots=True)
class _Basis:
    """What a programme-use answer rests on, shaped like a grant row for :func:`_decision`."""

    campaign_id: UUID
    declaration_version: int
    notice_sha256: str | None
    expires_at: None = None


def _decide(
    session: Session, check: ConsentCheck, at: datetime, rows: _MemberRows | None
) -> Decision:
    if rows is None:
        return _deny(check, at, CheckReason.MEMBER_UNKNOWN, None)
    if rows.erased:
        return _deny(check, at, CheckReason.MEMBER_ERASED, None)
    best: tuple[int, CheckReason, Any | None] = (0, CheckReason.NO_CONSENT, None)
    channel = check.channel.value
    pair = (check.data_category, check.data_use)
    for enrolled in rows.programme or ():
        declared = _declarations.get(session, enrolled.declaration_id)
        use = declared.programme.get(pair) if declared is not None else None
        if declared is None or use is None:
            continue
        basis = _Basis(enrolled.campaign_id, enrolled.declaration_version, declared.notice_sha256)
        if channel not in use.channels:
            reason = CheckReason.CHANNEL_NOT_COVERED
        elif check.territory not in use.territories:
            reason = CheckReason.TERRITORY_NOT_COVERED
        else:
            return _decision(check, at, "allow", CheckReason.PROGRAMME_USE, basis)
        if _DENY_RANK[reason] > best[0]:
            best = (_DENY_RANK[reason], reason, basis)
    for row in rows.grants or ():
        if row.data_category != check.data_category or row.data_use != check.data_use:
            continue
        granted = row.status == "granted"
        if row.channel != channel:
            if not granted or at >= row.expires_at:
                continue
            reason = CheckReason.CHANNEL_NOT_COVERED
        elif granted:
            if at >= row.expires_at:
                reason = CheckReason.EXPIRED
            elif at < row.granted_at:
                reason = CheckReason.NO_CONSENT
            elif check.territory not in row.territories:
                reason = CheckReason.TERRITORY_NOT_COVERED
            else:
                return _decision(check, at, "allow", CheckReason.CONSENT_GRANTED, row)
        else:
            reason = _STATUS_REASON[row.status]
        if _DENY_RANK[reason] > best[0]:
            best = (_DENY_RANK[reason], reason, row)
    return _deny(check, at, best[1], best[2])


def check_many(*, session: Session, checks: Sequence[ConsentCheck], clock: Clock) -> list[Decision]:
    """Answer ``checks`` in order, reading what they need in one statement.

    Programme uses declared in the latest declaration of a campaign the member is enrolled
    in are allowed (``programme_use``) on their declared channels and territories; optional
    uses only with a grant in force at ``at`` (default now) covering the channel and
    territory (``consent_granted``). Otherwise ``deny`` with the most specific reason.
    """
    if not checks:
        return []
    now = clock.now()
    fetched = repository.check_rows(
        session,
        member_ids={check.member_id for check in checks},
        data_categories={check.data_category for check in checks},
        data_uses={check.data_use for check in checks},
    )
    by_member: dict[UUID, _MemberRows] = {}
    grants: defaultdict[UUID, list[Any]] = defaultdict(list)
    programme: defaultdict[UUID, list[Any]] = defaultdict(list)
    for row in fetched:
        if row.kind == "g":
            grants[row.member_id].append(row)
            continue
        if row.member_id not in by_member:
            by_member[row.member_id] = _MemberRows(erased=row.erased)
        if row.declaration_id is not None:
            programme[row.member_id].append(row)
    for member_id, rows in by_member.items():
        rows.grants = grants.get(member_id)
        rows.programme = programme.get(member_id)
    return [
        _decide(
            session,
            check,
            now if check.at is None else check.at.astimezone(UTC),
            by_member.get(check.member_id),
        )
        for check in checks
    ]


def check(*, session: Session, check_in: ConsentCheck, clock: Clock) -> Decision:
    """One consent check (see :func:`check_many`)."""
    return check_many(session=session, checks=[check_in], clock=clock)[0]
