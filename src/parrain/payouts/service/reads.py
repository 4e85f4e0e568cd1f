"""Reads of payouts for the pages and the worker's report."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from uuid import UUID

from sqlalchemy.orm import Session

from parrain.errors import NotFound
from parrain.payouts import repository
from parrain.payouts.models import PayoutBatch, PayoutItem
from parrain.payouts.schemas import BatchStatus
from parrain.payouts.schemas import ItemStatus as OurItemStatus
from parrain.payouts.service.common import TAKEN_BACK_REASONS


def items_of_member(*, session: Session, member_id: UUID) -> list[PayoutItem]:
    """Every payment of the member's cash to PayPal, oldest first (for their own pages)."""
    return repository.items_of_member(session, member_id)


def in_flight(*, session: Session) -> int:
    """Batches not settled yet (prepared or submitted)."""
    return len(
        repository.list_batches(
            session, statuses=[BatchStatus.PREPARED.value, BatchStatus.SUBMITTED.value]
        )
    )


def count_batches(*, session: Session, status: BatchStatus) -> int:
    return len(repository.list_batches(session, statuses=[status.value]))


@dataclass(frozen=True, slots=True)
class StateTotal:
    """How many items of a batch are in one state, and their amount (minor units)."""

    items: int = 0
    amount_minor: int = 0


@dataclass(frozen=True, slots=True)
class BatchSummary:
    """A batch as the console lists it: the batch and its items' totals per state
    (``pending``, ``paid``, ``voided``, ``taken_back``: paid, then brought back, ADR 19)."""

    batch: PayoutBatch
    states: Mapping[str, StateTotal]

    def total(self, state: str) -> StateTotal:
        return self.states.get(state, StateTotal())


#: Batches per page of the console's list.
BATCHES_PER_PAGE = 50


@dataclass(frozen=True, slots=True)
class BatchesPage:
    """A page of batches, newest first, each with its items' totals per state."""

    summaries: list[BatchSummary]
    page: int  # 1-based
    pages: int  # at least 1
    total: int  # batches in all


def batch_summaries(
    *, session: Session, page: int = 1, per_page: int = BATCHES_PER_PAGE
) -> BatchesPage:
    """Page ``page`` of the batches, newest first (a page past the end shows the last one),
    with their items' counts and amounts per state, summed for that page's batches only."""
    total = repository.count_all_batches(session)
    pages = max(1, -(-total // per_page))
    page = min(max(page, 1), pages)
    batches = repository.batches_newest_first(session, offset=(page - 1) * per_page, limit=per_page)
    found: dict[UUID, dict[str, StateTotal]] = defaultdict(dict)
    totals = repository.item_totals(session, [batch.id for batch in batches])
    for batch_id, status, void_reason, count, amount in totals:
        taken_back = status == OurItemStatus.PAID.value and void_reason in TAKEN_BACK_REASONS
        state = "taken_back" if taken_back else status
        known = found[batch_id].get(state, StateTotal())
        found[batch_id][state] = StateTotal(known.items + count, known.amount_minor + amount)
    summaries = [BatchSummary(batch=b, states=dict(found.get(b.id, {}))) for b in batches]
    return BatchesPage(summaries, page, pages, total)


#: Items of a batch per page of the console (a batch holds up to 15,000).
ITEMS_PER_PAGE = 100


@dataclass(frozen=True, slots=True)
class ItemsPage:
    """A batch and one page of its items, in a stable order (by item id)."""

    batch: PayoutBatch
    items: list[PayoutItem]
    page: int  # 1-based
    pages: int  # at least 1, even for a batch without items
    total: int  # items in the batch
    first: int  # 1-based position of the page's first item; 0 when the page is empty

    @property
    def last(self) -> int:
        return self.first + len(self.items) - 1 if self.items else 0


def batch_with_items(
    *, session: Session, batch_id: UUID, page: int = 1, per_page: int = ITEMS_PER_PAGE
) -> ItemsPage:
    """A batch and page ``page`` of its items (a page past the end shows the last one);
    :class:`~parrain.errors.NotFound` (404) when there is no such batch."""
    batch = repository.get_batch(session, batch_id)
    if batch is None:
        raise NotFound(f"no payout batch {batch_id}", batch_id=str(batch_id))
    total = repository.count_items(session, batch_id)
    pages = max(1, -(-total // per_page))
    page = min(max(page, 1), pages)
    offset = (page - 1) * per_page
    items = repository.items_page(session, batch_id, offset=offset, limit=per_page)
    return ItemsPage(batch, items, page, pages, total, offset + 1 if items else 0)
