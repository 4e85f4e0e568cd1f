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
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel
from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.orm import Session

from parrain.db.locks import lock_names
from parrain.kit.clock import Clock
from parrain.kit.crypto import LookupKey, lookup_hash
from parrain.kit.ids import derived_id, new_id
from parrain.kit.pii import Pii
from parrain.members import service as members
from parrain.members.models import Member
from parrain.members.schemas import MemberCreate
from parrain.members.service import MemberKeys
from parrain.referrals import progress
from parrain.referrals.codes import parse_code
from parrain.referrals.errors import EventIdReused, EventNotFound, InvalidCode
from parrain.referrals.facts import Facts, Row, chunks
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


def _plain(value: object) -> object:
    if isinstance(value, Pii):
        return value.reveal()
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return value


def body_hash(event: BaseModel, keys: MemberKeys) -> str:
    """Keyed hash of the event's canonical JSON (personal values included, in the clear)."""
    body = {name: _plain(getattr(event, name)) for name in type(event).model_fields}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return lookup_hash(keys.lookup, canonical, purpose=_BODY_PURPOSE)


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


@dataclass
class _Work:
    """One new event of a batch: its hashes, and the outcome being built."""

    event: Event
    digest: str
    status: str = "accepted"
    reason: str | None = None
    friend: Row | None = None
    touched: list[Row] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class PreparedBatch:
    """What a batch needs that no database read decides: body hashes, lookup hashes and the
    member rows its signups would create (a data key wrapped and fields sealed for each).
    Made before the write transaction (:func:`prepare_batch`), so that this work, about
    two fifths of a batch, does not hold the database's write lock."""

    events: Sequence[Event]
    digests: list[str]
    hashes: _Hashes
    members: dict[tuple[str, str], Member]


def prepare_batch(*, events: Sequence[Event], keys: MemberKeys, clock: Clock) -> PreparedBatch:
    hashes = _hashes(events, keys)
    built: dict[tuple[str, str], Member] = {}
    for event in events:
        if isinstance(event, SignupEvent):
            user = hashes.user[event.marketplace_user_id.reveal()]
            if (event.market, user) not in built:
                built[(event.market, user)] = members.build_member(
                    member_in=MemberCreate(
                        market=event.market,
                        marketplace_user_id=event.marketplace_user_id,
                        email=event.email,
                        username=event.username,
                    ),
                    keys=keys,
                    clock=clock,
                    user_hash=user,
                )
    return PreparedBatch(
        events=events,
        digests=[body_hash(event, keys) for event in events],
        hashes=hashes,
        members=built,
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
    stored: dict[str, ReferralEvent] = {}
    for part in chunks([event.id for event in events]):
        for row in session.scalars(select(ReferralEvent).where(ReferralEvent.id.in_(part))):
            stored[row.id] = row
    results: list[EventOutcome | EventIdReused | None] = [None] * len(events)
    work: list[tuple[int, _Work]] = []
    for index, (event, digest) in enumerate(zip(events, digests, strict=True)):
        known = stored.get(event.id)
        if known is None:
            work.append((index, _Work(event=event, digest=digest)))
        elif known.body_hash == digest:
            results[index] = EventOutcome.model_validate(known.outcome)
        else:
            results[index] = EventIdReused(
                f"event {event.id!r} was already received with a different body",
                event_id=event.id,
            )
    if work:
        now = clock.now()
        session.execute(  # claims the ids before any other write
            _EVENTS.insert(),
            [
                {
                    "id": item.event.id,
                    "type": item.event.type,
                    "body_hash": item.digest,
                    "received_at": now,
                    "outcome": {},
                }
                for _, item in work
            ],
        )
        outcomes = _apply(session, [item for _, item in work], batch=batch, clock=clock)
        session.execute(
            update(_EVENTS)
            .where(_EVENTS.c.id == bindparam("event_id"))
            .values(outcome=bindparam("event_outcome")),
            [
                {"event_id": outcome.event_id, "event_outcome": outcome.model_dump(mode="json")}
                for outcome in outcomes
            ],
        )
        for (index, _), outcome in zip(work, outcomes, strict=True):
            results[index] = outcome
    return [result for result in results if result is not None]


@dataclass(frozen=True, slots=True)
class _Hashes:
    lookup: LookupKey
    device: dict[str, str]
    user: dict[str, str]
    email: dict[str, str]


def _hashes(events: Sequence[Event], keys: MemberKeys) -> _Hashes:
    device: dict[str, str] = {}
    user: dict[str, str] = {}
    email: dict[str, str] = {}
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
    return _Hashes(lookup=keys.lookup, device=device, user=user, email=email)


def _parsed_code(text: str | None) -> tuple[str | None, bool]:
    """The canonical code of what was typed, and whether something unreadable was typed."""
    if not text:
        return None, False
    try:
        return parse_code(text).canonical, False
    except InvalidCode:
        return None, True


def _apply(
    session: Session, items: Sequence[_Work], *, batch: PreparedBatch, clock: Clock
) -> list[EventOutcome]:
    hashes = batch.hashes
    markets = {item.event.market for item in items}
    lock_names(
        session,
        [f"device:{m}:{h}" for m in markets for h in hashes.device.values()]
        + [f"user:{m}:{h}" for m in markets for h in hashes.user.values()]
        + [f"email:{m}:{h}" for m in markets for h in hashes.email.values()]
        + [
            f"order:{item.event.market}:{item.event.order_id}"
            for item in items
            if isinstance(item.event, OrderEvent | RefundEvent | ChargebackEvent)
        ],
    )
    facts = Facts(session)
    _preload(facts, items, hashes)
    _register_friends_as_members(session, facts, items, hashes, batch.members)
    for item in items:
        _HANDLERS[item.event.type](facts, item, hashes)
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


def _preload(facts: Facts, items: Sequence[_Work], hashes: _Hashes) -> None:
    tokens: list[str] = []
    codes: list[str | None] = []
    devices: list[tuple[str, str]] = []
    users: list[tuple[str, str]] = []
    emails: list[tuple[str, str]] = []
    refs: list[tuple[str, str]] = []
    for item in items:
        event = item.event
        market = event.market
        if isinstance(event, InstallEvent):
            if event.token:
                tokens.append(event.token)
            codes.append(_parsed_code(event.code)[0])
            devices.append((market, hashes.device[event.device_id.reveal()]))
        elif isinstance(event, SignupEvent):
            codes.append(_parsed_code(event.code)[0])
            devices.append((market, hashes.device[event.device_id.reveal()]))
            users.append((market, hashes.user[event.marketplace_user_id.reveal()]))
            emails.append((market, hashes.email[event.email.reveal()]))
        elif isinstance(event, OrderEvent):
            users.append((market, hashes.user[event.marketplace_user_id.reveal()]))
            refs.append((market, event.order_id))
        elif isinstance(event, RefundEvent | ChargebackEvent):
            refs.append((market, event.order_id))
        else:
            users.append((market, hashes.user[event.marketplace_user_id.reveal()]))
    facts.ensure_tokens(tokens)
    facts.ensure_codes(codes)
    facts.ensure_friends(users=users, devices=devices, emails=emails)
    facts.ensure_install_devices(devices)
    facts.ensure_orders(refs=refs)
    facts.ensure_sightings(
        [
            *((market, "user", value) for market, value in users),
            *((market, "device", value) for market, value in devices),
            *((market, "email", value) for market, value in emails),
        ]
    )


def _register_friends_as_members(
    session: Session,
    facts: Facts,
    items: Sequence[_Work],
    hashes: _Hashes,
    built: dict[tuple[str, str], Member],
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
        columns = [column.key for column in _MEMBERS.columns]
        session.execute(
            _MEMBERS.insert(),
            [{key: getattr(member, key) for key in columns} for member in new_members],
        )
    facts.member_ids = existing | {
        (member.market, member.marketplace_user_hash): member.id for member in new_members
    }


def _on_install(facts: Facts, item: _Work, hashes: _Hashes) -> None:
    event = item.event
    assert isinstance(event, InstallEvent)
    device = hashes.device[event.device_id.reveal()]
    click = facts.click_of_token(event.token) if event.token else None
    code: str | None = None
    campaign_id: UUID | None = None
    if event.token and click is None:
        item.reason = "unknown_token"
    if click is not None:
        enrolment = facts.enrolment(click["enrolment_id"])
        code = enrolment["code"] if enrolment else None
        campaign_id = click["campaign_id"]
    elif event.code:
        typed, unreadable = _parsed_code(event.code)
        enrolment = facts.enrolment_of_code(typed) if typed else None
        if unreadable:
            item.reason = "invalid_code"
        elif enrolment is None:
            item.reason = "unknown_code"
        else:
            code, campaign_id = enrolment["code"], enrolment["campaign_id"]
    facts.add_install(
        {
            "id": derived_id("install", event.id),
            "event_id": event.id,
            "market": event.market,
            "device_hash": device,
            "click_id": click["id"] if click is not None else None,
            "code": code,
            "campaign_id": campaign_id,
            "installed_at": event.at,
        }
    )
    friends = sorted(
        facts.friends_by_device[(event.market, device)],
        key=lambda f: (f["signed_up_at"], f["id"]),
    )
    item.touched.extend(friends)
    item.friend = friends[0] if friends else None


def _optional_hash(key: LookupKey, value: Pii | None, purpose: str) -> str | None:
    return lookup_hash(key, value.reveal(), purpose=purpose) if value else None


def _on_signup(facts: Facts, item: _Work, hashes: _Hashes) -> None:
    event = item.event
    assert isinstance(event, SignupEvent)
    user = hashes.user[event.marketplace_user_id.reveal()]
    existing = facts.friend_of_user(event.market, user)
    if existing is not None:
        item.status, item.reason, item.friend = "ignored", "already_signed_up", existing
        return
    friend_id = derived_id("friend", event.market, user)
    friend: Row = {
        "id": friend_id,
        "member_id": facts.member_ids[(event.market, user)],
        "market": event.market,
        "user_hash": user,
        "device_hash": hashes.device[event.device_id.reveal()],
        "email_hash": hashes.email[event.email.reveal()],
        "ip_hash": _optional_hash(hashes.lookup, event.ip, "ip"),
        "user_agent_hash": _optional_hash(hashes.lookup, event.user_agent, "user_agent"),
        "typed_code": _parsed_code(event.code)[0],
        "signup_event_id": event.id,
        "signed_up_at": event.at,
        "new_customer": True,
        "seen_before": None,
        "install_id": None,
        "enrolment_id": None,
        "campaign_id": None,
        "attribution_reason": None,
        "status": "pending",
        "status_reason": None,
        "qualified_at": None,
        "not_credited_at": None,
        "disqualified_at": None,
        "disqualified_reason": None,
    }
    facts.add_friend(friend)
    for kind, value in (
        ("user", friend["user_hash"]),
        ("device", friend["device_hash"]),
        ("email", friend["email_hash"]),
    ):
        facts.add_sighting(
            {
                "id": new_id(),
                "market": event.market,
                "kind": kind,
                "value_hash": value,
                "seen_at": event.at,
                "source": f"friend:{friend_id}",
            }
        )
    # This signup may make later signups sharing a device, email or user id "not new".
    item.touched.extend(
        other for other in facts.friends_sharing(friend) if other["signed_up_at"] >= event.at
    )
    item.friend = friend


def _on_order(facts: Facts, item: _Work, hashes: _Hashes) -> None:
    event = item.event
    assert isinstance(event, OrderEvent)
    user = hashes.user[event.marketplace_user_id.reveal()]
    order = facts.order(event.market, event.order_id)
    if order is None:
        facts.add_order(
            {
                "id": new_id(),
                "market": event.market,
                "order_ref": event.order_id,
                "user_hash": user,
                "amount_minor": event.amount_minor,
                "currency": event.currency,
                "status": event.status,
                "ordered_at": event.at,
                "refunded_minor": 0,
                "fully_refunded": False,
                "refunded_at": None,
                "charged_back_at": None,
            }
        )
    elif order["user_hash"] not in (None, user):
        item.status, item.reason = "ignored", "order_of_another_user"
        return
    else:
        if order["user_hash"] is None:
            facts.set_order_user(order, user)
        order["amount_minor"], order["currency"], order["status"] = (
            event.amount_minor,
            event.currency,
            event.status,
        )
        previous = order["ordered_at"]
        order["ordered_at"] = event.at if previous is None else min(previous, event.at)
        facts.changed_order(order)
    friend = facts.friend_of_user(event.market, user)
    if friend is None:
        item.reason = "buyer_not_signed_up_yet"  # kept: a later signup will find it
        return
    item.friend = friend
    item.touched.append(friend)


def _order_for_refund(facts: Facts, item: _Work, market: str, order_ref: str) -> Row:
    order = facts.order(market, order_ref)
    if order is None:
        item.reason = "order_not_seen_yet"  # kept: the order fills it in when it comes
        order = {
            "id": new_id(),
            "market": market,
            "order_ref": order_ref,
            "user_hash": None,
            "amount_minor": 0,
            "currency": None,
            "status": "unknown",
            "ordered_at": None,
            "refunded_minor": 0,
            "fully_refunded": False,
            "refunded_at": None,
            "charged_back_at": None,
        }
        facts.add_order(order)
    return order


def _buyer(facts: Facts, item: _Work, order: Row) -> None:
    if order["user_hash"] is None:
        return
    friend = facts.friend_of_user(order["market"], order["user_hash"])
    if friend is not None:
        item.friend = friend
        item.touched.append(friend)


def _on_refund(facts: Facts, item: _Work, hashes: _Hashes) -> None:
    event = item.event
    assert isinstance(event, RefundEvent)
    order = _order_for_refund(facts, item, event.market, event.order_id)
    buyer = (
        facts.friend_of_user(order["market"], order["user_hash"]) if order["user_hash"] else None
    )
    if buyer is not None and buyer["enrolment_id"] is not None:
        released = facts.posted_release_of(buyer["enrolment_id"])
        if released is not None and event.at >= released:
            # The prize this friend counted in was posted: the refund comes too late to count.
            item.status, item.reason, item.friend = "ignored", "after_holding_period", buyer
            return
    if event.amount_minor is None:
        order["fully_refunded"] = True
    else:
        order["refunded_minor"] += event.amount_minor
    order["refunded_at"] = event.at
    facts.changed_order(order)
    _buyer(facts, item, order)


def _on_chargeback(facts: Facts, item: _Work, hashes: _Hashes) -> None:
    event = item.event
    assert isinstance(event, ChargebackEvent)
    order = _order_for_refund(facts, item, event.market, event.order_id)
    previous = order["charged_back_at"]
    order["charged_back_at"] = event.at if previous is None else min(previous, event.at)
    facts.changed_order(order)
    _buyer(facts, item, order)


def _on_account_closed(facts: Facts, item: _Work, hashes: _Hashes) -> None:
    event = item.event
    assert isinstance(event, AccountClosedEvent)
    user = hashes.user[event.marketplace_user_id.reveal()]
    closure = facts.closure_of(event.market, user)
    if closure is None:
        facts.add_closure(
            {"id": new_id(), "market": event.market, "user_hash": user, "closed_at": event.at}
        )
    elif event.at < closure["closed_at"]:
        closure["closed_at"] = event.at
    friend = facts.friend_of_user(event.market, user)
    if friend is None:
        item.reason = "not_signed_up_yet"
        return
    item.friend = friend
    item.touched.append(friend)


def _prepare_evaluation(facts: Facts, friends: Any) -> None:
    """Load, in bulk, what evaluating these friends reads."""
    friends = list(friends)
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


_HANDLERS: dict[str, Any] = {
    "install": _on_install,
    "signup": _on_signup,
    "order": _on_order,
    "refund": _on_refund,
    "chargeback": _on_chargeback,
    "account_closed": _on_account_closed,
}
