"""Signing in to the console from a test, reading its forms, and campaigns to act on."""

from __future__ import annotations

import re
from datetime import timedelta

from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy.orm import Session

from parrain.campaigns import service as campaigns
from parrain.campaigns.schemas import CampaignCreate, CampaignRead, CampaignStatus, FundingCreate
from parrain.consent import service as consent
from parrain.db.session import Database
from parrain.kit.clock import FrozenClock
from parrain.kit.ids import new_id
from parrain.operators.roles import Role
from parrain.web.pages.console.session import SESSION_COOKIE
from tests.factories import CONTROLLER
from tests.operators.helpers import PASSWORD, create_operator, open_session

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(page: Response) -> str:
    """The CSRF token of the (first) form on ``page``."""
    found = _CSRF.search(page.text)
    assert found is not None, page.text
    return found.group(1)


def sign_in(client: TestClient, username: str, password: str = PASSWORD) -> Response:
    """Fill in and send the sign-in form, as a browser would."""
    form = client.get("/console/sign-in")
    assert form.status_code == 200, form.text
    return client.post(
        "/console/sign-in",
        data={"username": username, "password": password, "csrf_token": csrf_of(form)},
    )


def signed_in_as(
    client: TestClient, database: Database, clock: FrozenClock, role: Role | str
) -> str:
    """Give ``client`` the session cookie of a new operator of ``role``; their username."""
    username = f"{Role(role).value}-{new_id().hex[-6:]}"
    operator = create_operator(database, clock, username, role)
    started = open_session(database, clock, operator)
    client.cookies.set(SESSION_COOKIE, started.token)
    return username


def draft_campaign(
    database: Database,
    clock: FrozenClock,
    *,
    funded: bool = True,
    declared: bool = True,
    status: CampaignStatus = CampaignStatus.DRAFT,
) -> CampaignRead:
    """A UK campaign whose prize is 10.00 GBP; funded with 100.00 and given the programme's
    declaration unless told otherwise, and brought to ``status``."""
    campaign_in = CampaignCreate(
        name=f"Cash Rewards UK {new_id().hex[-6:]}",
        market="GB",
        currency="GBP",
        languages=["en"],
        starts_at=clock.now(),
        ends_at=clock.now() + timedelta(days=30),
        friends_needed=3,
        reward_cash_minor=500,
        reward_coupon_minor=500,
    )

    def work(session: Session) -> CampaignRead:
        created = campaigns.create(
            session=session, campaign_in=campaign_in, actor="operator:test", clock=clock
        )
        if funded:
            campaigns.fund(
                session=session,
                campaign_id=created.id,
                funding_in=FundingCreate(amount_minor=10_000, currency="GBP"),
                actor="operator:test",
                clock=clock,
            )
        if declared:
            consent.declare_programme_defaults(
                session=session,
                campaign_id=created.id,
                controller=CONTROLLER,
                actor="operator:test",
                clock=clock,
            )
        steps = {
            CampaignStatus.DRAFT: [],
            CampaignStatus.LIVE: [campaigns.launch],
            CampaignStatus.PAUSED: [campaigns.launch, campaigns.pause],
            CampaignStatus.ENDED: [campaigns.launch, campaigns.end],
        }[status]
        current = created
        for step in steps:
            current = step(
                session=session, campaign_id=created.id, actor="operator:test", clock=clock
            )
        return current

    return database.run(work)


def status_of(database: Database, campaign: CampaignRead) -> CampaignStatus:
    return database.read(lambda s: campaigns.get(session=s, campaign_id=campaign.id)).status
