"""Every query of payouts. Nothing here commits."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlalchemy import exists, func, or_, select, update
from sqlalchemy.orm import Session

from parrain.campaigns.models import Campaign
from parrain.payouts.models import PayoutBatch, PayoutItem, PayoutItemPart
from parrain.referrals.models import Enrolment, Reward, RewardPart


@dataclass(frozen=True, slots=True)
class PayablePart:
    """A posted cash reward part no live payout item holds: cash owed to ``member_id``."""

    reward_part_id: UUID
    member_id: UUID
    campaign_id: UUID
    cash_payable_account_id: UUID
    currency: str
    amount_minor: int


def payable_parts(session: Session) -> list[PayablePart]:
    """Posted ``cash`` parts not in a pending or paid item, by member, currency and part."""
    in_live_item = exists().where(PayoutItemPart.open_part_id == RewardPart.id)
    statement = (
        select(
            RewardPart.id,
            Enrolment.member_id,
            Reward.campaign_id,
            Campaign.cash_payable_account_id,
            Reward.currency,
            RewardPart.amount_minor,
        )
        .join(Reward, Reward.id == RewardPart.reward_id)
        .join(Enrolment, Enrolment.id == Reward.enrolment_id)
        .join(Campaign, Campaign.id == Reward.campaign_id)
        .where(RewardPart.kind == "cash", RewardPart.status == "posted", ~in_live_item)
        .order_by(Enrolment.member_id, Reward.currency, RewardPart.id)
    )
    return [PayablePart(*row) for row in session.execute(statement)]


def add_all(session: Session, rows: Sequence[object]) -> None:
    session.add_all(rows)
    session.flush()


def claim_batch(
    session: Session,
    *,
    status: str,
    now: datetime,
    lease_until: datetime,
    owner: str,
    exclude: Collection[UUID],
) -> PayoutBatch | None:
    """Lease the oldest batch in ``status`` that nobody holds (no lease, or an expired one).

    On PostgreSQL a row another worker is claiming is skipped (``SKIP LOCKED``); on SQLite
    the write transaction is alone (``BEGIN IMMEDIATE``), so the lease is the only writer's.
    """
    statement = (
        select(PayoutBatch)
        .where(
            PayoutBatch.status == status,
            or_(PayoutBatch.lease_until.is_(None), PayoutBatch.lease_until <= now),
        )
        .order_by(PayoutBatch.created_at, PayoutBatch.id)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    if exclude:
        statement = statement.where(PayoutBatch.id.not_in(list(exclude)))
    batch = session.scalars(statement).first()
    if batch is None:
        return None
    batch.lease_owner, batch.lease_until = owner, lease_until
    session.flush()
    return batch


def get_batch(session: Session, batch_id: UUID, *, for_update: bool = False) -> PayoutBatch | None:
    statement = select(PayoutBatch).where(PayoutBatch.id == batch_id)
    if for_update:
        statement = statement.with_for_update()
    return session.scalars(statement).first()


def list_batches(session: Session, *, statuses: Collection[str] | None = None) -> list[PayoutBatch]:
    statement = select(PayoutBatch).order_by(PayoutBatch.created_at, PayoutBatch.id)
    if statuses is not None:
        statement = statement.where(PayoutBatch.status.in_(list(statuses)))
    return list(session.scalars(statement))


def get_batch_by_payout_batch_id(session: Session, payout_batch_id: str) -> PayoutBatch | None:
    return session.scalars(
        select(PayoutBatch).where(PayoutBatch.payout_batch_id == payout_batch_id)
    ).first()


def get_batch_by_sender_batch_id(session: Session, sender_batch_id: str) -> PayoutBatch | None:
    return session.scalars(
        select(PayoutBatch).where(PayoutBatch.sender_batch_id == sender_batch_id)
    ).first()


def get_item_by_sender_item_id(session: Session, sender_item_id: str) -> PayoutItem | None:
    return session.scalars(
        select(PayoutItem).where(PayoutItem.sender_item_id == sender_item_id)
    ).first()


def items_of(session: Session, batch_id: UUID) -> list[PayoutItem]:
    return list(
        session.scalars(
            select(PayoutItem).where(PayoutItem.batch_id == batch_id).order_by(PayoutItem.id)
        )
    )


def items_page(session: Session, batch_id: UUID, *, offset: int, limit: int) -> list[PayoutItem]:
    """``limit`` items of a batch from ``offset``, in the order of :func:`items_of`."""
    statement = (
        select(PayoutItem)
        .where(PayoutItem.batch_id == batch_id)
        .order_by(PayoutItem.id)
        .offset(offset)
        .limit(limit)
    )
    return list(session.scalars(statement))


def count_items(session: Session, batch_id: UUID) -> int:
    statement = select(func.count()).select_from(PayoutItem).where(PayoutItem.batch_id == batch_id)
    return int(session.scalar(statement) or 0)


def parts_of(session: Session, item_ids: Collection[UUID]) -> dict[UUID, list[PayoutItemPart]]:
    out: dict[UUID, list[PayoutItemPart]] = {item_id: [] for item_id in item_ids}
    if not item_ids:
        return out
    for part in session.scalars(
        select(PayoutItemPart)
        .where(PayoutItemPart.item_id.in_(list(item_ids)))
        .order_by(PayoutItemPart.transfer_id)
    ):
        out[part.item_id].append(part)
    return out


def close_parts(session: Session, item_id: UUID) -> None:
    """The item was voided: its parts may be paid by another item. The parts already loaded
    are updated from the rows the statement matched ("fetch"), not by evaluating its
    criteria against every part in the session, which grew with the batch's size."""
    session.execute(
        update(PayoutItemPart)
        .where(PayoutItemPart.item_id == item_id)
        .values(open_part_id=None)
        .execution_options(synchronize_session="fetch")
    )


def release_lease(session: Session, batch: PayoutBatch, owner: str) -> None:
    if batch.lease_owner == owner:
        batch.lease_owner, batch.lease_until = None, None


def pending_items_count(session: Session, batch_id: UUID) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(PayoutItem)
            .where(PayoutItem.batch_id == batch_id, PayoutItem.status == "pending")
        )
        or 0
    )


def items_of_member(session: Session, member_id: UUID) -> list[PayoutItem]:
    return list(
        session.scalars(
            select(PayoutItem)
            .where(PayoutItem.member_id == member_id)
            .order_by(PayoutItem.created_at, PayoutItem.id)
        )
    )


def latest_item_of(session: Session, member_id: UUID, currency: str) -> PayoutItem | None:
    return session.scalars(
        select(PayoutItem)
        .where(PayoutItem.member_id == member_id, PayoutItem.currency == currency)
        .order_by(PayoutItem.created_at.desc(), PayoutItem.id.desc())
        .limit(1)
    ).first()


def batches_newest_first(session: Session, *, offset: int, limit: int) -> list[PayoutBatch]:
    statement = (
        select(PayoutBatch)
        .order_by(PayoutBatch.created_at.desc(), PayoutBatch.id.desc())
        .offset(offset)
        .limit(limit)
    )
    return list(session.scalars(statement))


def count_all_batches(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(PayoutBatch)) or 0)


def item_totals(
    session: Session, batch_ids: Collection[UUID]
) -> list[tuple[UUID, str, str | None, int, int]]:
    """Per batch of ``batch_ids``, status and void reason: how many items and their amount
    (minor units)."""
    if not batch_ids:
        return []
    rows = session.execute(
        select(
            PayoutItem.batch_id,
            PayoutItem.status,
            PayoutItem.void_reason,
            func.count(),
            func.coalesce(func.sum(PayoutItem.amount_minor), 0),
        )
        .where(PayoutItem.batch_id.in_(list(batch_ids)))
        .group_by(PayoutItem.batch_id, PayoutItem.status, PayoutItem.void_reason)
    )
    return [(row[0], row[1], row[2], int(row[3]), int(row[4])) for row in rows]
