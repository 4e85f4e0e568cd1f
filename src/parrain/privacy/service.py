"""Export everything about a person; erase them by crypto-shredding. Nothing here commits.

Both are written to the audit chain: who asked, about which pseudonymous member, and when
(never what the export contained).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from uuid import UUID

from sqlalchemy.orm import Session

from parrain.audit import service as audit
from parrain.campaigns import service as campaigns
from parrain.campaigns.models import Campaign
from parrain.consent import service as consent
from parrain.coupons import service as coupons
from parrain.kit.clock import Clock
from parrain.ledger import service as ledger
from parrain.members import service as members
from parrain.members.service import MemberKeys
from parrain.payouts import repository as payouts
from parrain.privacy.schemas import (
    ConsentEventRecord,
    ConsentReceiptRecord,
    CouponRecord,
    EnrolmentRecord,
    ErasureRead,
    FriendRecord,
    InvitedFriend,
    LedgerEntry,
    MemberExport,
    PayoutRecord,
    PersonalData,
    Prize,
    PrizePart,
)
from parrain.referrals import repository as referrals
from parrain.referrals.models import Friend, Reward, RewardPart


def export_member(
    *, session: Session, member_id: UUID, keys: MemberKeys, actor: str, clock: Clock
) -> MemberExport:
    """Everything held about ``member_id``: their personal data (decrypted, unless they were
    erased), their enrolments with the friends they invited (pseudonymous) and their prizes
    down to each ledger transfer, and their own signup through someone's link."""
    member = members.get_row(session=session, member_id=member_id)
    personal = None
    if member.erased_at is None:
        read = members.to_read(member, keys)
        personal = PersonalData(
            marketplace_user_id=read.marketplace_user_id.reveal(),
            email=read.email.reveal(),
            username=read.username.reveal(),
            photo_ref=read.photo_ref.reveal() if read.photo_ref is not None else None,
            paypal_receiver=(
                read.paypal_receiver.reveal() if read.paypal_receiver is not None else None
            ),
        )
    enrolments = []
    for enrolment in referrals.enrolments_of_member(session, member_id):
        campaign = session.get(Campaign, enrolment.campaign_id)
        friends = referrals.friends_of_enrolment(session, enrolment.id)
        rewards = referrals.rewards_of_enrolment(session, enrolment.id)
        enrolments.append(
            EnrolmentRecord(
                id=enrolment.id,
                campaign_id=enrolment.campaign_id,
                campaign_name=campaign.name if campaign is not None else "",
                code=enrolment.code,
                enrolled_at=enrolment.enrolled_at,
                deadline_at=enrolment.deadline_at,
                clicks=referrals.click_count(session, enrolment.id),
                friends=[_invited(friend) for friend in friends],
                prizes=[_prize(session, reward) for reward in rewards],
            )
        )
    friend = referrals.friend_of_member(session, member_id)
    export = MemberExport(
        generated_at=clock.now(),
        member_id=member.id,
        market=member.market,
        created_at=member.created_at,
        erased=member.erased_at is not None,
        erased_at=member.erased_at,
        personal_data=personal,
        enrolments=enrolments,
        as_friend=_as_friend(session, friend) if friend is not None else None,
        **_consents(session, member_id),
        coupons=[
            CouponRecord(
                code=coupon.code,
                campaign_id=coupon.campaign_id,
                amount_minor=coupon.amount_minor,
                currency=coupon.currency,
                min_spend_minor=coupon.min_spend_minor,
                status=coupon.status,
                issued_at=coupon.issued_at,
                expires_at=coupon.expires_at,
                redeemed_order_id=coupon.redeemed_order_id,
                settled_at=coupon.settled_at,
            )
            for coupon in coupons.of_member(session=session, member_id=member_id)
        ],
        payouts=[
            PayoutRecord(
                payout_item_id=item.id,
                amount_minor=item.amount_minor,
                currency=item.currency,
                status=item.status,
                paypal_status=item.paypal_status,
                void_reason=item.void_reason,
                created_at=item.created_at,
                settled_at=item.settled_at,
            )
            for item in payouts.items_of_member(session, member_id)
        ],
    )
    audit.record(
        session=session,
        actor=actor,
        action="member.exported",
        subject=f"member:{member_id}",
        details={"format": export.format, "erased": export.erased},
        clock=clock,
    )
    return export


def erase_member(
    *,
    session: Session,
    member_id: UUID,
    actor: str,
    clock: Clock,
    reason: str = "request",
    details: Mapping[str, object] | None = None,
) -> ErasureRead:
    """Crypto-shred ``member_id`` (see :func:`parrain.members.service.erase`); erasing twice
    answers the first erasure's time. The ledger, prizes and audit keep their rows. The
    audit entry says why: ``request`` (the person asked) or ``retention`` (the sweep)."""
    erased_at, already = members.erase(session=session, member_id=member_id, clock=clock)
    if not already:
        audit.record(
            session=session,
            actor=actor,
            action="member.erased",
            subject=f"member:{member_id}",
            details={"method": "crypto_shredding", "reason": reason, **(details or {})},
            clock=clock,
        )
    return ErasureRead(member_id=member_id, erased_at=erased_at, already_erased=already)


def _invited(friend: Friend) -> InvitedFriend:
    return InvitedFriend(
        friend_id=friend.id,
        signed_up_at=friend.signed_up_at,
        status=friend.status,
        qualified_at=friend.qualified_at,
    )


def _prize(session: Session, reward: Reward) -> Prize:
    parts = referrals.parts_of(session, reward.id)
    return Prize(
        id=reward.id,
        campaign_id=reward.campaign_id,
        generation=reward.generation,
        status=reward.status,
        reason=reward.reason,
        earned_at=reward.earned_at,
        release_at=reward.release_at,
        settled_at=reward.settled_at,
        parts=_parts(session, parts, reward.currency),
    )


def _parts(session: Session, parts: Sequence[RewardPart], currency: str) -> list[PrizePart]:
    ids = {part.id: campaigns.prize_part_transfer_ids(part.id) for part in parts}
    stored = ledger.get_transfers(
        session=session, transfer_ids=[i for each in ids.values() for i in each]
    )
    out = []
    for part in parts:
        entries = [
            LedgerEntry(
                transfer_id=transfer.id,
                kind=transfer.kind,
                phase=transfer.phase.value,
                amount_minor=transfer.amount,
                currency=transfer.currency,
                status=transfer.status.value if transfer.status is not None else None,
                created_at=transfer.created_at,
            )
            for transfer in (stored.get(i) for i in ids[part.id])
            if transfer is not None
        ]
        out.append(
            PrizePart(
                id=part.id,
                kind=part.kind,  # a CHECK constraint keeps it to three
                amount_minor=part.amount_minor,
                currency=currency,
                status=part.status,
                settled_at=part.settled_at,
                ledger=entries,
            )
        )
    return out


def _as_friend(session: Session, friend: Friend) -> FriendRecord:
    hashed = ["device id", "email"]
    if friend.ip_hash is not None:
        hashed.append("IP address")
    if friend.user_agent_hash is not None:
        hashed.append("user agent")
    welcome = referrals.welcome_parts_of_friend(session, friend.id)
    currency = ""
    if welcome:
        reward = session.get(Reward, welcome[0].reward_id)
        currency = reward.currency if reward is not None else ""
    return FriendRecord(
        friend_id=friend.id,
        market=friend.market,
        signed_up_at=friend.signed_up_at,
        status=friend.status,
        status_reason=friend.status_reason,
        qualified_at=friend.qualified_at,
        new_customer=friend.new_customer,
        enrolment_id=friend.enrolment_id,
        campaign_id=friend.campaign_id,
        typed_code=friend.typed_code,
        hashed_identifiers=hashed,
        welcome=_parts(session, welcome, currency),
    )


def _consents(
    session: Session, member_id: UUID
) -> dict[str, list[ConsentEventRecord] | list[ConsentReceiptRecord]]:
    """The person's consent history and the receipts of their grants and withdrawals."""
    history = consent.history(session=session, member_id=member_id)
    events = [
        ConsentEventRecord.model_validate(
            consent.event_read(event).model_dump(exclude={"member_id"})
        )
        for event in history
    ]
    receipts = []
    for event in history:
        signed = consent.receipt_file(event)
        if signed is not None:
            receipts.append(
                ConsentReceiptRecord.model_validate(
                    {"event_id": event.id, "action": event.action, **signed.model_dump()}
                )
            )
    return {"consents": events, "receipts": receipts}
