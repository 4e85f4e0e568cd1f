"""``parrain campaign``: create, list, show and fund campaigns, and move them through their
lifecycle (draft → live ⇄ paused → ended). Amounts are typed as decimals (``50.00``)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Protocol
from uuid import UUID

import typer
from rich.table import Table
from sqlalchemy.orm import Session

from parrain.campaigns import service as campaigns
from parrain.campaigns.schemas import CampaignCreate, CampaignRead, CampaignStatus, FundingCreate
from parrain.cli.output import (
    build,
    console,
    parse_amount,
    parse_currency,
    parse_moment,
    reports_errors,
    show_moment,
)
from parrain.cli.state import campaign_locale, resolve_campaign, state_of
from parrain.errors import InvalidInput
from parrain.kit.clock import Clock
from parrain.kit.money import Money
from parrain.referrals import service as referrals
from parrain.referrals.schemas import FunnelRead

app = typer.Typer(help="Campaigns: create, fund, launch, pause, resume, end.", no_args_is_help=True)

#: The option that sets each field of CampaignCreate and FundingCreate, to name in errors.
OPTION_OF_FIELD = {
    "name": "--name",
    "market": "--market",
    "currency": "--currency",
    "languages": "--languages",
    "starts_at": "--starts",
    "ends_at": "--ends",
    "friends_needed": "--friends",
    "enrolment_window_hours": "--enrolment-hours",
    "reward_cash_minor": "--reward-cash",
    "reward_coupon_minor": "--reward-coupons",
    "friend_welcome_minor": "--friend-welcome",
    "holding_days": "--holding-days",
    "coupon_min_spend_minor": "--coupon-min-spend",
    "coupon_valid_days": "--coupon-days",
    "attribution_model": "--attribution",
    "attribution_window_hours": "--attribution-hours",
    "new_customer_days": "--new-customer-days",
    "qualifying_action": "--qualifying",
    "min_order_minor": "--min-order",
    "landing_url": "--landing-url",
    "amount_minor": "AMOUNT",
}

DEFAULT_DURATION = timedelta(days=30)

CampaignArgument = Annotated[
    str, typer.Argument(metavar="CAMPAIGN", help="The campaign's exact name or its id.")
]


@app.command()
@reports_errors
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Option(help="A unique name, e.g. 'Cash Rewards UK'.")],
    market: Annotated[str, typer.Option(help="ISO 3166 country code: GB, FR...")],
    currency: Annotated[str, typer.Option(help="ISO 4217 currency code: GBP, EUR...")],
    languages: Annotated[
        str, typer.Option(help="ISO 639-1 codes, comma separated; the first is the default.")
    ],
    friends: Annotated[int, typer.Option(help="Friends who must join to win the reward.")],
    reward_cash: Annotated[
        str, typer.Option(help="Reward paid in cash to PayPal, e.g. 20.00.")
    ] = "0",
    reward_coupons: Annotated[str, typer.Option(help="Reward given as coupons, e.g. 30.00.")] = "0",
    friend_welcome: Annotated[
        str, typer.Option(help="Welcome reward for each friend, e.g. 5.00.")
    ] = "0",
    starts: Annotated[
        str | None,
        typer.Option(
            help="ISO 8601 start, e.g. 2026-03-01T00:00Z (default: now).", show_default=False
        ),
    ] = None,
    ends: Annotated[
        str | None,
        typer.Option(help="ISO 8601 end (default: 30 days after the start).", show_default=False),
    ] = None,
    enrolment_hours: Annotated[
        int, typer.Option(help="Hours a member has to bring the friends in.")
    ] = 24,
    holding_days: Annotated[
        int, typer.Option(help="Days a reward is held before it is paid (refund window).")
    ] = 7,
    coupon_min_spend: Annotated[
        str, typer.Option(help="Least order value a prize coupon applies to, e.g. 25.00.")
    ] = "0",
    coupon_days: Annotated[
        int, typer.Option(help="Days a prize coupon can be used once issued.")
    ] = 90,
    attribution: Annotated[
        str, typer.Option(help="Which click earns a friend: last_click or first_click.")
    ] = "last_click",
    attribution_hours: Annotated[int, typer.Option(help="Hours a click can earn an install.")] = 7
    * 24,
    new_customer_days: Annotated[
        int,
        typer.Option(help="A friend's user id, device and email must be unseen this many days."),
    ] = 365,
    qualifying: Annotated[
        str, typer.Option(help="What makes a friend count: signup or first_order.")
    ] = "signup",
    min_order: Annotated[
        str, typer.Option(help="Least value of a qualifying first order, e.g. 15.00.")
    ] = "0",
    landing_url: Annotated[
        str | None,
        typer.Option(help="App-store or landing URL the link sends people to.", show_default=False),
    ] = None,
) -> None:
    """Create a draft campaign. Fund and launch it to open it to members."""
    state = state_of(ctx)
    code = parse_currency(currency, option="--currency")
    starts_at = parse_moment(starts, option="--starts") if starts else state.clock.now()
    ends_at = parse_moment(ends, option="--ends") if ends else starts_at + DEFAULT_DURATION
    campaign_in = build(
        CampaignCreate,
        OPTION_OF_FIELD,
        name=name,
        market=market.strip(),
        currency=code,
        languages=[part.strip() for part in languages.split(",") if part.strip()],
        starts_at=starts_at,
        ends_at=ends_at,
        friends_needed=friends,
        enrolment_window_hours=enrolment_hours,
        reward_cash_minor=parse_amount(reward_cash, code, option="--reward-cash").minor,
        reward_coupon_minor=parse_amount(reward_coupons, code, option="--reward-coupons").minor,
        friend_welcome_minor=parse_amount(friend_welcome, code, option="--friend-welcome").minor,
        holding_days=holding_days,
        coupon_min_spend_minor=parse_amount(
            coupon_min_spend, code, option="--coupon-min-spend"
        ).minor,
        coupon_valid_days=coupon_days,
        attribution_model=attribution.strip(),
        attribution_window_hours=attribution_hours,
        new_customer_days=new_customer_days,
        qualifying_action=qualifying.strip(),
        min_order_minor=parse_amount(min_order, code, option="--min-order").minor,
        landing_url=landing_url,
    )
    created = state.database.run(
        lambda session: campaigns.create(
            session=session, campaign_in=campaign_in, actor=state.actor, clock=state.clock
        )
    )
    console().print(
        f"Created draft campaign {created.name!r} ({created.id}): reward {_reward(created)}. "
        "Fund it, then launch it."
    )


@app.command("list")
@reports_errors
def list_(
    ctx: typer.Context,
    status: Annotated[
        CampaignStatus | None, typer.Option(help="Only campaigns with this status.")
    ] = None,
) -> None:
    """List campaigns with their reward and the budget still available."""
    state = state_of(ctx)
    found = state.database.read(
        lambda session: campaigns.list_campaigns(session=session, status=status)
    )
    if not found:
        console().print("No campaigns." if status is None else f"No {status.value} campaigns.")
        return
    table = Table(title="Campaigns")
    table.add_column("Name")
    table.add_column("Market")
    table.add_column("Status")
    table.add_column("Reward", justify="right", no_wrap=True)
    table.add_column("Budget available", justify="right", no_wrap=True)
    for campaign in found:
        table.add_row(
            campaign.name,
            campaign.market,
            campaign.status.value,
            campaign.reward_display,
            campaign.budget.available_display,
        )
    console().print(table)


@app.command()
@reports_errors
def show(
    ctx: typer.Context,
    campaign: CampaignArgument,
    as_json: Annotated[bool, typer.Option("--json", help="Print the campaign as JSON.")] = False,
) -> None:
    """Show a campaign's rules, status and budget."""
    state = state_of(ctx)
    found = state.database.read(lambda session: resolve_campaign(session, campaign))
    if as_json:
        typer.echo(found.model_dump_json(indent=2))
        return
    console().print(_details(found))


@app.command()
@reports_errors
def fund(
    ctx: typer.Context,
    campaign: CampaignArgument,
    amount: Annotated[
        str,
        typer.Argument(metavar="AMOUNT", help="Amount in the campaign's currency, e.g. 500.00."),
    ],
    funding_id: Annotated[
        str | None,
        typer.Option(
            help="Idempotency key (a UUID): the same id funds once however often it is sent.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Move money from the operator's funding account into the campaign's prize budget."""
    state = state_of(ctx)
    key = _uuid(funding_id, option="--funding-id") if funding_id is not None else None

    def work(session: Session) -> tuple[CampaignRead, Money]:
        target = resolve_campaign(session, campaign)
        money = parse_amount(amount, target.currency, option="AMOUNT")
        funding_in = build(
            FundingCreate,
            OPTION_OF_FIELD,
            amount_minor=money.minor,
            currency=money.currency,
            funding_id=key,
        )
        funded = campaigns.fund(
            session=session,
            campaign_id=target.id,
            funding_in=funding_in,
            actor=state.actor,
            clock=state.clock,
        )
        return funded, money

    funded, money = state.database.run(work)
    console().print(
        f"Funded {funded.name!r} with {money.format(campaign_locale(funded))}: "
        f"budget available {funded.budget.available_display}."
    )


class Transition(Protocol):
    def __call__(
        self, *, session: Session, campaign_id: UUID, actor: str, clock: Clock
    ) -> CampaignRead: ...


def _move(ctx: typer.Context, reference: str, transition: Transition) -> None:
    state = state_of(ctx)

    def work(session: Session) -> CampaignRead:
        target = resolve_campaign(session, reference)
        return transition(
            session=session, campaign_id=target.id, actor=state.actor, clock=state.clock
        )

    moved = state.database.run(work)
    console().print(f"Campaign {moved.name!r} is now {moved.status.value}.")


@app.command()
@reports_errors
def launch(ctx: typer.Context, campaign: CampaignArgument) -> None:
    """Open a draft to members, once it passes the launch gate (budget funded...)."""
    _move(ctx, campaign, campaigns.launch)


@app.command()
@reports_errors
def pause(ctx: typer.Context, campaign: CampaignArgument) -> None:
    """Stop new enrolments and new credit; what members already earned is honoured."""
    _move(ctx, campaign, campaigns.pause)


@app.command()
@reports_errors
def resume(ctx: typer.Context, campaign: CampaignArgument) -> None:
    """Reopen a paused campaign (it passes the launch gate again)."""
    _move(ctx, campaign, campaigns.resume)


@app.command()
@reports_errors
def end(ctx: typer.Context, campaign: CampaignArgument) -> None:
    """End a live or paused campaign for good."""
    _move(ctx, campaign, campaigns.end)


def _uuid(text: str, *, option: str) -> UUID:
    try:
        return UUID(text.strip())
    except ValueError:
        raise InvalidInput(f"{option}: {text!r} is not a UUID", field=option) from None


def _money(campaign: CampaignRead, minor: int) -> str:
    return Money(minor, campaign.currency).format(campaign_locale(campaign))


def _reward(campaign: CampaignRead) -> str:
    return (
        f"{campaign.reward_display} ({_money(campaign, campaign.reward_cash_minor)} cash + "
        f"{_money(campaign, campaign.reward_coupon_minor)} coupons)"
    )


def _details(campaign: CampaignRead) -> Table:
    budget = campaign.budget
    table = Table(title=campaign.name, show_header=False)
    table.add_column("Field", style="bold")
    table.add_column("Value")
    welcome = (
        f"{_money(campaign, campaign.friend_welcome_minor)} per friend"
        if campaign.friend_welcome_minor
        else "none"
    )
    rows = [
        ("Id", str(campaign.id)),
        ("Status", campaign.status.value),
        ("Market", f"{campaign.market} ({campaign.currency})"),
        ("Languages", ", ".join(campaign.languages)),
        ("Window", f"{show_moment(campaign.starts_at)} to {show_moment(campaign.ends_at)}"),
        (
            "Rule",
            f"{campaign.friends_needed} friends within {campaign.enrolment_window_hours} h "
            "of enrolment",
        ),
        ("Reward", _reward(campaign)),
        ("Friend welcome", welcome),
        ("Holding period", f"{campaign.holding_days} days"),
        (
            "Coupons",
            f"valid {campaign.coupon_valid_days} days, on orders of at least "
            f"{_money(campaign, campaign.coupon_min_spend_minor)}",
        ),
        (
            "Attribution",
            f"{campaign.attribution_model.replace('_', ' ')} within "
            f"{campaign.attribution_window_hours} h",
        ),
        (
            "A friend counts on",
            "signing up"
            if campaign.qualifying_action == "signup"
            else f"a first order of at least {_money(campaign, campaign.min_order_minor)}",
        ),
        ("New customer", f"unseen for {campaign.new_customer_days} days"),
        ("Link sends to", campaign.landing_url or "the invitation page"),
        ("Budget funded", _money(campaign, budget.funded_minor)),
        ("Budget held", _money(campaign, budget.held_minor)),
        ("Budget spent", _money(campaign, budget.spent_minor)),
        ("Budget available", budget.available_display),
        ("Created", show_moment(campaign.created_at)),
        ("Launched", show_moment(campaign.launched_at)),
        ("Ended", show_moment(campaign.ended_at)),
    ]
    for field, value in rows:
        table.add_row(field, value)
    return table


@app.command()
@reports_errors
def funnel(
    ctx: typer.Context,
    campaign: CampaignArgument,
    as_json: Annotated[bool, typer.Option("--json", help="Print the funnel as JSON.")] = False,
) -> None:
    """Show a campaign's funnel: clicks → installs → signups → qualified → rewarded."""
    state = state_of(ctx)

    def work(session: Session) -> tuple[CampaignRead, FunnelRead]:
        found = resolve_campaign(session, campaign)
        return found, referrals.funnel(session=session, campaign_id=found.id)

    found, counts = state.database.read(work)
    if as_json:
        typer.echo(counts.model_dump_json(indent=2))
        return
    table = Table(title=f"Funnel of {found.name}")
    table.add_column("Step", style="bold")
    table.add_column("Count", justify="right")
    table.add_column("Of the step before", justify="right")
    steps = [
        ("Clicks", counts.clicks),
        ("Installs", counts.installs),
        ("Signups", counts.signups),
        ("Qualified friends", counts.qualified),
        ("Members rewarded", counts.rewarded),
    ]
    previous: int | None = None
    for label, value in steps:
        share = f"{value * 100 // previous} %" if previous else ""
        table.add_row(label, f"{value:,}", share)
        previous = value
    out = console()
    out.print(table)
    out.print(
        f"{counts.enrolments:,} members enrolled; prizes held {counts.rewards_held:,}, "
        f"posted {counts.rewards_posted:,}, refused for lack of budget "
        f"{counts.rewards_refused:,}."
    )
