"""Small builders shared by the tests: ledger accounts, funded accounts, live campaigns.

Each helper runs one transaction through :meth:`Database.run` (as a web request or a job
would) and returns plain values, so a test reads as a list of facts: "a GBP account with a
budget limit holding 1,000", "a live campaign whose budget covers exactly 40 rewards".
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from parrain.campaigns import service as campaigns
from parrain.campaigns.schemas import CampaignCreate, CampaignRead, FundingCreate
from parrain.consent import service as consent
from parrain.db.session import Database
from parrain.kit.clock import Clock
from parrain.kit.ids import new_id
from parrain.ledger import service as ledger
from parrain.ledger.postings import Account, TransferRequest
from parrain.ledger.schemas import AccountCreate

ACTOR = "operator:test"
#: The company the programme declarations of the tests name as controller.
CONTROLLER = "Example Marketplace Ltd"


def open_account(
    database: Database,
    clock: Clock,
    *,
    currency: str = "GBP",
    kind: str = "test",
    debits_must_not_exceed_credits: bool = False,
    credits_must_not_exceed_debits: bool = False,
    reference: str | None = None,
) -> Account:
    """A new, empty ledger account."""
    account_in = AccountCreate(
        currency=currency,
        kind=kind,
        reference=reference,
        debits_must_not_exceed_credits=debits_must_not_exceed_credits,
        credits_must_not_exceed_debits=credits_must_not_exceed_debits,
    )
    return database.run(
        lambda s: ledger.create_account(session=s, account_in=account_in, clock=clock)
    )


def fund_account(database: Database, clock: Clock, account: Account, amount: int) -> Account:
    """Credit ``account`` with ``amount`` (posted) from an unlimited source account of its
    currency (reference ``test-source:<currency>``, opened on first use); return it after."""

    def work(session: Session) -> Account:
        reference = f"test-source:{account.currency}"
        source = ledger.find_account(session=session, reference=reference)
        if source is None:
            source = ledger.create_account(
                session=session,
                account_in=AccountCreate(
                    currency=account.currency, kind="test_source", reference=reference
                ),
                clock=clock,
            )
        ledger.create_transfer(
            session=session,
            transfer=TransferRequest(
                id=new_id(),
                kind="test_funding",
                debit_account_id=source.id,
                credit_account_id=account.id,
                amount=amount,
                currency=account.currency,
            ),
            clock=clock,
        )
        return ledger.get_account(session=session, account_id=account.id)

    return database.run(work)


def live_campaign(
    database: Database,
    clock: Clock,
    *,
    budget_minor: int,
    reward_cash_minor: int = 300,
    reward_coupon_minor: int = 200,
    currency: str = "GBP",
    market: str = "GB",
    language: str = "en",
    name: str | None = None,
) -> CampaignRead:
    """A campaign created, funded with ``budget_minor``, given the programme's data-use
    declaration and launched (no friend welcome, so one prize costs ``reward_cash_minor +
    reward_coupon_minor``)."""
    campaign_in = CampaignCreate(
        name=name or f"Test campaign {new_id()}",
        market=market,
        currency=currency,
        languages=[language],
        starts_at=clock.now(),
        ends_at=clock.now() + timedelta(days=30),
        friends_needed=3,
        reward_cash_minor=reward_cash_minor,
        reward_coupon_minor=reward_coupon_minor,
    )

    def work(session: Session) -> CampaignRead:
        created = campaigns.create(
            session=session, campaign_in=campaign_in, actor=ACTOR, clock=clock
        )
        campaigns.fund(
            session=session,
            campaign_id=created.id,
            funding_in=FundingCreate(amount_minor=budget_minor, currency=currency),
            actor=ACTOR,
            clock=clock,
        )
        consent.declare_programme_defaults(
            session=session, campaign_id=created.id, controller=CONTROLLER, actor=ACTOR, clock=clock
        )
        return campaigns.launch(session=session, campaign_id=created.id, actor=ACTOR, clock=clock)

    return database.run(work)
