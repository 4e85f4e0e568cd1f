"""Seeding the whole demo, each part one transaction, in the order of its history."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from parrain.campaigns import service as campaign_service
from parrain.campaigns.schemas import CampaignRead
from parrain.cli.commands.demo.campaigns import (
    DEMO_CAMPAIGNS,
    DEMO_HISTORY,
    SeededCampaign,
    seed_demo,
)
from parrain.cli.commands.demo.people import (
    DEMO_MEMBERS,
    DemoMember,
    SeededMember,
    SeededOperator,
    issue_admin_token,
    seed_api_key,
    seed_member,
    seed_operators,
)
from parrain.config import Settings
from parrain.consent import service as consent
from parrain.db.session import Database
from parrain.kit.clock import Clock, FrozenClock
from parrain.members.service import MemberKeys
from parrain.operators.roles import Role
from parrain.operators.schemas import SignInPolicy


@dataclass(frozen=True, slots=True)
class DemoSeed:
    """Everything seeded (or found) and the admin's API token issued by this run."""

    campaigns: list[SeededCampaign]
    operators: list[SeededOperator]
    api_key: str | None
    members: list[SeededMember]
    admin_token: str


def _uk(session: Session) -> CampaignRead:
    found = campaign_service.find_by_name(session=session, name=DEMO_CAMPAIGNS[0].name)
    if found is None:  # seed_demo made it
        raise RuntimeError("seed the demo campaigns first")
    return found


def seed_everything(
    *, database: Database, settings: Settings, clock: Clock, actor: str
) -> DemoSeed:
    """Seed the demo (each part one transaction, in the order of its history): the campaigns
    as of :data:`DEMO_HISTORY` ago, each member's story, then the operators and the events
    API key; then issue the admin's API token. A second run finds everything and adds
    nothing but a new token."""
    now = clock.now()
    keys = MemberKeys.from_settings(settings.crypto)
    link_base_url = settings.referrals.link_base_url
    issuer = consent.ReceiptIssuer(
        signing_key=settings.crypto.build_signing_key(), notice_base_url=link_base_url
    )
    seeded = database.run(
        lambda session: seed_demo(
            session=session, clock=FrozenClock(now - DEMO_HISTORY), actor=actor
        )
    )
    people: list[SeededMember] = []
    for spec in DEMO_MEMBERS:

        def story(session: Session, spec: DemoMember = spec) -> SeededMember:
            return seed_member(
                session=session,
                spec=spec,
                campaign=_uk(session),
                keys=keys,
                issuer=issuer,
                clock=clock,
                link_base_url=link_base_url,
            )

        people.append(database.run(story))
    operators = database.run(
        lambda session: seed_operators(session=session, clock=clock, actor=actor)
    )
    api_key = database.run(lambda session: seed_api_key(session=session, clock=clock, actor=actor))
    [admin] = [item.operator for item in operators if item.spec.role is Role.ADMIN]
    token = database.run(
        lambda session: issue_admin_token(
            session=session,
            admin=admin,
            policy=SignInPolicy.from_settings(settings.console),
            clock=clock,
        )
    )
    return DemoSeed(
        campaigns=seeded, operators=operators, api_key=api_key, members=people, admin_token=token
    )
