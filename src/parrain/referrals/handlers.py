"""What each type of marketplace event stores: the fact, and the friends it concerns.

:mod:`parrain.referrals.events` loads what a batch needs and calls :func:`apply_fact` for
each new event in order; the friends each one touches are then evaluated once for the
whole batch. Handlers only read :class:`~parrain.referrals.facts.Facts` (already loaded)
and add or change rows in it; nothing is written before ``Facts.write``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from uuid import UUID

from parrain.kit.crypto import LookupKey, lookup_hash
from parrain.kit.ids import derived_id, new_id
from parrain.kit.pii import Pii
from parrain.referrals.codes import parse_code
from parrain.referrals.errors import InvalidCode
from parrain.referrals.facts import Facts, Row
from parrain.referrals.schemas import (
    AccountClosedEvent,
    ChargebackEvent,
    Event,
    InstallEvent,
    OrderEvent,
    RefundEvent,
    SignupEvent,
)

#: Lookup-hash purposes of a signup's ip address and user agent.
IP_PURPOSE = "ip"
USER_AGENT_PURPOSE = "user_agent"


@dataclass
class Work:
    """One new event of a batch: its hashes, and the outcome being built."""

    event: Event
    digest: str
    status: str = "accepted"
    reason: str | None = None
    friend: Row | None = None
    touched: list[Row] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Hashes:
    """The lookup hashes of a batch's personal values, made before its transaction."""

    lookup: LookupKey
    device: dict[str, str]
    user: dict[str, str]
    email: dict[str, str]
    #: Hashes of the other values (a signup's ip and user agent), by (purpose, value).
    other: dict[tuple[str, str], str] = field(default_factory=dict)


@functools.lru_cache(maxsize=4096)
def parsed_code(text: str | None) -> tuple[str | None, bool]:
    """The canonical code of what was typed, and whether something unreadable was typed."""
    if not text:
        return None, False
    try:
        return parse_code(text).canonical, False
    except InvalidCode:
        return None, True


def _on_install(facts: Facts, item: Work, hashes: Hashes) -> None:
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
        typed, unreadable = parsed_code(event.code)
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


def optional_hash(hashes: Hashes, value: Pii | None, purpose: str) -> str | None:
    """The lookup hash of ``value`` for ``purpose`` (made beforehand if it is in ``hashes``)."""
    if value is None:
        return None
    raw = value.reveal()
    found = hashes.other.get((purpose, raw))
    return lookup_hash(hashes.lookup, raw, purpose=purpose) if found is None else found


def _on_signup(facts: Facts, item: Work, hashes: Hashes) -> None:
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
        "ip_hash": optional_hash(hashes, event.ip, IP_PURPOSE),
        "user_agent_hash": optional_hash(hashes, event.user_agent, USER_AGENT_PURPOSE),
        "typed_code": parsed_code(event.code)[0],
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


def _on_order(facts: Facts, item: Work, hashes: Hashes) -> None:
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


def _order_for_refund(facts: Facts, item: Work, market: str, order_ref: str) -> Row:
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


def _buyer(facts: Facts, item: Work, order: Row) -> None:
    if order["user_hash"] is None:
        return
    friend = facts.friend_of_user(order["market"], order["user_hash"])
    if friend is not None:
        item.friend = friend
        item.touched.append(friend)


def _on_refund(facts: Facts, item: Work, hashes: Hashes) -> None:
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


def _on_chargeback(facts: Facts, item: Work, hashes: Hashes) -> None:
    event = item.event
    assert isinstance(event, ChargebackEvent)
    order = _order_for_refund(facts, item, event.market, event.order_id)
    previous = order["charged_back_at"]
    order["charged_back_at"] = event.at if previous is None else min(previous, event.at)
    facts.changed_order(order)
    _buyer(facts, item, order)


def _on_account_closed(facts: Facts, item: Work, hashes: Hashes) -> None:
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


_HANDLERS: dict[str, Callable[[Facts, Work, Hashes], None]] = {
    "install": _on_install,
    "signup": _on_signup,
    "order": _on_order,
    "refund": _on_refund,
    "chargeback": _on_chargeback,
    "account_closed": _on_account_closed,
}


def apply_fact(facts: Facts, item: Work, hashes: Hashes) -> None:
    """Store ``item``'s fact in ``facts`` and note the friends it concerns."""
    _HANDLERS[item.event.type](facts, item, hashes)
