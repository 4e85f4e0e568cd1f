"""Referral routes: enrolment, a member's progress, the marketplace's events, the funnel.

Enrolment, progress and events are the marketplace backend's: they need an integration API
key with the ``events`` scope. The funnel is the operators' (with the campaign routes).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Coroutine, Sequence
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Body, Path, Request, Response
from fastapi.routing import APIRoute
from pydantic import Discriminator, Tag, TypeAdapter
from sqlalchemy.orm import Session

from parrain.access.schemas import ApiKeyScope
from parrain.db.group_commit import GroupCommit
from parrain.db.session import Database
from parrain.kit.clock import Clock
from parrain.members.service import MemberKeys
from parrain.referrals import events as referral_events
from parrain.referrals import queue as event_queue
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
    API_KEY_SECURITY,
    ClockDep,
    DatabaseDep,
    EventsKeyDep,
    MemberKeysDep,
    SettingsDep,
    api_key_of,
    operator,
    run_blocking,
)
from parrain.web.errors import error_responses
from parrain.web.queued_events import QueuedEvents

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


_EventsShape = Annotated[
    Annotated[EventBatch, Tag("batch")] | Annotated[Event, Tag("single")],
    Discriminator(_shape),
]
EventsBody = Annotated[
    _EventsShape,
    Body(
        description=(
            'One event, or `{"events": [...]}` with 1 to 1,000 of them. Every event has an '
            "`id` (the idempotency key), a `type` and the time `at` it happened."
        )
    ),
]


SingleEvents = GroupCommit[referral_events.PreparedBatch, EventOutcome | EventIdReused]
_single_events_lock = threading.Lock()


def single_events_of(state: Any) -> SingleEvents:
    """The app's group commit of single events: requests that each send one event, arriving
    together, are applied together, one transaction per group (:mod:`parrain.db.group_commit`)."""
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


def queued_events_of(state: Any) -> QueuedEvents:
    """The app's queue of single events received for later (:mod:`parrain.web.queued_events`);
    each group queued wakes the app's drainer, if it runs one. Called on the event loop (no
    other coroutine runs meanwhile)."""
    queued: QueuedEvents | None = getattr(state, "queued_events", None)
    if queued is None:
        queued = state.queued_events = QueuedEvents(
            state.database, state.clock, state.member_keys, on_queued=lambda: wake_drainer(state)
        )
    return queued


def wake_drainer(state: Any) -> None:
    drainer = getattr(state, "event_drainer", None)
    if drainer is not None:
        drainer.wake()


def _respond_async(prefer: str) -> bool:
    """Whether the ``Prefer`` header (RFC 7240) asks for ``respond-async``."""
    return any(
        part.split(";", 1)[0].split("=", 1)[0].strip().lower() == "respond-async"
        for part in prefer.split(",")
    )


_ASYNC_HEADERS = {"Preference-Applied": "respond-async"}


#: ``Prefer``, read by the events route itself (see :func:`post_events`), as documented.
_PREFER_PARAMETER = {
    "name": "Prefer",
    "in": "header",
    "required": False,
    "schema": {"type": "string"},
    "description": (
        "`respond-async` (RFC 7240): store the events and answer 202 at once, each new one "
        "`queued`; they are applied within moments, in the order received "
        "(`GET /v1/events/{id}` tells what one did). Without it, the events are applied "
        "before the answer (one still queued from an earlier delivery answers `queued`). "
        "The answer is 202 when an event it gives is still `queued`, else 200."
    ),
}


_EVENTS_BODY: TypeAdapter[EventBatch | Event] = TypeAdapter(_EventsShape)


async def receive_events(request: Request) -> Response | None:
    """``POST /v1/events`` with the least around it: the API key checked first, before the
    body is read (as a dependency would: a request without a key is a 401 whatever its
    body), then a JSON body that validates handed straight to :func:`post_events`, without
    FastAPI's dependency solving and body handling (on this route they cost as much as
    storing the event). ``None`` when the body is not JSON or not valid: FastAPI's own
    handler of the route then reads it again and says why, as for any route.

    Called by the app before its routing (ADR 29) and by the route itself
    (:class:`_EventsRoute`), for a request that reaches it."""
    await api_key_of(request, ApiKeyScope.EVENTS)
    media_type = request.headers.get("content-type", "").partition(";")[0].strip()
    if media_type.lower() != "application/json":
        return None
    try:
        body = _EVENTS_BODY.validate_json(await request.body())
    except ValueError:  # not JSON, or not valid
        return None
    return await post_events(body, request)


class _EventsRoute(APIRoute):
    """The events route: :func:`receive_events`, else FastAPI's own handler (which answers
    its usual errors). The OpenAPI description is FastAPI's, from the route's signature,
    with the key's security declared in ``openapi_extra``."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        fastapi_handler = super().get_route_handler()

        async def events(request: Request) -> Response:
            response = await receive_events(request)
            return response if response is not None else await fastapi_handler(request)

        return events


async def post_events(body: EventsBody, request: Request) -> Response:
    """Receive marketplace events: `install`, `signup`, `order`, `refund`, `chargeback`,
    `account_closed`.

    Each is idempotent by its `id`: sent again with the same body it answers its outcome so
    far; with another body, a single event answers 409 `event_id_reused` and a batch
    lists it as refused while the others are applied. A batch is applied in one
    transaction, as a whole: each kind of fact it needs is read with one query. Events may
    come in any order: a signup before its install is attributed once both are here; an
    order before its buyer's signup, or a refund before its order, is kept until then.

    With `Prefer: respond-async` the events are only stored (sealed: they hold personal
    data) and the answer is 202 with `Preference-Applied: respond-async`; a background
    drain applies them shortly after, exactly as if they had been sent without it (ADR 28).
    Any answer that gives an event still `queued` is a 202; one where every event is
    applied (or refused) is a 200.
    """
    # The busiest route: its API key is checked before the body is read (receive_events);
    # the Prefer header and the app's parts are read here rather than through dependencies
    # (FastAPI solves each on every request, and they would cost more than queuing an
    # event). Several Prefer fields are one list (RFC 7240).
    respond_async = _respond_async(", ".join(request.headers.getlist("prefer")))
    state = request.app.state
    database: Database = state.database
    clock: Clock = state.clock
    keys: MemberKeys = state.member_keys
    if respond_async:
        answer = await _queue(body, database=database, clock=clock, keys=keys, state=state)
    elif not isinstance(body, EventBatch):
        # Hashing and sealing the personal data need no database: done before the
        # transaction, they do not hold the write lock.
        single_events = single_events_of(state)
        answer = await run_blocking(
            lambda: single_events.submit(
                referral_events.prepare_batch(events=[body], keys=keys, clock=clock)
            )
        )
    else:
        batch = body

        def prepare_and_apply() -> BatchResult:
            prepared = referral_events.prepare_batch(events=batch.events, keys=keys, clock=clock)
            return _batch_result(
                batch.events,
                database.run(
                    lambda session: referral_events.apply_batch(
                        session=session, batch=prepared, clock=clock
                    )
                ),
            )

        answer = await run_blocking(prepare_and_apply)
    if isinstance(answer, EventIdReused):
        raise answer
    # 202 when something answered is still queued (received for later, now or by an
    # earlier delivery), 200 when everything is applied.
    pending = answer.queued if isinstance(answer, BatchResult) else answer.status == "queued"
    return Response(
        content=type(answer).__pydantic_serializer__.to_json(answer),
        status_code=202 if pending else 200,
        media_type="application/json",
        headers=_ASYNC_HEADERS if respond_async and pending else None,
    )


integration.add_api_route(
    "/events",
    post_events,
    methods=["POST"],
    route_class_override=_EventsRoute,
    response_model=EventOutcome | BatchResult,
    responses={
        **error_responses(409, 413),
        202: {
            "model": EventOutcome | BatchResult,
            "description": (
                "With `Prefer: respond-async`: the events are stored and will be applied "
                "shortly; new ones answer `queued`."
            ),
        },
    },
    openapi_extra={"security": API_KEY_SECURITY, "parameters": [_PREFER_PARAMETER]},
)


def _batch_result(
    events: Sequence[Event], results: Sequence[EventOutcome | EventIdReused]
) -> BatchResult:
    answers: list[EventOutcome | EventError] = [
        EventError(event_id=event.id, code=result.code, message=result.message)
        if isinstance(result, EventIdReused)
        else result
        for event, result in zip(events, results, strict=True)
    ]
    outcomes = [r for r in answers if isinstance(r, EventOutcome)]
    return BatchResult(
        results=answers,
        accepted=sum(r.status == "accepted" for r in outcomes),
        ignored=sum(r.status == "ignored" for r in outcomes),
        queued=sum(r.status == "queued" for r in outcomes),
        refused=len(answers) - len(outcomes),
    )


async def _queue(
    body: Event | EventBatch,
    *,
    database: Database,
    clock: Clock,
    keys: MemberKeys,
    state: Any,
) -> EventOutcome | EventIdReused | BatchResult:
    """Store the events for the drain (see :func:`post_events`)."""
    if not isinstance(body, EventBatch):
        # One event: sealed and queued with the others arriving now.
        return await queued_events_of(state).submit(body)
    events = body.events

    def seal_and_queue() -> BatchResult:
        sealed = event_queue.seal_events(events=events, keys=keys)
        return _batch_result(
            events,
            database.run(
                lambda session: event_queue.queue_events(
                    session=session, events=sealed, clock=clock
                )
            ),
        )

    result = await run_blocking(seal_and_queue)
    wake_drainer(state)
    return result


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
