"""Funding: money moves from the operator's funding account of the currency into a
campaign's prize budget, through the ledger, audited."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy.orm import Session

from parrain.audit import service as audit
from parrain.campaigns.errors import (
    CampaignEnded,
    InvalidCampaign,
)
from parrain.campaigns.schemas import (
    CampaignRead,
    CampaignStatus,
    FundingCreate,
)
from parrain.campaigns.service.common import (
    funding_account_reference,
    load,
    subject,
    to_read,
)
from parrain.kit.clock import Clock
from parrain.kit.ids import new_id
from parrain.kit.money import Money
from parrain.ledger import service as ledger
from parrain.ledger.postings import Account, Created, TransferRequest
from parrain.ledger.schemas import AccountCreate


def _funding_account(*, session: Session, currency: str, actor: str, clock: Clock) -> Account:
    reference = funding_account_reference(currency)
    account = ledger.find_account(session=session, reference=reference)
    if account is None:
        account = ledger.create_account(
            session=session,
            account_in=AccountCreate(
                currency=currency, kind="operator_funding", reference=reference
            ),
            clock=clock,
        )
        audit.record(
            session=session,
            actor=actor,
            action="ledger.account_opened",
            subject=f"ledger_account:{account.id}",
            details={"kind": "operator_funding", "currency": currency, "reference": reference},
            clock=clock,
        )
    return account


def fund(
    *,
    session: Session,
    campaign_id: UUID,
    funding_in: FundingCreate,
    actor: str,
    clock: Clock,
) -> CampaignRead:
    """Move money from the operator's funding account into the campaign's prize budget.

    With a ``funding_id`` the call is idempotent: sending it again funds nothing more.
    """
    campaign = load(session, campaign_id)
    if campaign.status == CampaignStatus.ENDED:
        raise CampaignEnded("an ended campaign cannot be funded", campaign_id=str(campaign_id))
    amount = Money(funding_in.amount_minor, funding_in.currency)
    if amount.currency != campaign.currency:
        raise InvalidCampaign(
            f"this campaign is funded in {campaign.currency}, not {amount.currency}",
            field="currency",
            campaign_currency=campaign.currency,
        )
    source = _funding_account(session=session, currency=campaign.currency, actor=actor, clock=clock)
    funding_id = funding_in.funding_id or new_id()
    [outcome] = ledger.create_transfers(
        session=session,
        transfers=[
            TransferRequest(
                id=funding_id,
                kind="campaign_funding",
                debit_account_id=source.id,
                credit_account_id=campaign.budget_account_id,
                amount=amount.minor,
                currency=amount.currency,
            )
        ],
        clock=clock,
    )
    transfer = ledger.unwrap(outcome)
    if isinstance(outcome, Created):
        audit.record(
            session=session,
            actor=actor,
            action="campaign.funded",
            subject=subject(campaign_id),
            details={
                "amount_minor": amount.minor,
                "currency": amount.currency,
                "transfer_id": str(transfer.id),
            },
            clock=clock,
        )
    return to_read(session=session, campaign=campaign)
