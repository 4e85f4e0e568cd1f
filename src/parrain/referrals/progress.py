"""What the facts mean: is a friend new, whose are they, do they count; is the prize held,
posted, voided or clawed back. Nothing commits.

Two steps, run once per batch of events for everything the batch touched:

1. :func:`evaluate_friend` derives a friend's state from the facts alone (their signup, the
   installs and clicks of their device, the codes they carried or typed, the sightings of
   their user id, device and email, their orders, a closure of their account), so the same
   facts give the same state whatever order the events came in. One thing is sticky because
   it is about *when parrain learnt something*: a friend who qualified while the campaign
   was not live is ``not_credited`` for good (pausing stops new credit).
2. :func:`reconcile_enrolments` compares the friends who count with each member's prize and
   moves money to match, under locks on the enrolment rows (taken in id order): the goal
   reached → linked pending transfers out of the budget (cash, coupons, a welcome for each
   counted friend); a counted friend lost during the holding period → void what depended
   on them; after the holding period → claw back (ADR 0008).

:func:`release_due_rewards` posts held prizes whose holding period has passed.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import BindParameter, Table, bindparam, select
from sqlalchemy.orm import Session

from parrain.audit import service as audit
from parrain.campaigns import service as campaigns
from parrain.campaigns.errors import CampaignNotAcceptingCredit, InsufficientBudget
from parrain.campaigns.models import Campaign
from parrain.campaigns.schemas import CampaignStatus
from parrain.coupons import service as coupons
from parrain.db.rows import rows_of
from parrain.db.session import DriverCursor
from parrain.kit.clock import Clock
from parrain.kit.ids import derived_id
from parrain.referrals import repository
from parrain.referrals.attribution import (
    Attribution,
    AttributionRule,
    Conversion,
    Touch,
    attribute,
)
from parrain.referrals.facts import FRIEND_STATE, Facts, Row, chunks
from parrain.referrals.models import Enrolment, Friend, Reward, RewardPart

SYSTEM_ACTOR = "system:referrals"


@dataclass(frozen=True, slots=True)
class _Credit:
    enrolment: Row
    campaign: Campaign
    attribution: Attribution


def rule_of(campaign: Campaign) -> AttributionRule:
    return AttributionRule(
        model="first_click" if campaign.attribution_model == "first_click" else "last_click",
        window=timedelta(hours=campaign.attribution_window_hours),
    )


def _touch(click: Row, code: str) -> Touch:
    return Touch(
        at=click["clicked_at"],
        code=code,
        device_id=click["device_hash"],
        touch_id=str(click["id"]),
    )


def _install_before(facts: Facts, friend: Row) -> Row | None:
    installs = [
        row
        for row in facts.device_installs(friend["market"], friend["device_hash"])
        if row["installed_at"] <= friend["signed_up_at"]
    ]
    return max(installs, key=lambda row: (row["installed_at"], row["id"]), default=None)


def _attribute(facts: Facts, friend: Row, install: Row | None) -> _Credit | None:
    """Which enrolment, if any, this friend's signup credits (ADR 8).

    The campaign whose rule decides is the one the evidence names most directly: the
    token's click, else the code carried or typed, else the device's latest click. Only that
    campaign's clicks and code take part, and only campaigns of the friend's market.
    ``install`` is the device's last install before the signup, if any.
    """
    token_click = (
        facts.click(install["click_id"])
        if install is not None and install["click_id"] is not None
        else None
    )
    code = (install["code"] if install is not None else None) or friend["typed_code"]
    device_clicks = facts.device_clicks(friend["device_hash"])
    facts.ensure_enrolments(click["enrolment_id"] for click in device_clicks)
    facts.ensure_campaigns(click["campaign_id"] for click in device_clicks)
    code_enrolment = facts.enrolment_of_code(code) if code else None

    if token_click is not None:
        campaign_id = token_click["campaign_id"]
    elif code_enrolment is not None:
        campaign_id = code_enrolment["campaign_id"]
    else:
        in_market = [
            click
            for click in device_clicks
            if facts.campaign(click["campaign_id"]).market == friend["market"]
        ]
        if not in_market:
            return None
        campaign_id = max(in_market, key=lambda c: (c["clicked_at"], c["id"]))["campaign_id"]
    campaign = facts.campaign(campaign_id)
    if campaign.market != friend["market"]:
        return None

    clicks = [c for c in device_clicks if c["campaign_id"] == campaign_id]
    token_counts = token_click is not None and token_click["campaign_id"] == campaign_id
    if token_counts and token_click is not None and token_click not in clicks:
        clicks.append(token_click)
    touches = []
    for click in clicks:
        enrolment = facts.enrolment(click["enrolment_id"])
        if enrolment is not None:
            touches.append(_touch(click, enrolment["code"]))
    typed = (
        code_enrolment["code"]
        if code_enrolment is not None and code_enrolment["campaign_id"] == campaign_id
        else None
    )
    conversion = Conversion(
        at=install["installed_at"] if install is not None else friend["signed_up_at"],
        device_id=friend["device_hash"],
        code=typed,
        token_touch_id=str(token_click["id"]) if token_counts and token_click else None,
    )
    result = attribute(rule_of(campaign), touches=touches, conversion=conversion)
    if result is None:
        return None
    enrolment = facts.enrolment_of_code(result.code)
    if enrolment is None:
        return None
    return _Credit(enrolment=enrolment, campaign=campaign, attribution=result)


def _refunded(order: Row) -> int:
    amount: int = order["amount_minor"]
    return amount if order["fully_refunded"] else min(amount, order["refunded_minor"])


def _first_order(facts: Facts, friend: Row) -> Row | None:
    completed = [
        order
        for order in facts.orders_of(friend["market"], friend["user_hash"])
        if order["status"] == "completed" and order["ordered_at"] is not None
    ]
    return min(completed, key=lambda o: (o["ordered_at"], o["order_ref"]), default=None)


def _refund_counts(facts: Facts, order: Row, enrolment_id: UUID) -> bool:
    """A refund counts unless it came once the prize it would touch was posted (ADR 8)."""
    if order["refunded_at"] is None:
        return False
    released = facts.posted_release_of(enrolment_id)
    return released is None or order["refunded_at"] < released


def _disqualification(
    facts: Facts, friend: Row, campaign: Campaign, enrolment_id: UUID
) -> tuple[datetime, str] | None:
    closure = facts.closure_of(friend["market"], friend["user_hash"])
    if closure is not None:
        return closure["closed_at"], "account_closed"
    charged_back = [
        order["charged_back_at"]
        for order in facts.orders_of(friend["market"], friend["user_hash"])
        if order["charged_back_at"] is not None
    ]
    if charged_back:
        return min(charged_back), "chargeback"
    if campaign.qualifying_action == "first_order":
        first = _first_order(facts, friend)
        if (
            first is not None
            and _refund_counts(facts, first, enrolment_id)
            and first["amount_minor"] - _refunded(first) < max(campaign.min_order_minor, 1)
        ):
            return first["refunded_at"], "refund"
    return None


def _qualifying_time(
    facts: Facts, friend: Row, campaign: Campaign
) -> tuple[datetime | None, str | None]:
    """When the friend did the campaign's qualifying action, or why they have not."""
    if campaign.qualifying_action == "signup":
        return friend["signed_up_at"], None
    order = _first_order(facts, friend)
    if order is None:
        return None, "no_completed_order"
    if order["currency"] != campaign.currency:
        return None, "first_order_other_currency"
    if order["amount_minor"] < max(campaign.min_order_minor, 1):
        return None, "first_order_below_minimum"
    ordered_at: datetime = order["ordered_at"]
    return ordered_at, None


def _seen_before(facts: Facts, friend: Row, days: int) -> str | None:
    since = friend["signed_up_at"] - timedelta(days=days)
    own = f"friend:{friend['id']}"
    for kind, value in (
        ("user", friend["user_hash"]),
        ("device", friend["device_hash"]),
        ("email", friend["email_hash"]),
    ):
        for sighting in facts.seen(friend["market"], kind, value):
            if sighting["source"] != own and since <= sighting["seen_at"] < friend["signed_up_at"]:
                return kind
    return None


def evaluate_friend(facts: Facts, friend: Row, *, now: datetime) -> set[UUID]:
    """Derive ``friend``'s state from the facts; return the enrolments whose count may have
    changed (the one they were credited to before and the one they are credited to now)."""
    before = {friend["enrolment_id"]} if friend["enrolment_id"] is not None else set()
    old = {key: friend[key] for key in FRIEND_STATE}
    install = _install_before(facts, friend)
    credit = _attribute(facts, friend, install)
    if credit is not None and credit.enrolment["member_id"] == friend["member_id"]:
        credit = None  # a member cannot sponsor themselves
    state: dict[str, Any] = {
        "install_id": None,
        "qualified_at": None,
        "status_reason": None,
        "disqualified_at": None,
        "disqualified_reason": None,
        "not_credited_at": friend["not_credited_at"],
    }
    if credit is None:
        state |= {
            "enrolment_id": None,
            "campaign_id": None,
            "attribution_reason": None,
            "new_customer": True,
            "seen_before": None,
            "status": "pending",
            "status_reason": "no_sponsor",
            "install_id": install["id"] if install is not None else None,
        }
        friend.update(state)
        _mark(facts, friend, old)
        return before

    campaign = credit.campaign
    enrolment = credit.enrolment
    seen = _seen_before(facts, friend, campaign.new_customer_days)
    state |= {
        "enrolment_id": enrolment["id"],
        "campaign_id": campaign.id,
        "attribution_reason": credit.attribution.reason.value,
        "install_id": install["id"] if install is not None else None,
        "new_customer": seen is None,
        "seen_before": seen,
    }
    lost = _disqualification(facts, friend, campaign, enrolment["id"])
    was_qualified = friend["status"] == "qualified"
    if lost is not None:
        state |= {
            "status": "disqualified",
            "status_reason": lost[1],
            "disqualified_at": lost[0],
            "disqualified_reason": lost[1],
        }
    elif seen is not None:
        state |= {"status": "not_new", "status_reason": f"{seen}_seen_before"}
    else:
        qualified_at, why_not = _qualifying_time(facts, friend, campaign)
        if qualified_at is None:
            waiting = why_not == "no_completed_order"
            state |= {"status": "waiting" if waiting else "unqualified", "status_reason": why_not}
        elif qualified_at > enrolment["deadline_at"]:
            state |= {"status": "late", "status_reason": "after_deadline"}
            state["qualified_at"] = qualified_at
        elif friend["not_credited_at"] is not None:
            state |= {"status": "not_credited", "status_reason": "campaign_not_live"}
        elif not was_qualified and campaign.status != CampaignStatus.LIVE:
            state |= {
                "status": "not_credited",
                "status_reason": "campaign_not_live",
                "not_credited_at": now,
            }
        else:
            state |= {"status": "qualified", "qualified_at": qualified_at}
    friend.update(state)
    _mark(facts, friend, old)
    return before | {enrolment["id"]}


def _mark(facts: Facts, friend: Row, old: dict[str, Any]) -> None:
    if any(friend[key] != value for key, value in old.items()):
        facts.changed_friend(friend)


_KINDS: dict[str, campaigns.PrizePartKind] = {
    "cash": "cash",
    "coupon": "coupon",
    "welcome": "welcome",
}


def _part(part: RewardPart) -> campaigns.PrizePart:
    # The table's CHECK keeps ``kind`` to these three.
    return campaigns.PrizePart(
        transfer_id=part.id, kind=_KINDS[part.kind], amount=part.amount_minor
    )


def _entry(reward: Reward, action: str, **details: object) -> audit.NewEntry:
    return audit.NewEntry(
        actor=SYSTEM_ACTOR,
        action=f"reward.{action}",
        subject=f"reward:{reward.id}",
        details={"enrolment_id": str(reward.enrolment_id), **details},
    )


def _record(session: Session, reward: Reward, action: str, clock: Clock, **details: object) -> None:
    audit.record_all(session=session, entries=[_entry(reward, action, **details)], clock=clock)


def _counted(friends: Sequence[Row]) -> list[Row]:
    counted = [friend for friend in friends if friend["status"] == "qualified"]
    counted.sort(key=lambda f: (f["qualified_at"], f["signed_up_at"], f["id"]))
    return counted


# Built once: building a statement costs more than SQLite running it (ADR 7).
_IDS: BindParameter[list[UUID]] = bindparam("ids", expanding=True)
_ENROLMENT_TABLE: Table = Enrolment.__table__  # type: ignore[assignment]
_FRIEND_TABLE: Table = Friend.__table__  # type: ignore[assignment]
_REWARD_TABLE: Table = Reward.__table__  # type: ignore[assignment]
_PART_TABLE: Table = RewardPart.__table__  # type: ignore[assignment]
_PARTS_OF = select(RewardPart).where(RewardPart.reward_id.in_(_IDS))


def _lock_enrolments(cursor: DriverCursor, dialect: str, ids: Sequence[UUID]) -> dict[UUID, UUID]:
    """Lock the enrolments ``ids`` (in id order); the campaign of each one that exists.

    FOR NO KEY UPDATE: rows referencing the enrolment (friends, prizes) take KEY SHARE locks,
    which plain FOR UPDATE would conflict with (a deadlock between two events). SQLite
    serialises writers anyway."""
    rows = rows_of(_ENROLMENT_TABLE, dialect)
    mark = "?" if dialect == "sqlite" else "%s"
    lock = "" if dialect == "sqlite" else " FOR NO KEY UPDATE"
    sql = (
        f"SELECT id, campaign_id FROM {_ENROLMENT_TABLE.name} "  # noqa: S608
        f"WHERE id IN ({', '.join(mark for _ in ids)}) ORDER BY id{lock}"
    )
    found = cursor.query(sql, [rows.encode("id", enrolment_id) for enrolment_id in ids])
    decoded = (rows.decode_columns(("id", "campaign_id"), row) for row in found)
    return {row["id"]: row["campaign_id"] for row in decoded}


def _lost_parts(parts: Sequence[Row], counted_ids: set[UUID], enough: bool) -> bool:
    """Whether any part depends on a friend who no longer counts (see
    :func:`_settle_lost_friends`, which undoes them)."""
    return any(
        part["status"] in ("held", "posted")
        and (not enough or (part["friend_id"] is not None and part["friend_id"] not in counted_ids))
        for part in parts
    )


def reconcile_enrolments(
    session: Session, enrolment_ids: Collection[UUID], *, clock: Clock
) -> None:
    """Make each member's prize match the friends who count (see the module doc).

    Locks the enrolments (sorted ids), then reads their friends, prizes and prize parts in
    one query each: the friends' derived state must already be written. Rows are read on
    the driver's cursor; the prize rows that change are then loaded as ORM objects.
    """
    if not enrolment_ids:
        return
    ordered = sorted(enrolment_ids)
    dialect = session.get_bind().dialect.name
    enrolments: dict[UUID, UUID] = {}  # enrolment id -> campaign id
    friends: dict[UUID, list[Row]] = {enrolment_id: [] for enrolment_id in ordered}
    rewards: dict[UUID, Row] = {}
    with DriverCursor.of(session) as cursor:
        for part_ids in chunks(ordered):
            enrolments |= _lock_enrolments(cursor, dialect, part_ids)
            for row in rows_of(_FRIEND_TABLE, dialect).select(
                cursor, column="enrolment_id", values=part_ids
            ):
                friends[row["enrolment_id"]].append(row)
            for found in rows_of(_REWARD_TABLE, dialect).select(
                cursor, column="enrolment_id", values=part_ids
            ):
                latest = rewards.get(found["enrolment_id"])
                if latest is None or found["generation"] > latest["generation"]:
                    rewards[found["enrolment_id"]] = found
        live = [r["id"] for r in rewards.values() if r["status"] in ("held", "posted")]
        parts: dict[UUID, list[Row]] = {reward_id: [] for reward_id in live}
        for part_ids in chunks(live):
            for part in rows_of(_PART_TABLE, dialect).select(
                cursor, column="reward_id", values=part_ids
            ):
                parts[part["reward_id"]].append(part)
    placements: list[_Placement] = []
    for enrolment_id in ordered:
        campaign_id = enrolments.get(enrolment_id)
        if campaign_id is None:
            continue
        campaign = session.get(Campaign, campaign_id)
        if campaign is None:  # a foreign key guarantees it
            continue
        counted = _counted(friends[enrolment_id])
        current = rewards.get(enrolment_id)
        enough = len(counted) >= campaign.friends_needed
        if current is not None and current["status"] in ("held", "posted"):
            counted_ids = {friend["id"] for friend in counted}
            if _lost_parts(parts[current["id"]], counted_ids, enough):
                reward = session.get(Reward, current["id"])
                assert reward is not None  # read above, in this transaction
                reward_parts = list(session.scalars(_PARTS_OF, {"ids": [reward.id]}))
                _settle_lost_friends(
                    session, reward, reward_parts, campaign, counted_ids, enough, clock
                )
        elif (current is None or current["status"] != "clawed_back") and enough:
            previous = None
            if current is not None:
                previous = session.get(Reward, current["id"])
                assert previous is not None  # read above, in this transaction
            placements.append(_placement(enrolment_id, campaign, counted, previous, clock))
    _place(session, placements, clock)


def reconcile_enrolment(session: Session, enrolment_id: UUID, *, clock: Clock) -> None:
    reconcile_enrolments(session, [enrolment_id], clock=clock)


@dataclass(frozen=True, slots=True)
class _Placement:
    """A prize to hold: its reward row (new, or the one refused before) and its parts."""

    reward: Reward
    campaign: Campaign
    winners: Sequence[Row]
    earned_at: datetime
    parts: list[campaigns.PrizePart]
    #: Whether ``reward`` is a stored row (refused before), not a new one to insert.
    stored: bool


def _placement(
    enrolment_id: UUID,
    campaign: Campaign,
    counted: Sequence[Row],
    previous: Reward | None,
    clock: Clock,
) -> _Placement:
    winners = counted[: campaign.friends_needed]
    earned_at = max(friend["qualified_at"] or friend["signed_up_at"] for friend in winners)
    stored = previous is not None and previous.status == "refused"
    if previous is not None and stored:
        reward = previous
    else:
        generation = 1 if previous is None else previous.generation + 1
        reward = Reward(
            id=derived_id("reward", enrolment_id, generation),
            enrolment_id=enrolment_id,
            generation=generation,
            campaign_id=campaign.id,
            currency=campaign.currency,
            created_at=clock.now(),
        )
    parts = campaigns.prize_parts(
        campaign, reward_id=reward.id, welcome_for=[friend["id"] for friend in winners]
    )
    return _Placement(reward, campaign, winners, earned_at, parts, stored)


def _reward_row(reward: Reward) -> Row:
    return {column.name: getattr(reward, column.name) for column in _REWARD_TABLE.columns}


def _place(session: Session, placements: Sequence[_Placement], clock: Clock) -> None:
    """Hold the prizes, in order, in one ledger batch; write their rewards, parts and audit
    entries with one statement per table. A prize the budget cannot cover is refused (the
    member is told why); one whose campaign takes no credit (paused) is left as it was."""
    if not placements:
        return
    outcomes = campaigns.hold_prizes(
        session=session,
        prizes=[(placement.campaign.id, placement.parts) for placement in placements],
        clock=clock,
    )
    entries: list[audit.NewEntry] = []
    part_rows: list[Row] = []
    new_rewards: list[Reward] = []  # not stored yet: inserted on the driver's cursor below
    for placement, outcome in zip(placements, outcomes, strict=True):
        reward = placement.reward
        if isinstance(outcome, CampaignNotAcceptingCredit):
            continue
        if isinstance(outcome, InsufficientBudget):
            if reward.status != "refused":
                entries.append(_entry(reward, "refused", **outcome.details))
            reward.status, reward.reason = "refused", "budget_exhausted"
            reward.earned_at = placement.earned_at
            if not placement.stored:
                new_rewards.append(reward)
            continue
        welcome = iter(placement.winners)
        rows = [
            {
                "id": part.transfer_id,
                "reward_id": reward.id,
                "kind": part.kind,
                "friend_id": next(welcome)["id"] if part.kind == "welcome" else None,
                "amount_minor": part.amount,
                "status": "held",
                "settled_at": None,
            }
            for part in placement.parts
        ]
        reward.status, reward.reason = "held", None
        reward.earned_at = placement.earned_at
        reward.release_at = placement.earned_at + timedelta(days=placement.campaign.holding_days)
        if not placement.stored:
            new_rewards.append(reward)
        part_rows.extend(rows)
        entries.append(
            _entry(
                reward,
                "held",
                generation=reward.generation,
                release_at=reward.release_at.isoformat(),
                parts={str(row["id"]): [row["kind"], row["amount_minor"]] for row in rows},
                friends=[str(friend["id"]) for friend in placement.winners],
            )
        )
    # The rewards refused before are flushed first (their ORM changes), then the new rewards,
    # then the parts that refer to them.
    dialect = session.get_bind().dialect.name
    with DriverCursor.of(session) as cursor:
        rows_of(_REWARD_TABLE, dialect).insert(cursor, [_reward_row(r) for r in new_rewards])
        rows_of(_PART_TABLE, dialect).insert(cursor, part_rows)
    audit.record_all(session=session, entries=entries, clock=clock)


def _settle_lost_friends(
    session: Session,
    reward: Reward,
    parts: Sequence[RewardPart],
    campaign: Campaign,
    counted_ids: set[UUID],
    enough: bool,
    clock: Clock,
) -> None:
    """Undo what depended on friends who no longer count: their welcome, and the member's
    own parts once too few friends are left. Held parts are voided, posted ones clawed back."""
    lost = [
        part
        for part in parts
        if part.status in ("held", "posted")
        and (not enough or (part.friend_id is not None and part.friend_id not in counted_ids))
    ]
    if not lost:
        return
    now = clock.now()
    held = [part for part in lost if part.status == "held"]
    posted = [part for part in lost if part.status == "posted"]
    if held:
        campaigns.settle_prize_parts(
            session=session, parts=[_part(p) for p in held], post=False, clock=clock
        )
    spent: list[RewardPart] = []
    if posted:
        # A coupon already spent (or expired) took its value out of the liability: only
        # the unspent ones (cancelled now) and cash come back to the budget; the spent ones
        # are marked so, and not looked at again.
        settled = coupons.cancel_for_parts(
            session=session, reward_part_ids=[p.id for p in posted], clock=clock
        )
        spent = [part for part in posted if part.id in settled]
        posted = [part for part in posted if part.id not in settled]
    if posted:
        campaigns.claw_back_prize_parts(
            session=session, campaign_id=campaign.id, parts=[_part(p) for p in posted], clock=clock
        )
    for part in held:
        part.status, part.settled_at = "voided", now
    for part in posted:
        part.status, part.settled_at = "clawed_back", now
    for part in spent:
        part.status, part.settled_at = "spent", now
    if not enough:
        reward.status = "voided" if reward.status == "held" else "clawed_back"
        reward.reason = "friends_fell_short"
        reward.settled_at = now
    session.flush()
    _record(
        session,
        reward,
        "voided" if held else "clawed_back",
        clock,
        parts=[str(part.id) for part in lost],
        spent=[str(part.id) for part in spent],
        whole_reward=not enough,
    )


def release_reward(session: Session, reward_id: UUID, *, clock: Clock) -> bool:
    """Post a held prize whose holding period has passed; ``False`` if it is not due."""
    reward = session.get(Reward, reward_id)
    if reward is None:
        return False
    enrolment = repository.get_enrolment(session, reward.enrolment_id, for_update=True)
    session.refresh(reward)
    now = clock.now()
    if reward.status != "held" or reward.release_at is None or reward.release_at > now:
        return False
    assert enrolment is not None  # a foreign key guarantees it
    held = [part for part in repository.parts_of(session, reward.id) if part.status == "held"]
    if held:
        campaigns.settle_prize_parts(
            session=session, parts=[_part(p) for p in held], post=True, clock=clock
        )
    for part in held:
        part.status, part.settled_at = "posted", now
    reward.status, reward.settled_at = "posted", now
    session.flush()
    _issue_coupons(session, enrolment, held, clock)
    _record(session, reward, "posted", clock, parts=[str(part.id) for part in held])
    return True


def _issue_coupons(
    session: Session, enrolment: Enrolment, posted: Sequence[RewardPart], clock: Clock
) -> None:
    """The coupons of a posted prize: the member's coupon part, and each friend's welcome
    (friends are members too: the coupon is theirs)."""
    parts = [part for part in posted if part.kind in ("coupon", "welcome")]
    if not parts:
        return
    friend_members = {
        friend.id: friend.member_id
        for friend in repository.friends_by_ids(
            session, [p.friend_id for p in parts if p.friend_id is not None]
        )
    }
    campaign = session.get(Campaign, enrolment.campaign_id)
    assert campaign is not None  # a foreign key guarantees it
    coupons.issue(
        session=session,
        campaign=campaign,
        parts=[
            coupons.CouponPart(
                reward_part_id=part.id,
                member_id=(
                    friend_members[part.friend_id]
                    if part.friend_id is not None
                    else enrolment.member_id
                ),
                amount_minor=part.amount_minor,
            )
            for part in parts
        ],
        clock=clock,
    )


def release_due_rewards(session: Session, *, clock: Clock, limit: int = 100) -> int:
    """Post up to ``limit`` held prizes that are due; return how many were posted."""
    due = repository.due_rewards(session, now=clock.now(), limit=limit)
    return sum(release_reward(session, reward.id, clock=clock) for reward in due)
