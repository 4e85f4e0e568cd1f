"""Pydantic shapes of referrals: enrolments, the events the marketplace sends, progress and
the funnel. Personal fields of events are :class:`~parrain.kit.pii.Pii`: masked when printed,
logged or serialised, and kept out of validation error messages."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from parrain.kit.money import MAX_MINOR_UNITS
from parrain.kit.pii import Pii
from parrain.kit.regions import Currency, Market
from parrain.members.schemas import Email, MarketplaceUserId, MemberCreate, Username, pii_text

#: The most events one request may carry.
MAX_EVENTS_PER_BATCH = 1000

EventId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=100,
        pattern=r"^[A-Za-z0-9._:@-]+$",
        description="The sender's id of this event: the idempotency key.",
    ),
]
DeviceId = Annotated[
    Pii,
    pii_text(200),
    Field(description="The app's device identifier (stored only as a keyed hash)."),
]
ShortPii = Annotated[Pii, pii_text(512), Field(description="Stored only as a keyed hash.")]
CodeText = Annotated[
    str, Field(min_length=1, max_length=64, description="A sponsorship code as typed.")
]
OrderRef = Annotated[
    str,
    Field(
        min_length=1,
        max_length=100,
        pattern=r"^[A-Za-z0-9._:@/-]+$",
        description="The marketplace's order id.",
    ),
]
MinorUnits = Annotated[int, Field(strict=True, ge=0, le=MAX_MINOR_UNITS)]


class EnrolmentCreate(BaseModel):
    """A member joining a campaign, described as the marketplace knows them."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    member: MemberCreate


class EnrolmentRead(BaseModel):
    id: UUID
    campaign_id: UUID
    member_id: UUID
    code: str = Field(description="The sponsorship code, canonical form.")
    code_display: str = Field(description="The code in groups of four, for people.")
    link: str = Field(description="The sponsorship link to share.")
    enrolled_at: datetime
    deadline_at: datetime = Field(description="Friends must qualify by then to count.")


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    id: EventId
    at: AwareDatetime = Field(description="When it happened at the marketplace.")


class InstallEvent(_Event):
    """The app was installed; ``token`` (deferred deep link) or ``code`` (typed) if any."""

    type: Literal["install"]
    market: Market
    device_id: DeviceId
    token: str | None = Field(default=None, min_length=1, max_length=64)
    code: CodeText | None = None


class SignupEvent(_Event):
    """A new marketplace account; ``code`` if the person typed one at signup."""

    type: Literal["signup"]
    market: Market
    marketplace_user_id: MarketplaceUserId
    email: Email
    username: Username
    device_id: DeviceId
    ip: ShortPii | None = None
    user_agent: ShortPii | None = None
    code: CodeText | None = None


class OrderEvent(_Event):
    """An order placed or completed (``status``), or cancelled."""

    type: Literal["order"]
    market: Market
    marketplace_user_id: MarketplaceUserId
    order_id: OrderRef
    amount_minor: MinorUnits
    currency: Currency
    status: Literal["placed", "completed", "cancelled"]


class RefundEvent(_Event):
    """Money given back on an order: all of it without ``amount_minor``."""

    type: Literal["refund"]
    market: Market
    order_id: OrderRef
    amount_minor: MinorUnits | None = None


class ChargebackEvent(_Event):
    type: Literal["chargeback"]
    market: Market
    order_id: OrderRef


class AccountClosedEvent(_Event):
    type: Literal["account_closed"]
    market: Market
    marketplace_user_id: MarketplaceUserId


Event = Annotated[
    InstallEvent | SignupEvent | OrderEvent | RefundEvent | ChargebackEvent | AccountClosedEvent,
    Field(discriminator="type"),
]


class EventBatch(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    events: list[Event] = Field(min_length=1, max_length=MAX_EVENTS_PER_BATCH)

    @model_validator(mode="after")
    def _distinct_ids(self) -> EventBatch:
        seen: set[str] = set()
        for event in self.events:
            if event.id in seen:
                raise ValueError(f"event id {event.id!r} appears twice in this batch")
            seen.add(event.id)
        return self


class EventOutcome(BaseModel):
    """What an event did. ``status`` is ``accepted`` (it changed or confirmed something),
    ``ignored`` (nothing to do, ``reason`` says why) or ``queued`` (received for later with
    ``Prefer: respond-async``, stored, not applied yet: ``GET /v1/events/{id}`` tells what
    it did once applied, ADR 28); a replay answers the outcome so far."""

    event_id: str
    type: str
    status: Literal["accepted", "ignored", "queued"]
    reason: str | None = None
    friend_id: UUID | None = None
    enrolment_id: UUID | None = None


class EventError(BaseModel):
    """A batch item that was refused (an id reused with another body)."""

    event_id: str
    code: str
    message: str


class BatchResult(BaseModel):
    results: list[EventOutcome | EventError]
    accepted: int
    ignored: int
    refused: int
    queued: int = 0


class RewardRead(BaseModel):
    id: UUID
    status: Literal["held", "posted", "voided", "refused", "clawed_back"]
    reason: str | None
    message: str = Field(description="The reward's state in a sentence for the member.")
    cash_minor: int
    coupon_minor: int
    currency: str
    earned_at: datetime
    release_at: datetime | None
    settled_at: datetime | None


class FriendRead(BaseModel):
    id: UUID
    status: str
    reason: str | None
    signed_up_at: datetime
    qualified_at: datetime | None
    counts: bool = Field(description="Whether this friend counts toward the goal.")


class ProgressRead(BaseModel):
    enrolment: EnrolmentRead
    campaign_status: str
    friends_needed: int
    friends_counted: int
    friends: list[FriendRead]
    deadline_passed: bool
    reward: RewardRead | None


class FunnelRead(BaseModel):
    campaign_id: UUID
    enrolments: int
    clicks: int
    installs: int
    signups: int
    qualified: int
    rewarded: int
    rewards_held: int
    rewards_posted: int
    rewards_refused: int


class ClickResult(BaseModel):
    """What a click on a link resolved to (``recorded`` is false for bots and repeats)."""

    enrolment_id: UUID
    campaign_id: UUID
    token: str | None = Field(description="The deferred deep-link token (none for bots).")
    recorded: bool
    redirect_to: str | None
