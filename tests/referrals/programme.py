"""A driver for the Cash Rewards flow in tests: a campaign, members who enrol, friends who
click, install, sign up and order, and the holding job — each step one transaction through
``Database.run``, as the API and the worker run them.

Amounts are minor units; times come from the test's :class:`FrozenClock`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from pydantic import TypeAdapter
from sqlalchemy.orm import Session

from parrain.campaigns import service as campaigns
from parrain.campaigns.schemas import CampaignCreate, CampaignRead, FundingCreate
from parrain.consent import service as consent
from parrain.db.session import Database
from parrain.kit.clock import FrozenClock
from parrain.kit.crypto import development_keyring, development_lookup_key
from parrain.kit.ids import new_id
from parrain.ledger import service as ledger
from parrain.members.schemas import MemberCreate
from parrain.members.service import MemberKeys
from parrain.referrals import events, progress, service
from parrain.referrals.schemas import (
    ClickResult,
    EnrolmentCreate,
    EnrolmentRead,
    Event,
    EventOutcome,
    FunnelRead,
    ProgressRead,
)

KEYS = MemberKeys(keyring=development_keyring(), lookup=development_lookup_key())
ACTOR = "operator:test"
CONTROLLER = "Example Marketplace Ltd"
LINK_BASE = "https://parrain.example"
EVENT = TypeAdapter[Any](Event)

UK = {"market": "GB", "currency": "GBP", "language": "en"}
FR = {"market": "FR", "currency": "EUR", "language": "fr"}


def campaign_in(clock: FrozenClock, region: dict[str, str], **rules: Any) -> CampaignCreate:
    """The programme of DESIGN.md §1: five friends within 24 hours win 50 (20 cash + 30 in
    coupons), held 7 days."""
    fields: dict[str, Any] = {
        "name": f"Cash Rewards {region['market']} {new_id()}",
        "market": region["market"],
        "currency": region["currency"],
        "languages": [region["language"]],
        "starts_at": clock.now() - timedelta(hours=1),
        "ends_at": clock.now() + timedelta(days=60),
        "friends_needed": 5,
        "enrolment_window_hours": 24,
        "reward_cash_minor": 2000,
        "reward_coupon_minor": 3000,
        "holding_days": 7,
    }
    fields.update(rules)
    return CampaignCreate.model_validate(fields)


@dataclass
class Programme:
    database: Database
    clock: FrozenClock
    campaign: CampaignRead
    region: dict[str, str]
    _events: int = field(default=0)

    @classmethod
    def launch(
        cls,
        database: Database,
        clock: FrozenClock,
        *,
        region: dict[str, str] = UK,
        budget_minor: int = 1_000_000,
        **rules: Any,
    ) -> Programme:
        draft = campaign_in(clock, region, **rules)

        def work(session: Session) -> CampaignRead:
            created = campaigns.create(session=session, campaign_in=draft, actor=ACTOR, clock=clock)
            campaigns.fund(
                session=session,
                campaign_id=created.id,
                funding_in=FundingCreate(amount_minor=budget_minor, currency=draft.currency),
                actor=ACTOR,
                clock=clock,
            )
            consent.declare_programme_defaults(
                session=session,
                campaign_id=created.id,
                controller=CONTROLLER,
                actor=ACTOR,
                clock=clock,
            )
            return campaigns.launch(
                session=session, campaign_id=created.id, actor=ACTOR, clock=clock
            )

        return cls(database=database, clock=clock, campaign=database.run(work), region=region)

    # Operators

    def pause(self) -> None:
        self.database.run(
            lambda s: campaigns.pause(
                session=s, campaign_id=self.campaign.id, actor=ACTOR, clock=self.clock
            )
        )

    def resume(self) -> None:
        self.database.run(
            lambda s: campaigns.resume(
                session=s, campaign_id=self.campaign.id, actor=ACTOR, clock=self.clock
            )
        )

    def budget(self) -> dict[str, int]:
        read = self.database.read(lambda s: campaigns.get(session=s, campaign_id=self.campaign.id))
        return {
            "funded": read.budget.funded_minor,
            "held": read.budget.held_minor,
            "spent": read.budget.spent_minor,
            "available": read.budget.available_minor,
        }

    def balances(self) -> dict[str, tuple[int, int, int, int]]:
        """(debits_pending, debits_posted, credits_pending, credits_posted) per account."""
        accounts = self.campaign.accounts

        def work(session: Session) -> dict[str, tuple[int, int, int, int]]:
            out = {}
            for name, account_id in (
                ("budget", accounts.budget),
                ("cash", accounts.cash_payable),
                ("coupons", accounts.coupon_liability),
            ):
                a = ledger.get_account(session=session, account_id=account_id)
                out[name] = (a.debits_pending, a.debits_posted, a.credits_pending, a.credits_posted)
            return out

        return self.database.read(work)

    # Members

    def member(self, name: str, **changes: Any) -> MemberCreate:
        fields: dict[str, Any] = {
            "market": self.region["market"],
            "marketplace_user_id": f"user-{name}",
            "email": f"{name}@example.org",
            "username": name,
        }
        fields.update(changes)
        return MemberCreate.model_validate(fields)

    def enrol(self, name: str, **changes: Any) -> EnrolmentRead:
        enrolment_in = EnrolmentCreate(member=self.member(name, **changes))
        return self.database.run(
            lambda s: service.enrol(
                session=s,
                campaign_id=self.campaign.id,
                enrolment_in=enrolment_in,
                keys=KEYS,
                clock=self.clock,
                link_base_url=LINK_BASE,
            )
        )

    def click(
        self, code: str, device: str, user_agent: str = "Mozilla/5.0 (iPhone)"
    ) -> ClickResult:
        return self.database.run(
            lambda s: service.record_click(
                session=s,
                code_text=code,
                device=device,
                user_agent=user_agent,
                keys=KEYS,
                clock=self.clock,
            )
        )

    def progress(self, enrolment: EnrolmentRead) -> ProgressRead:
        return self.database.read(
            lambda s: service.progress(
                session=s, enrolment_id=enrolment.id, clock=self.clock, link_base_url=LINK_BASE
            )
        )

    def funnel(self) -> FunnelRead:
        return self.database.read(lambda s: service.funnel(session=s, campaign_id=self.campaign.id))

    # Events

    def event(self, body: dict[str, Any]) -> EventOutcome:
        parsed = EVENT.validate_python(body)
        return self.database.run(
            lambda s: events.ingest(session=s, event=parsed, keys=KEYS, clock=self.clock)
        )

    def _id(self, kind: str) -> str:
        self._events += 1
        # The id's random tail: its head is a timestamp, the same for drivers made together.
        return f"evt-{kind}-{self._events}-{new_id().hex[-12:]}"

    def install(
        self,
        device: str,
        *,
        token: str | None = None,
        code: str | None = None,
        at: datetime | None = None,
        event_id: str | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": event_id or self._id("install"),
            "type": "install",
            "at": (at or self.clock.now()).isoformat(),
            "market": self.region["market"],
            "device_id": device,
        }
        if token is not None:
            body["token"] = token
        if code is not None:
            body["code"] = code
        return body

    def signup(
        self,
        name: str,
        device: str,
        *,
        at: datetime | None = None,
        event_id: str | None = None,
        email: str | None = None,
        code: str | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": event_id or self._id("signup"),
            "type": "signup",
            "at": (at or self.clock.now()).isoformat(),
            "market": self.region["market"],
            "marketplace_user_id": f"user-{name}",
            "email": email or f"{name}@example.org",
            "username": name,
            "device_id": device,
            "ip": "203.0.113.7",
            "user_agent": "Mozilla/5.0 (iPhone)",
        }
        if code is not None:
            body["code"] = code
        return body

    def order(
        self,
        name: str,
        order_id: str,
        amount_minor: int,
        *,
        status: str = "completed",
        at: datetime | None = None,
    ) -> dict[str, Any]:
        return {
            "id": self._id("order"),
            "type": "order",
            "at": (at or self.clock.now()).isoformat(),
            "market": self.region["market"],
            "marketplace_user_id": f"user-{name}",
            "order_id": order_id,
            "amount_minor": amount_minor,
            "currency": self.region["currency"],
            "status": status,
        }

    def refund(self, order_id: str, amount_minor: int | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self._id("refund"),
            "type": "refund",
            "at": self.clock.now().isoformat(),
            "market": self.region["market"],
            "order_id": order_id,
        }
        if amount_minor is not None:
            body["amount_minor"] = amount_minor
        return body

    def chargeback(self, order_id: str) -> dict[str, Any]:
        return {
            "id": self._id("chargeback"),
            "type": "chargeback",
            "at": self.clock.now().isoformat(),
            "market": self.region["market"],
            "order_id": order_id,
        }

    def account_closed(self, name: str) -> dict[str, Any]:
        return {
            "id": self._id("closed"),
            "type": "account_closed",
            "at": self.clock.now().isoformat(),
            "market": self.region["market"],
            "marketplace_user_id": f"user-{name}",
        }

    def invite(self, enrolment: EnrolmentRead, friend: str) -> list[EventOutcome]:
        """One friend's whole path: click the link, install with its token, sign up."""
        device = f"device-{friend}"
        click = self.click(enrolment.code, device)
        assert click.token is not None
        return [
            self.event(self.install(device, token=click.token)),
            self.event(self.signup(friend, device)),
        ]

    def invite_many(self, enrolment: EnrolmentRead, friends: Sequence[str]) -> None:
        for friend in friends:
            self.invite(enrolment, friend)

    # The worker

    def release_due(self) -> int:
        return self.database.run(lambda s: progress.release_due_rewards(s, clock=self.clock))

    def discrepancies(self) -> list[str]:
        return self.database.read(lambda s: ledger.find_discrepancies(session=s))


def friend_names(prefix: str, count: int) -> list[str]:
    return [f"{prefix}{index}" for index in range(1, count + 1)]


def reward_id(progress_read: ProgressRead) -> UUID:
    assert progress_read.reward is not None
    return progress_read.reward.id
