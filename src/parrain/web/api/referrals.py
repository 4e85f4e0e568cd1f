"""Referral routes: enrolment, a member's progress, the marketplace's events, the funnel.

Enrolment, progress and events are the marketplace backend's: they need an integration API
key with the ``events`` scope. The funnel is the operators' (with the campaign routes).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Body, Depends, Path, Request
from pydantic import Discriminator, Tag
from sqlalchemy.orm import Session

from parrain.db.group_commit import GroupCommit
from parrain.referrals import events as referral_events
from parrain.referrals import service as referrals
from parrain.referrals.errors import EventIdReused
from parrain.referrals.schemas import (
    BatchResult,
    EnrolmentCreate,
    EnrolmentRead,
    Event,
    EventBatch,
    EventError,
    EventOutcome,
    FunnelRead,
    ProgressRead,
)
from parrain.web.deps import (
    ClockDep,
    DatabaseDep,
    EventsKeyDep,
    MemberKeysDep,
    SettingsDep,
    operator,
    run_blocking,
)
from parrain.web.errors import error_responses

router = APIRouter(tags=["referrals"], responses=error_responses(422, 500))
integration = APIRouter(tags=["referrals"], responses=error_responses(401, 403, 422, 500))


@integration.post(
    "/campaigns/{campaign_id}/enrolments", status_code=201, responses=error_responses(404, 409)
)
def enrol_member(
    campaign_id: UUID,
    enrolment_in: EnrolmentCreate,
    database: DatabaseDep,
    clock: ClockDep,
    settings: SettingsDep,
    keys: MemberKeysDep,
    _key: EventsKeyDep,
) -> EnrolmentRead:
    """Enrol a member (registered on the way) in a live campaign of their market and give
    them a sponsorship code and link. Refusals answer 409 with ``details.reason``:
    ``not_launched``, ``paused``, ``ended``, ``not_started``, ``other_market``,
    ``out_of_budget``; ``already_enrolled`` (code ``already_enrolled``)."""
    return database.run(
        lambda session: referrals.enrol(
            session=session,
            campaign_id=campaign_id,
            enrolment_in=enrolment_in,
            keys=keys,
            clock=clock,
            link_base_url=settings.referrals.link_base_url,
        )
    )


@integration.get("/enrolments/{enrolment_id}", responses=error_responses(404))
def get_enrolment(
    enrolment_id: UUID, database: DatabaseDep, settings: SettingsDep, _key: EventsKeyDep
) -> EnrolmentRead:
    return database.read(
        lambda session: referrals.get_enrolment(
            session=session,
            enrolment_id=enrolment_id,
            link_base_url=settings.referrals.link_base_url,
        )
    )


@integration.get("/enrolments/{enrolment_id}/progress", responses=error_responses(404))
def get_progress(
    enrolment_id: UUID,
    database: DatabaseDep,
    clock: ClockDep,
    settings: SettingsDep,
    _key: EventsKeyDep,
) -> ProgressRead:
    """Friends so far, the deadline, and the reward's state with a sentence for the member."""
    return database.read(
        lambda session: referrals.progress(
            session=session,
            enrolment_id=enrolment_id,
            clock=clock,
            link_base_url=settings.referrals.link_base_url,
        )
    )


def _shape(value: Any) -> str:
    return "batch" if isinstance(value, dict) and "events" in value else "single"


EventsBody = Annotated[
    Annotated[EventBatch, Tag("batch")] | Annotated[Event, Tag("single")],
    Discriminator(_shape),
    Body(
        description=(
            'One event, or `{"events": [...]}` with 1 to 1,000 of them. Every event has an '
            "`id` (the idempotency key), a `type` and the time `at` it happened."
        )
    ),
]


SingleEvents = GroupCommit[referral_events.PreparedBatch, EventOutcome | EventIdReused]
_single_events_lock = threading.Lock()


async def get_single_events(request: Request) -> SingleEvents:
    """The app's group commit of single events: requests that each send one event, arriving
    together, are applied together, one transaction per group (:mod:`parrain.db.group_commit`)."""
    state = request.app.state
    committer: SingleEvents | None = getattr(state, "single_events", None)
    if committer is None:
        with _single_events_lock:
            committer = getattr(state, "single_events", None)
            if committer is None:
                clock = state.clock

                def apply(
                    session: Session, items: Sequence[referral_events.PreparedBatch]
                ) -> list[EventOutcome | EventIdReused]:
                    return referral_events.apply_batch(
                        session=session, batch=referral_events.merged(items), clock=clock
                    )

                committer = GroupCommit(
                    state.database, apply, key=lambda prepared: prepared.events[0].id
                )
                state.single_events = committer
    return committer


@integration.post("/events", responses=error_responses(409, 413))
async def post_events(
    body: EventsBody,
    database: DatabaseDep,
    clock: ClockDep,
    keys: MemberKeysDep,
    single_events: Annotated[SingleEvents, Depends(get_single_events)],
    _key: EventsKeyDep,
) -> EventOutcome | BatchResult:
    """Receive marketplace events: `install`, `signup`, `order`, `refund`, `chargeback`,
    `account_closed`.

    Each is idempotent by its `id`: sent again with the same body it answers its first
    outcome; with another body, a single event answers 409 `event_id_reused` and a batch
    lists it as refused while the others are applied. A batch is applied in one
    transaction, as a whole: each kind of fact it needs is read with one query. Events may
    come in any order: a signup before its install is attributed once both are here; an
    order before its buyer's signup, or a refund before its order, is kept until then.
    """
    # Hashing and sealing the personal data need no database: done before the transaction,
    # they do not hold the write lock.
    if not isinstance(body, EventBatch):
        single = await run_blocking(
            lambda: single_events.submit(
                referral_events.prepare_batch(events=[body], keys=keys, clock=clock)
            )
        )
        if isinstance(single, EventIdReused):
            raise single
        return single
    batch = body

    def apply(session: Any, prepared: referral_events.PreparedBatch) -> BatchResult:
        applied = referral_events.apply_batch(session=session, batch=prepared, clock=clock)
        results: list[EventOutcome | EventError] = [
            EventError(event_id=event.id, code=result.code, message=result.message)
            if isinstance(result, EventIdReused)
            else result
            for event, result in zip(batch.events, applied, strict=True)
        ]
        outcomes = [r for r in results if isinstance(r, EventOutcome)]
        return BatchResult(
            results=results,
            accepted=sum(r.status == "accepted" for r in outcomes),
            ignored=sum(r.status == "ignored" for r in outcomes),
            refused=len(results) - len(outcomes),
        )

    def prepare_and_apply() -> BatchResult:
        prepared = referral_events.prepare_batch(events=batch.events, keys=keys, clock=clock)
        return database.run(lambda session: apply(session, prepared))

    return await run_blocking(prepare_and_apply)


@integration.get("/events/{event_id}", responses=error_responses(404))
def get_event(
    event_id: Annotated[str, Path(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._:@-]+$")],
    database: DatabaseDep,
    _key: EventsKeyDep,
) -> EventOutcome:
    """What an event did, as first answered: for a client whose request timed out, to learn
    whether the event was applied before sending it again (sending it again is safe too)."""
    return database.read(
        lambda session: referral_events.outcome_of(session=session, event_id=event_id)
    )


@router.get(
    "/campaigns/{campaign_id}/funnel",
    responses=error_responses(401, 403, 404),
    dependencies=[operator("campaigns.view")],
)
def get_funnel(campaign_id: UUID, database: DatabaseDep) -> FunnelRead:
    """Enrolments, clicks → installs → signups → qualified → rewarded, and the prizes by state."""
    return database.read(lambda session: referrals.funnel(session=session, campaign_id=campaign_id))
