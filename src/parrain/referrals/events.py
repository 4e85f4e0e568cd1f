"""The events the marketplace sends: install, signup, order, refund, chargeback,
account_closed. Nothing commits.

Each event is idempotent by its id. The event row is written first, so two deliveries of
one id race on its primary key: the loser's transaction fails and is retried by
``Database.run``, then finds the winner's row. The same id with the same body answers the
first outcome; with another body, :class:`EventIdReused` (HTTP 409). Bodies are compared by a
keyed hash of their canonical form (they hold personal data: a plain hash could be
reversed by guessing).

Events may arrive in any order: each stores its fact, then the friends the fact concerns
are re-evaluated from all the facts (:func:`parrain.referrals.progress.evaluate_friend`) and
their sponsors' prizes reconciled.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from pydantic import BaseModel
from sqlalchemy.orm import Session

from parrain.campaigns.models import Campaign
from parrain.kit.clock import Clock
from parrain.kit.crypto import lookup_hash
from parrain.kit.ids import derived_id, new_id
from parrain.kit.pii import Pii
from parrain.members import service as members
from parrain.members.schemas import MemberCreate
from parrain.members.service import MemberKeys
from parrain.referrals import progress, repository
from parrain.referrals.codes import parse_code
from parrain.referrals.errors import EventIdReused, InvalidCode
from parrain.referrals.models import Friend, Install, Order, ReferralEvent, Sighting
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
#: How far back a signup can make a later one "not new": the largest new_customer_days.
_LOOKAHEAD = timedelta(days=3650)


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
    digest = body_hash(event, keys)
    existing = repository.get_event(session, event.id)
    if existing is not None:
        if existing.body_hash != digest:
            raise EventIdReused(
                f"event {event.id!r} was already received with a different body",
                event_id=event.id,
            )
        return EventOutcome.model_validate(existing.outcome)
    row = ReferralEvent(
        id=event.id, type=event.type, body_hash=digest, received_at=clock.now(), outcome={}
    )
    repository.add(session, row)  # claims the id before any other write
    handler: Callable[..., EventOutcome] = _HANDLERS[event.type]
    outcome = handler(session, event, keys, clock)
    row.outcome = outcome.model_dump(mode="json")
    session.flush()
    return outcome


def _accepted(event: Event, **fields: Any) -> EventOutcome:
    return EventOutcome(event_id=event.id, type=event.type, status="accepted", **fields)


def _ignored(event: Event, reason: str, **fields: Any) -> EventOutcome:
    return EventOutcome(
        event_id=event.id, type=event.type, status="ignored", reason=reason, **fields
    )


def _settle(session: Session, friends: list[Friend], clock: Clock) -> None:
    """Re-evaluate ``friends`` and reconcile every enrolment whose count may have moved."""
    touched: set[UUID] = set()
    for friend in friends:
        touched |= progress.evaluate_friend(session, friend, clock=clock)
    for enrolment_id in sorted(touched):  # a fixed lock order across concurrent events
        progress.reconcile_enrolment(session, enrolment_id, clock=clock)


def _on_install(
    session: Session, event: InstallEvent, keys: MemberKeys, clock: Clock
) -> EventOutcome:
    device = device_hash(keys, event.device_id.reveal())
    click = repository.get_click_by_token(session, event.token) if event.token else None
    reason: str | None = None
    code: str | None = None
    campaign_id: UUID | None = None
    if event.token and click is None:
        reason = "unknown_token"
    if click is not None:
        enrolment = repository.get_enrolment(session, click.enrolment_id)
        code = enrolment.code if enrolment else None
        campaign_id = click.campaign_id
    elif event.code:
        try:
            typed = parse_code(event.code)
        except InvalidCode:
            reason = "invalid_code"
        else:
            enrolment = repository.get_enrolment_by_code(session, typed.canonical)
            if enrolment is None:
                reason = "unknown_code"
            else:
                code, campaign_id = enrolment.code, enrolment.campaign_id
    install = Install(
        id=derived_id("install", event.id),
        event_id=event.id,
        market=event.market,
        device_hash=device,
        click_id=click.id if click is not None else None,
        code=code,
        campaign_id=campaign_id,
        installed_at=event.at,
    )
    repository.add(session, install)
    friends = repository.friends_of_device(session, market=event.market, device_hash=device)
    _settle(session, friends, clock)
    first = friends[0] if friends else None
    return EventOutcome(
        event_id=event.id,
        type=event.type,
        status="accepted",
        reason=reason,
        friend_id=first.id if first else None,
        enrolment_id=first.enrolment_id if first else None,
    )


def _sightings(friend: Friend) -> list[Sighting]:
    source = f"friend:{friend.id}"
    return [
        Sighting(
            id=new_id(),
            market=friend.market,
            kind=kind,
            value_hash=value,
            seen_at=friend.signed_up_at,
            source=source,
        )
        for kind, value in (
            ("user", friend.user_hash),
            ("device", friend.device_hash),
            ("email", friend.email_hash),
        )
    ]


def _on_signup(
    session: Session, event: SignupEvent, keys: MemberKeys, clock: Clock
) -> EventOutcome:
    user_hash = members.marketplace_user_hash(keys, event.marketplace_user_id.reveal())
    existing = repository.get_friend_by_user(session, market=event.market, user_hash=user_hash)
    if existing is not None:
        return _ignored(
            event, "already_signed_up", friend_id=existing.id, enrolment_id=existing.enrolment_id
        )
    member = members.register_member(
        session=session,
        member_in=MemberCreate(
            market=event.market,
            marketplace_user_id=event.marketplace_user_id,
            email=event.email,
            username=event.username,
        ),
        keys=keys,
        clock=clock,
    )
    typed: str | None = None
    if event.code:
        try:
            typed = parse_code(event.code).canonical
        except InvalidCode:
            typed = None
    friend = Friend(
        id=derived_id("friend", event.market, user_hash),
        member_id=member.id,
        market=event.market,
        user_hash=user_hash,
        device_hash=device_hash(keys, event.device_id.reveal()),
        email_hash=members.email_hash(keys, event.email.reveal()),
        ip_hash=lookup_hash(keys.lookup, event.ip.reveal(), purpose="ip") if event.ip else None,
        user_agent_hash=lookup_hash(keys.lookup, event.user_agent.reveal(), purpose="user_agent")
        if event.user_agent
        else None,
        typed_code=typed,
        signup_event_id=event.id,
        signed_up_at=event.at,
        new_customer=True,
        status="pending",
    )
    repository.add(session, friend)
    repository.add(session, *_sightings(friend))
    # This signup may make later signups sharing a device, email or user id "not new".
    later = repository.friends_sharing(
        session, friend, after=friend.signed_up_at, until=friend.signed_up_at + _LOOKAHEAD
    )
    _settle(session, [friend, *later], clock)
    return _accepted(event, friend_id=friend.id, enrolment_id=friend.enrolment_id)


def _friend_of_user(session: Session, market: str, user_id: Pii, keys: MemberKeys) -> Friend | None:
    user_hash = members.marketplace_user_hash(keys, user_id.reveal())
    return repository.get_friend_by_user(session, market=market, user_hash=user_hash)


def _on_order(session: Session, event: OrderEvent, keys: MemberKeys, clock: Clock) -> EventOutcome:
    friend = _friend_of_user(session, event.market, event.marketplace_user_id, keys)
    if friend is None:
        return _ignored(event, "not_a_referred_friend")
    order = repository.get_order(session, market=event.market, order_ref=event.order_id)
    if order is None:
        order = Order(
            id=new_id(),
            market=event.market,
            order_ref=event.order_id,
            friend_id=friend.id,
            refunded_minor=0,
            amount_minor=event.amount_minor,
            currency=event.currency,
            status=event.status,
            ordered_at=event.at,
        )
        repository.add(session, order)
    elif order.friend_id != friend.id:
        return _ignored(event, "order_of_another_user")
    else:
        order.amount_minor, order.currency, order.status = (
            event.amount_minor,
            event.currency,
            event.status,
        )
        order.ordered_at = min(order.ordered_at, event.at)
    _settle(session, [friend], clock)
    return _accepted(event, friend_id=friend.id, enrolment_id=friend.enrolment_id)


def _disqualify(friend: Friend, reason: str, at: datetime) -> None:
    if friend.disqualified_at is None:
        friend.disqualified_at, friend.disqualified_reason = at, reason


def _on_refund(
    session: Session, event: RefundEvent, keys: MemberKeys, clock: Clock
) -> EventOutcome:
    order = repository.get_order(session, market=event.market, order_ref=event.order_id)
    if order is None:
        return _ignored(event, "unknown_order")
    friend = repository.get_friend(session, order.friend_id)
    if friend is None:  # a foreign key guarantees it
        return _ignored(event, "unknown_order")
    qualifying = repository.first_completed_order(session, friend.id)
    depends = (
        friend.campaign_id is not None
        and qualifying is not None
        and qualifying.id == order.id
        and _qualifies_by_order(session, friend)
    )
    if depends and _holding_over(session, friend, event.at):
        # Not recorded on the order: the first order's remaining amount decides whether the
        # friend qualifies, and the next re-evaluation would un-qualify them (and claw back
        # a posted prize) for a refund that comes too late to count.
        return _ignored(
            event, "after_holding_period", friend_id=friend.id, enrolment_id=friend.enrolment_id
        )
    refund = order.amount_minor - order.refunded_minor
    if event.amount_minor is not None:
        refund = min(refund, event.amount_minor)
    order.refunded_minor += refund
    order.refunded_at = event.at
    session.flush()
    if not depends:
        _settle(session, [friend], clock)
        return _ignored(
            event, "not_the_qualifying_order", friend_id=friend.id, enrolment_id=friend.enrolment_id
        )
    if order.amount_minor - order.refunded_minor < _minimum(session, friend):
        _disqualify(friend, "refund", event.at)
    _settle(session, [friend], clock)
    return _accepted(event, friend_id=friend.id, enrolment_id=friend.enrolment_id)


def _qualifies_by_order(session: Session, friend: Friend) -> bool:
    campaign = session.get(Campaign, friend.campaign_id)
    return campaign is not None and campaign.qualifying_action == "first_order"


def _minimum(session: Session, friend: Friend) -> int:
    campaign = session.get(Campaign, friend.campaign_id)
    return max(campaign.min_order_minor if campaign else 0, 1)


def _holding_over(session: Session, friend: Friend, at: datetime) -> bool:
    """Whether ``at`` is after the holding period of a posted prize ``friend`` counted in."""
    if friend.enrolment_id is None:
        return False
    reward = repository.current_reward(session, friend.enrolment_id)
    return (
        reward is not None
        and reward.status == "posted"
        and reward.release_at is not None
        and at >= reward.release_at
    )


def _on_chargeback(
    session: Session, event: ChargebackEvent, keys: MemberKeys, clock: Clock
) -> EventOutcome:
    order = repository.get_order(session, market=event.market, order_ref=event.order_id)
    if order is None:
        return _ignored(event, "unknown_order")
    friend = repository.get_friend(session, order.friend_id)
    if friend is None:
        return _ignored(event, "unknown_order")
    order.charged_back_at = event.at
    _disqualify(friend, "chargeback", event.at)
    _settle(session, [friend], clock)
    return _accepted(event, friend_id=friend.id, enrolment_id=friend.enrolment_id)


def _on_account_closed(
    session: Session, event: AccountClosedEvent, keys: MemberKeys, clock: Clock
) -> EventOutcome:
    friend = _friend_of_user(session, event.market, event.marketplace_user_id, keys)
    if friend is None:
        return _ignored(event, "not_a_referred_friend")
    _disqualify(friend, "account_closed", event.at)
    _settle(session, [friend], clock)
    return _accepted(event, friend_id=friend.id, enrolment_id=friend.enrolment_id)


_HANDLERS: dict[str, Callable[..., EventOutcome]] = {
    "install": _on_install,
    "signup": _on_signup,
    "order": _on_order,
    "refund": _on_refund,
    "chargeback": _on_chargeback,
    "account_closed": _on_account_closed,
}
