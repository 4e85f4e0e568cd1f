"""The events the marketplace sends: install, signup, order, refund, chargeback,
account_closed. Nothing commits.

Each event is idempotent by its id. The event rows are written first, so two deliveries of
one id race on its primary key: the loser's transaction fails and is retried by
``Database.run``, then finds the winner's row. The same id with the same body answers the
first outcome; with another body, :class:`EventIdReused` (HTTP 409), raised before anything
is written. Bodies are compared by a keyed hash of their canonical form (they hold personal
data: a plain hash could be reversed by guessing).

Events may arrive in any order. Each stores its fact (an install, a signup, an order, a
refund or chargeback — kept even before its order —, a closed account — kept even before
its owner signed up); then every friend the batch's facts concern is evaluated from all the
facts (:func:`parrain.referrals.progress.evaluate_friend`), once, and every enrolment whose
count may have moved is reconciled, once. A batch of events is processed as a whole:
:class:`~parrain.referrals.facts.Facts` loads what it needs with one query per kind, and
writes with one statement per table (ADR 8).

On PostgreSQL, events about the same device, user id, email or order take turns (named
transaction locks), so two of them in concurrent transactions cannot each miss the other's
fact; SQLite writers are serialised anyway.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel
from sqlalchemy import Column, MetaData, Table
from sqlalchemy.orm import Session

from parrain.db.locks import lock_names
from parrain.db.rows import TableRows, rows_of
from parrain.db.session import DriverCursor
from parrain.kit.clock import Clock
from parrain.kit.crypto import lookup_hash
from parrain.kit.pii import Pii
from parrain.members import service as members
from parrain.members.models import Member
from parrain.members.schemas import MemberCreate
from parrain.members.service import MemberKeys
from parrain.referrals import progress
from parrain.referrals.errors import EventIdReused, EventNotFound
from parrain.referrals.facts import Facts, Row, chunks
from parrain.referrals.handlers import (
    IP_PURPOSE,
    USER_AGENT_PURPOSE,
    Hashes,
    Work,
    apply_fact,
    parsed_code,
)
from parrain.referrals.models import ReferralEvent
from parrain.referrals.schemas import (
    AccountClosedEvent,
    ChargebackEvent,
    Event,
    EventOutcome,
    InstallEvent,
    OrderEvent,
    RefundEvent,
    SignupEvent,
)
from parrain.referrals.service import device_hash

_BODY_PURPOSE = "referral_event_body"
_EVENTS: Table = ReferralEvent.__table__  # type: ignore[assignment]
_MEMBERS: Table = Member.__table__  # type: ignore[assignment]
#: The event table's columns but ``outcome`` (JSON, which :mod:`parrain.db.rows` does not
#: convert): their values are encoded as SQLAlchemy stores them.
_EVENT_COLUMNS = Table(
    _EVENTS.name,
    MetaData(),
    *(Column(c.name, c.type) for c in _EVENTS.columns if c.name != "outcome"),
)
_event_columns: dict[str, TableRows] = {}


class EventRows:
    """The event rows on the driver's cursor (SQLAlchemy's work per statement cost more than
    the database's, ADR 7). ``outcome`` is a JSON column: written as ``json.dumps`` text (on
    PostgreSQL cast to ``json``), as SQLAlchemy's JSON type writes it, and read back parsed
    (psycopg parses a ``json`` column itself)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        dialect = session.get_bind().dialect.name
        self.sqlite = dialect == "sqlite"
        columns = _event_columns.get(dialect)
        if columns is None:
            columns = _event_columns[dialect] = TableRows(_EVENT_COLUMNS, dialect)
        self.columns = columns
        mark = "?" if self.sqlite else "%s"
        self.mark = mark
        self.json_mark = json_mark = mark if self.sqlite else f"{mark}::json"
        self.insert_sql = (
            f"INSERT INTO {_EVENTS.name} (id, type, body_hash, received_at, outcome) "  # noqa: S608
            f"VALUES ({mark}, {mark}, {mark}, {mark}, {json_mark})"
        )
        self.update_sql = f"UPDATE {_EVENTS.name} SET outcome = {json_mark} WHERE id = {mark}"  # noqa: S608
        self.dequeue_sql = (
            f"UPDATE {_EVENTS.name} SET outcome = {json_mark}, "  # noqa: S608
            f"queued_key = NULL, queued_body = NULL WHERE id = {mark}"
        )

    def stored(self, ids: Sequence[str]) -> dict[str, tuple[str, dict[str, Any]]]:
        """The body hash and outcome of each of ``ids`` already received."""
        found: dict[str, tuple[str, dict[str, Any]]] = {}
        with DriverCursor.of(self.session) as cursor:
            for part in chunks(ids):
                sql = (
                    f"SELECT id, body_hash, outcome FROM {_EVENTS.name} "  # noqa: S608
                    f"WHERE id IN ({', '.join(self.mark for _ in part)})"
                )
                for event_id, digest, outcome in cursor.query(sql, part):
                    found[event_id] = (
                        digest,
                        json.loads(outcome) if isinstance(outcome, str | bytes) else outcome,
                    )
        return found

    def insert(self, rows: Sequence[tuple[str, str, str, datetime]]) -> None:
        """Claim the ids: rows of (id, type, body hash, received at), outcome still empty."""
        received = self.columns.encode
        empty = json.dumps({})
        with DriverCursor.of(self.session) as cursor:
            cursor.executemany(
                self.insert_sql,
                [
                    (event_id, kind, digest, received("received_at", at), empty)
                    for event_id, kind, digest, at in rows
                ],
            )

    def set_outcomes(self, outcomes: Sequence[EventOutcome], *, dequeue: bool = False) -> None:
        """Write each outcome as ``outcome.model_dump(mode="json")`` would give it; with
        ``dequeue``, also drop the sealed body of each (applied from the queue)."""
        with DriverCursor.of(self.session) as cursor:
            cursor.executemany(
                self.dequeue_sql if dequeue else self.update_sql,
                [(outcome_json(outcome), outcome.event_id) for outcome in outcomes],
            )


def outcome_json(outcome: EventOutcome) -> str:
    """An outcome as its ``outcome`` column holds it: ``outcome.model_dump(mode="json")`` as
    SQLAlchemy's JSON type writes it (``json.dumps``), without pydantic's work for it."""
    return json.dumps(
        {
            "event_id": outcome.event_id,
            "type": outcome.type,
            "status": outcome.status,
            "reason": outcome.reason,
            "friend_id": _text(outcome.friend_id),
            "enrolment_id": _text(outcome.enrolment_id),
        }
    )


def _text(value: UUID | None) -> str | None:
    return None if value is None else str(value)


def _plain(value: object) -> object:
    if isinstance(value, Pii):
        return value.reveal()
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return value


def canonical_body(event: BaseModel) -> str:
    """The event's canonical JSON, personal values in the clear: what its body hash is made
    of, and what an event queued for later keeps, sealed (:mod:`parrain.referrals.queue`)."""
    body = {name: _plain(getattr(event, name)) for name in type(event).model_fields}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)


def canonical_hash(canonical: str, keys: MemberKeys) -> str:
    """Keyed hash of a :func:`canonical_body`."""
    return lookup_hash(keys.lookup, canonical, purpose=_BODY_PURPOSE)


def body_hash(event: BaseModel, keys: MemberKeys) -> str:
    """Keyed hash of the event's canonical JSON (personal values included, in the clear)."""
    return canonical_hash(canonical_body(event), keys)


def ingest(*, session: Session, event: Event, keys: MemberKeys, clock: Clock) -> EventOutcome:
    """Apply one event, or answer the outcome it had the first time (see the module doc)."""
    [result] = ingest_batch(session=session, events=[event], keys=keys, clock=clock)
    if isinstance(result, EventIdReused):
        raise result
    return result


def outcome_of(*, session: Session, event_id: str) -> EventOutcome:
    """What event ``event_id`` did (its first outcome): for a client whose request timed out
    before the answer came, to learn whether it was applied without sending it again."""
    row = session.get(ReferralEvent, event_id)
    if row is None or not row.outcome:
        raise EventNotFound(f"no event {event_id!r} was received", event_id=event_id)
    return EventOutcome.model_validate(row.outcome)


@dataclass(frozen=True, slots=True)
class PreparedBatch:
    """What a batch needs that no database read decides: body hashes, lookup hashes and the
    member rows its signups would create (a data key wrapped and fields sealed for each).
    Made before the write transaction (:func:`prepare_batch`), so that this work, about
    two fifths of a batch, does not hold the database's write lock."""

    events: Sequence[Event]
    digests: list[str]
    hashes: Hashes
    members: dict[tuple[str, str], dict[str, Any]]  # column values of each new member


def prepare_batch(*, events: Sequence[Event], keys: MemberKeys, clock: Clock) -> PreparedBatch:
    hashes = _hashes(events, keys)
    built: dict[tuple[str, str], dict[str, Any]] = {}
    for event in events:
        if isinstance(event, SignupEvent):
            user = hashes.user[event.marketplace_user_id.reveal()]
            if (event.market, user) not in built:
                built[(event.market, user)] = members.member_values(
                    # Not validated again: a signup's fields have MemberCreate's own types
                    # (MarketplaceUserId, Email, Username), already validated with the event.
                    member_in=MemberCreate.model_construct(
                        market=event.market,
                        marketplace_user_id=event.marketplace_user_id,
                        email=event.email,
                        username=event.username,
                        photo_ref=None,
                        paypal_receiver=None,
                    ),
                    keys=keys,
                    clock=clock,
                    user_hash=user,
                    email_lookup_hash=hashes.email[event.email.reveal()],
                )
    return PreparedBatch(
        events=events,
        digests=[body_hash(event, keys) for event in events],
        hashes=hashes,
        members=built,
    )


def merged(batches: Sequence[PreparedBatch]) -> PreparedBatch:
    """One prepared batch of the events of ``batches``, in order; their ids must be distinct
    (several single events applied together, see :mod:`parrain.db.group_commit`)."""
    if len(batches) == 1:
        return batches[0]
    first = batches[0].hashes
    hashes = Hashes(lookup=first.lookup, device={}, user={}, email={}, other={})
    members: dict[tuple[str, str], dict[str, Any]] = {}
    for batch in batches:
        hashes.device.update(batch.hashes.device)
        hashes.user.update(batch.hashes.user)
        hashes.email.update(batch.hashes.email)
        hashes.other.update(batch.hashes.other)
        for key, values in batch.members.items():
            members.setdefault(key, values)  # one new member per person, whoever built it
    return PreparedBatch(
        events=[event for batch in batches for event in batch.events],
        digests=[digest for batch in batches for digest in batch.digests],
        hashes=hashes,
        members=members,
    )


def ingest_batch(
    *, session: Session, events: Sequence[Event], keys: MemberKeys, clock: Clock
) -> list[EventOutcome | EventIdReused]:
    """Apply ``events`` in order; one result per event: its outcome (the first one, for an
    id already received with the same body) or the :class:`EventIdReused` refusal (nothing
    of that event is written). Ids must be distinct within the batch."""
    batch = prepare_batch(events=events, keys=keys, clock=clock)
    return apply_batch(session=session, batch=batch, clock=clock)


def apply_batch(
    *, session: Session, batch: PreparedBatch, clock: Clock
) -> list[EventOutcome | EventIdReused]:
    """:func:`ingest_batch` with the preparation made beforehand."""
    events, digests = batch.events, batch.digests
    event_rows = EventRows(session)
    stored = event_rows.stored([event.id for event in events])
    results: list[EventOutcome | EventIdReused | None] = [None] * len(events)
    work: list[tuple[int, Work]] = []
    for index, (event, digest) in enumerate(zip(events, digests, strict=True)):
        known = stored.get(event.id)
        if known is None:
            work.append((index, Work(event=event, digest=digest)))
        elif known[0] == digest:
            results[index] = EventOutcome.model_validate(known[1])
        else:
            results[index] = EventIdReused(
                f"event {event.id!r} was already received with a different body",
                event_id=event.id,
            )
    if work:
        now = clock.now()
        event_rows.insert(  # claims the ids before any other write
            [(item.event.id, item.event.type, item.digest, now) for _, item in work]
        )
        outcomes = apply_work(session, [item for _, item in work], batch=batch, clock=clock)
        event_rows.set_outcomes(outcomes)
        for (index, _), outcome in zip(work, outcomes, strict=True):
            results[index] = outcome
    return [result for result in results if result is not None]


def _hashes(events: Sequence[Event], keys: MemberKeys) -> Hashes:
    device: dict[str, str] = {}
    user: dict[str, str] = {}
    email: dict[str, str] = {}
    other: dict[tuple[str, str], str] = {}
    for event in events:
        if isinstance(event, InstallEvent | SignupEvent):
            raw = event.device_id.reveal()
            device.setdefault(raw, device_hash(keys, raw))
        if isinstance(event, SignupEvent | OrderEvent | AccountClosedEvent):
            raw = event.marketplace_user_id.reveal()
            user.setdefault(raw, members.marketplace_user_hash(keys, raw))
        if isinstance(event, SignupEvent):
            raw = event.email.reveal()
            email.setdefault(raw, members.email_hash(keys, raw))
            for purpose, value in ((IP_PURPOSE, event.ip), (USER_AGENT_PURPOSE, event.user_agent)):
                if value is not None:
                    raw = value.reveal()
                    if (purpose, raw) not in other:
                        other[(purpose, raw)] = lookup_hash(keys.lookup, raw, purpose=purpose)
    return Hashes(lookup=keys.lookup, device=device, user=user, email=email, other=other)


def apply_work(
    session: Session, items: Sequence[Work], *, batch: PreparedBatch, clock: Clock
) -> list[EventOutcome]:
    """Apply new events (their ids claimed, their outcomes not written): lock what they
    name, load what they need, store their facts, evaluate the friends they concern and
    reconcile the enrolments those count for; their outcomes, in order."""
    hashes = batch.hashes
    keys = _batch_keys(items, hashes)
    lock_names(
        session,
        [
            *(f"device:{market}:{value}" for market, value in keys.devices),
            *(f"user:{market}:{value}" for market, value in keys.users),
            *(f"email:{market}:{value}" for market, value in keys.emails),
            *(f"order:{market}:{ref}" for market, ref in keys.refs),
        ],
    )
    facts = Facts(session)
    _preload(facts, keys)
    _register_friends_as_members(session, facts, items, hashes, batch.members)
    for item in items:
        apply_fact(facts, item, hashes)
    touched: dict[UUID, Row] = {}
    for item in items:
        for friend in item.touched:
            touched[friend["id"]] = friend
    _prepare_evaluation(facts, touched.values())
    now = clock.now()
    enrolments: set[UUID] = set()
    for friend in sorted(touched.values(), key=lambda f: (f["signed_up_at"], f["id"])):
        enrolments |= progress.evaluate_friend(facts, friend, now=now)
    facts.write()
    progress.reconcile_enrolments(session, enrolments, clock=clock)
    return [
        EventOutcome(
            event_id=item.event.id,
            type=item.event.type,
            status="accepted" if item.status == "accepted" else "ignored",
            reason=item.reason,
            friend_id=item.friend["id"] if item.friend is not None else None,
            enrolment_id=item.friend["enrolment_id"] if item.friend is not None else None,
        )
        for item in items
    ]


@dataclass(frozen=True, slots=True)
class _BatchKeys:
    """What a batch's events name: the rows to lock, then to load."""

    tokens: list[str]
    codes: list[str | None]
    devices: list[tuple[str, str]]
    users: list[tuple[str, str]]
    emails: list[tuple[str, str]]
    refs: list[tuple[str, str]]


def _batch_keys(items: Sequence[Work], hashes: Hashes) -> _BatchKeys:
    keys = _BatchKeys(tokens=[], codes=[], devices=[], users=[], emails=[], refs=[])
    for item in items:
        event = item.event
        market = event.market
        if isinstance(event, InstallEvent):
            if event.token:
                keys.tokens.append(event.token)
            keys.codes.append(parsed_code(event.code)[0])
            keys.devices.append((market, hashes.device[event.device_id.reveal()]))
        elif isinstance(event, SignupEvent):
            keys.codes.append(parsed_code(event.code)[0])
            keys.devices.append((market, hashes.device[event.device_id.reveal()]))
            keys.users.append((market, hashes.user[event.marketplace_user_id.reveal()]))
            keys.emails.append((market, hashes.email[event.email.reveal()]))
        elif isinstance(event, OrderEvent):
            keys.users.append((market, hashes.user[event.marketplace_user_id.reveal()]))
            keys.refs.append((market, event.order_id))
        elif isinstance(event, RefundEvent | ChargebackEvent):
            keys.refs.append((market, event.order_id))
        else:
            keys.users.append((market, hashes.user[event.marketplace_user_id.reveal()]))
    return keys


def _preload(facts: Facts, keys: _BatchKeys) -> None:
    facts.ensure_tokens(keys.tokens)
    facts.ensure_codes(keys.codes)
    facts.ensure_friends(users=keys.users, devices=keys.devices, emails=keys.emails)
    facts.ensure_install_devices(keys.devices)
    facts.ensure_orders(refs=keys.refs)
    facts.ensure_sightings(
        [
            *((market, "user", value) for market, value in keys.users),
            *((market, "device", value) for market, value in keys.devices),
            *((market, "email", value) for market, value in keys.emails),
        ]
    )


def _register_friends_as_members(
    session: Session,
    facts: Facts,
    items: Sequence[Work],
    hashes: Hashes,
    built: dict[tuple[str, str], dict[str, Any]],
) -> None:
    """Friends are members too (their personal data is sealed the same way): insert, in one
    statement, the prepared member rows of this batch's new signups not yet members."""
    wanted: set[tuple[str, str]] = set()
    for item in items:
        event = item.event
        if isinstance(event, SignupEvent):
            user = hashes.user[event.marketplace_user_id.reveal()]
            if facts.friend_of_user(event.market, user) is None:
                wanted.add((event.market, user))
    by_market: dict[str, list[str]] = {}
    for market, user in sorted(wanted):
        by_market.setdefault(market, []).append(user)
    existing: dict[tuple[str, str], UUID] = {}
    for market, users in by_market.items():
        found = members.existing_by_marketplace_user(
            session=session, market=market, user_hashes=users
        )
        existing |= {(market, user): member_id for user, member_id in found.items()}
    new_members = [built[key] for key in sorted(wanted) if key not in existing]
    if new_members:
        with DriverCursor.of(session) as cursor:
            rows_of(_MEMBERS, session.get_bind().dialect.name).insert(
                cursor, [{"erased_at": None, **member} for member in new_members]
            )
    facts.member_ids = existing | {
        (member["market"], member["marketplace_user_hash"]): member["id"] for member in new_members
    }


def _prepare_evaluation(facts: Facts, friends: Collection[Row]) -> None:
    """Load, in bulk, what evaluating these friends reads."""
    devices = [(f["market"], f["device_hash"]) for f in friends]
    users = [(f["market"], f["user_hash"]) for f in friends]
    facts.ensure_install_devices(devices)
    facts.ensure_click_devices(device for _, device in devices)
    installs = [row for key in devices for row in facts.installs_by_device[key]]
    facts.ensure_click_ids(row["click_id"] for row in installs)
    clicks = [row for _, device in devices for row in facts.clicks_by_device[device]]
    facts.ensure_codes([*(row["code"] for row in installs), *(f["typed_code"] for f in friends)])
    facts.ensure_enrolments(row["enrolment_id"] for row in clicks)
    facts.ensure_campaigns(row["campaign_id"] for row in clicks)
    facts.ensure_campaigns(row["campaign_id"] for row in facts.enrolments.values())
    facts.ensure_orders(users=users)
    facts.ensure_closures(users)
    facts.ensure_sightings(
        (f["market"], kind, f[f"{kind}_hash"])
        for f in friends
        for kind in ("user", "device", "email")
    )
    facts.ensure_posted_releases(f["enrolment_id"] for f in friends)
