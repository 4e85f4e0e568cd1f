"""Events received for later (``Prefer: respond-async``, ADR 28). Nothing commits.

Applying an event takes a few hundred microseconds of work (its facts, the friend's
evaluation, perhaps a prize on the ledger); receiving it takes a fraction of that. An
integration that does not need each event's outcome in the answer can have its events
*queued*: :func:`queue_events` claims each id on its ``referral_events`` row, exactly as an
event applied at once does (so idempotency is one rule for both: the same id with the same
body answers the outcome so far, with another body :class:`EventIdReused`), and keeps the
event's canonical JSON on the row, sealed (AES-GCM, bound to the event's id) under a data
key wrapped by the master key: the body holds personal data. The events sealed together
(a group of single events, a batch) share one data key, each row holding it wrapped, so
sealing wraps once per group and a drain unwraps once per key. Its outcome reads
``queued``.

:func:`drain` applies the oldest queued events in one transaction, as a batch of events is
applied (:func:`parrain.referrals.events.apply_work`), writes their outcomes and drops
their sealed bodies. One drain at a time: on PostgreSQL a drain that cannot take the
drain's named lock at once does nothing (another is running and will go on until the queue
is empty); SQLite's writers take turns anyway. A drain that fails is rolled back whole, its
events still queued; :func:`record_failure` counts a failure against one event, and an
event that failed :data:`MAX_ATTEMPTS` times is left aside (*parked*) and counted by
:func:`queue_counts`, not drained again until :func:`retry_parked` (``parrain referral
queued --retry-parked``) gives it its attempts back. An event left aside longer than the
settings keep it (``PARRAIN_REFERRALS_PARKED_KEEP_DAYS``) is discarded by the worker's
hourly sweep (:func:`discard_parked`): its sealed body deleted, its outcome ``ignored``.

Events are applied in the order received (``received_at``, then id), which need not be the
order they happened in: events are applied in any order anyway (see
:mod:`parrain.referrals.events`). An event is evaluated at the time it is drained, not the
time it was received: the lag is the drain's (a fraction of a second when it keeps up).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import TypeAdapter
from sqlalchemy.orm import Session

from parrain.audit import service as audit
from parrain.db.locks import try_lock_name
from parrain.db.session import DriverCursor
from parrain.kit.clock import Clock
from parrain.kit.crypto import (
    WrappedKey,
    decrypt_field,
    encrypt_field,
    new_data_key,
    unwrap_data_key,
    wrap_data_key,
)
from parrain.kit.errors import DecryptionFailed, UnknownKeyId
from parrain.members.service import MemberKeys
from parrain.referrals.errors import EventIdReused
from parrain.referrals.events import (
    EventRows,
    apply_work,
    canonical_body,
    canonical_hash,
    outcome_json,
    prepare_batch,
)
from parrain.referrals.handlers import Work
from parrain.referrals.models import QUEUED
from parrain.referrals.schemas import Event, EventOutcome

#: Drains that may fail on one event before it is left aside.
MAX_ATTEMPTS = 5
#: The named lock one drain at a time holds (PostgreSQL).
DRAIN_LOCK = "referral_events:drain"
#: Who discards parked events, in the audit log.
SYSTEM_ACTOR = "system:referrals"
#: The ``reason`` of a parked event discarded (:func:`discard_parked`).
DISCARDED = "set_aside_too_long"
#: What an operator's retry of the parked events is, in the audit log
#: (:func:`retry_parked_by`).
RETRIED = "referral_events.retried"

_EVENT = TypeAdapter[Event](Event)


@dataclass(frozen=True, slots=True)
class SealedEvent:
    """An event ready to be queued: its body hash and its sealed canonical JSON. Made
    before the transaction (:func:`seal_events`): no database read decides any of it."""

    id: str
    type: str
    digest: str
    key: bytes  # the data key, wrapped by the master key (one per call of seal_events)
    body: bytes  # the canonical JSON, sealed under that data key, bound to the event's id


@dataclass(frozen=True, slots=True)
class QueueCounts:
    """Events queued and not applied yet: ``waiting`` to be drained, ``parked`` left aside
    after :data:`MAX_ATTEMPTS` failed drains (they need a person to look at them)."""

    waiting: int
    parked: int


#: What a wrapped data key of queued events is bound to: not one person's (a key seals a
#: group of events), and only ever unwrapped for a queued body.
_KEY_SUBJECT = "queued-events"


def _context(event_id: str) -> str:
    return f"event:{event_id}:body"


def seal_events(*, events: Sequence[Event], keys: MemberKeys) -> list[SealedEvent]:
    """Hash and seal each event (no database): what :func:`queue_events` stores. The events
    share one new data key, wrapped once."""
    data_key = new_data_key()
    wrapped = wrap_data_key(keys.keyring, data_key, subject=_KEY_SUBJECT).to_bytes()
    sealed: list[SealedEvent] = []
    for event in events:
        canonical = canonical_body(event)
        sealed.append(
            SealedEvent(
                id=event.id,
                type=event.type,
                digest=canonical_hash(canonical, keys),
                key=wrapped,
                body=encrypt_field(data_key, canonical, context=_context(event.id)),
            )
        )
    return sealed


def open_event(
    *,
    event_id: str,
    key: bytes,
    body: bytes,
    keys: MemberKeys,
    opened_keys: dict[bytes, bytes] | None = None,
) -> Event:
    """The event a :class:`SealedEvent` holds, validated again. ``opened_keys`` (wrapped →
    data key) spares unwrapping a key again for the events sealed with it."""
    data_key = opened_keys.get(key) if opened_keys is not None else None
    if data_key is None:
        wrapped = WrappedKey.from_bytes(key)
        try:
            data_key = unwrap_data_key(keys.keyring, wrapped, subject=_KEY_SUBJECT)
        except UnknownKeyId:
            raise
        except DecryptionFailed:
            # Queued before its group shared a key (ADR 29): the key is bound to its event.
            data_key = unwrap_data_key(keys.keyring, wrapped, subject=f"event:{event_id}")
        if opened_keys is not None:
            opened_keys[key] = data_key
    canonical = decrypt_field(data_key, body, context=_context(event_id))
    return _EVENT.validate_python(json.loads(canonical))


def _queued_outcome(event: SealedEvent) -> EventOutcome:
    return EventOutcome(event_id=event.id, type=event.type, status="queued")


def queue_events(
    *, session: Session, events: Sequence[SealedEvent], clock: Clock
) -> list[EventOutcome | EventIdReused]:
    """Claim and keep ``events`` for a later drain; one result per event, in order: a
    ``queued`` outcome for a new one; for an id already received (or earlier in
    ``events``), its outcome so far if the body is the same, else :class:`EventIdReused`
    (nothing of that event is written).

    The ids are claimed by one ``INSERT … ON CONFLICT DO NOTHING RETURNING id``: in the
    common case, no id received before, that statement is all (on PostgreSQL a concurrent
    claim of the same id waits for the other transaction, then counts as received); only
    the ids it did not insert are read back."""
    firsts: dict[str, SealedEvent] = {}
    for event in events:
        firsts.setdefault(event.id, event)
    rows = EventRows(session)
    inserted = _claim(session, rows, list(firsts.values()), clock)
    stored = rows.stored([event_id for event_id in firsts if event_id not in inserted])
    results: list[EventOutcome | EventIdReused] = []
    for event in events:
        if event.id in inserted:
            same = firsts[event.id].digest == event.digest
            answer = _queued_outcome(event)
        else:
            digest, outcome = stored[event.id]
            same = digest == event.digest
            answer = EventOutcome.model_validate(outcome)
        results.append(
            answer
            if same
            else EventIdReused(
                f"event {event.id!r} was already received with a different body",
                event_id=event.id,
            )
        )
    return results


def _claim(
    session: Session, rows: EventRows, events: Sequence[SealedEvent], clock: Clock
) -> set[str]:
    """Insert the rows of ``events`` (distinct ids) whose id is free; the ids inserted."""
    received = rows.columns.encode("received_at", clock.now())
    mark = rows.mark
    json_mark = mark if rows.sqlite else f"{mark}::json"
    values = f"({mark}, {mark}, {mark}, {mark}, {json_mark}, {mark}, {mark})"
    inserted: set[str] = set()
    with DriverCursor.of(session) as cursor:
        for start in range(0, len(events), _CLAIMS_PER_STATEMENT):
            part = events[start : start + _CLAIMS_PER_STATEMENT]
            sql = (
                "INSERT INTO referral_events "  # noqa: S608
                "(id, type, body_hash, received_at, outcome, queued_key, queued_body) "
                f"VALUES {', '.join(values for _ in part)} "
                "ON CONFLICT (id) DO NOTHING RETURNING id"
            )
            params: list[object] = []
            for event in part:
                params += (
                    event.id,
                    event.type,
                    event.digest,
                    received,
                    outcome_json(_queued_outcome(event)),
                    event.key,
                    event.body,
                )
            inserted.update(event_id for (event_id,) in cursor.query(sql, params))
    return inserted


#: Rows per claiming statement: 7 values each, well inside SQLite's and PostgreSQL's limits
#: on a statement's parameters.
_CLAIMS_PER_STATEMENT = 500


def drain(
    *,
    session: Session,
    keys: MemberKeys,
    clock: Clock,
    limit: int,
    only: Sequence[str] | None = None,
    skip: Collection[str] = (),
) -> int:
    """Apply up to ``limit`` queued events, oldest first (or just those of ``only`` still
    queued), but none of ``skip``, in this transaction; how many were applied. 0 when the
    queue is empty, or on PostgreSQL when another drain is running."""
    if limit < 1:
        raise ValueError("a drain applies at least one event")
    if not try_lock_name(session, DRAIN_LOCK):
        return 0
    rows = EventRows(session)
    if only is not None and not only:
        return 0
    where, params = _waiting(rows.mark, only=only, skip=skip)
    sql = (
        "SELECT id, body_hash, queued_key, queued_body FROM referral_events "  # noqa: S608
        f"WHERE {where} ORDER BY received_at, id LIMIT {int(limit)}"
    )
    with DriverCursor.of(session) as cursor:
        found = cursor.query(sql, params)
    if not found:
        return 0
    opened_keys: dict[bytes, bytes] = {}
    events = [
        open_event(
            event_id=event_id, key=bytes(key), body=bytes(body), keys=keys, opened_keys=opened_keys
        )
        for event_id, _, key, body in found
    ]
    batch = prepare_batch(events=events, keys=keys, clock=clock)
    items = [
        Work(event=event, digest=digest)
        for event, (_, digest, _, _) in zip(events, found, strict=True)
    ]
    outcomes = apply_work(session, items, batch=batch, clock=clock)
    rows.set_outcomes(outcomes, dequeue=True)
    return len(outcomes)


def next_queued(*, session: Session, limit: int, skip: Collection[str] = ()) -> list[str]:
    """The ids of the oldest queued events not left aside, but none of ``skip`` (what the
    next drain takes)."""
    where, params = _waiting(EventRows(session).mark, only=None, skip=skip)
    sql = (
        f"SELECT id FROM referral_events WHERE {where} "  # noqa: S608
        f"ORDER BY received_at, id LIMIT {int(limit)}"
    )
    with DriverCursor.of(session) as cursor:
        return [event_id for (event_id,) in cursor.query(sql, params)]


def _waiting(
    mark: str, *, only: Sequence[str] | None, skip: Collection[str]
) -> tuple[str, list[object]]:
    """The condition (and its parameters) of the queued events a drain may take."""
    where = f"{QUEUED} AND queued_attempts < {MAX_ATTEMPTS}"
    params: list[object] = []
    if only is not None:
        where += f" AND id IN ({', '.join(mark for _ in only)})"
        params.extend(only)
    if skip:
        where += f" AND id NOT IN ({', '.join(mark for _ in skip)})"
        params.extend(skip)
    return where, params


def record_failure(*, session: Session, event_id: str) -> int:
    """Count a failed drain against queued event ``event_id``; its failures so far (0 if it
    is no longer queued)."""
    mark = EventRows(session).mark
    with DriverCursor.of(session) as cursor:
        cursor.execute(
            f"UPDATE referral_events SET queued_attempts = queued_attempts + 1 "  # noqa: S608
            f"WHERE id = {mark} AND {QUEUED}",
            (event_id,),
        )
        found = cursor.query(
            f"SELECT queued_attempts FROM referral_events WHERE id = {mark} AND {QUEUED}",  # noqa: S608
            (event_id,),
        )
    return int(found[0][0]) if found else 0


def queue_counts(*, session: Session) -> QueueCounts:
    """How many events are queued: waiting, and left aside."""
    sql = (
        f"SELECT queued_attempts < {MAX_ATTEMPTS}, COUNT(*) FROM referral_events "  # noqa: S608
        f"WHERE {QUEUED} GROUP BY queued_attempts < {MAX_ATTEMPTS}"
    )
    with DriverCursor.of(session) as cursor:
        counts = {bool(waiting): int(count) for waiting, count in cursor.query(sql)}
    return QueueCounts(waiting=counts.get(True, 0), parked=counts.get(False, 0))


def retry_parked(*, session: Session) -> int:
    """Give every event left aside its attempts back, so the next drain tries it again (once
    what failed it was mended); how many."""
    with DriverCursor.of(session) as cursor:
        count = len(
            cursor.query(
                f"UPDATE referral_events SET queued_attempts = 0 "  # noqa: S608
                f"WHERE {QUEUED} AND queued_attempts >= {MAX_ATTEMPTS} RETURNING id"
            )
        )
    return count


def discard_parked(
    *, session: Session, clock: Clock, keep_days: int, limit: int = 500
) -> list[str]:
    """Discard up to ``limit`` events left aside and received more than ``keep_days`` ago:
    nobody mended what failed them, and their sealed bodies hold personal data. Each
    loses its body and key, and its outcome becomes ``ignored`` with reason
    :data:`DISCARDED` (a replay answers that; an event that still matters is sent again
    under a new id). The ids discarded, written to the audit log; an event retried
    meanwhile is left alone."""
    if keep_days < 1:
        raise ValueError("parked events are kept at least a day")
    rows = EventRows(session)
    mark = rows.mark
    parked = f"{QUEUED} AND queued_attempts >= {MAX_ATTEMPTS}"
    cutoff = rows.columns.encode("received_at", clock.now() - timedelta(days=keep_days))
    with DriverCursor.of(session) as cursor:
        found = cursor.query(
            f"SELECT id, type FROM referral_events WHERE {parked} "  # noqa: S608
            f"AND received_at < {mark} ORDER BY received_at, id LIMIT {int(limit)}",
            (cutoff,),
        )
        discarded: list[str] = []
        for event_id, event_type in found:
            outcome = EventOutcome(
                event_id=event_id, type=event_type, status="ignored", reason=DISCARDED
            )
            changed = cursor.query(
                f"UPDATE referral_events SET outcome = {rows.json_mark}, queued_key = NULL, "  # noqa: S608
                f"queued_body = NULL WHERE id = {mark} AND {parked} RETURNING id",
                (outcome_json(outcome), event_id),
            )
            discarded.extend(event_id for (event_id,) in changed)
    if discarded:
        audit.record(
            session=session,
            actor=SYSTEM_ACTOR,
            action="referral_events.discarded",
            subject="referral_events",
            details={"event_ids": discarded, "reason": DISCARDED, "keep_days": keep_days},
            clock=clock,
        )
    return discarded


@dataclass(frozen=True, slots=True)
class ParkedEvent:
    """An event left aside, as a person is shown it: never anything of its sealed body."""

    id: str
    type: str
    received_at: datetime
    attempts: int  # failed drains so far (at least :data:`MAX_ATTEMPTS`)


def parked_events(*, session: Session, limit: int) -> list[ParkedEvent]:
    """Up to ``limit`` events left aside, oldest first (``received_at``, then id): their id,
    type, when received and failed drains; their bodies stay sealed, and are not read."""
    if limit < 1:
        raise ValueError("a list of parked events holds at least one")
    rows = EventRows(session)
    sql = (
        "SELECT id, type, received_at, queued_attempts FROM referral_events "  # noqa: S608
        f"WHERE {QUEUED} AND queued_attempts >= {MAX_ATTEMPTS} "
        f"ORDER BY received_at, id LIMIT {int(limit)}"
    )
    with DriverCursor.of(session) as cursor:
        found = cursor.query(sql)
    return [
        ParkedEvent(
            id=event_id,
            type=event_type,
            received_at=rows.columns.decode_columns(["received_at"], (received,))["received_at"],
            attempts=int(attempts),
        )
        for event_id, event_type, received, attempts in found
    ]


def retry_parked_by(*, session: Session, actor: str, clock: Clock) -> int:
    """:func:`retry_parked` on ``actor``'s behalf (an operator), written to the audit log
    in the same transaction when it gave any event its attempts back; how many."""
    count = retry_parked(session=session)
    if count:
        audit.record(
            session=session,
            actor=actor,
            action=RETRIED,
            subject="referral_events",
            details={"count": count},
            clock=clock,
        )
    return count
