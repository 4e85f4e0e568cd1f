"""What ``parrain demo`` prints: where to go, as whom, and the links of each seeded member."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from rich.markup import escape
from rich.table import Table

from parrain.cli.commands.demo.campaigns import SeededCampaign
from parrain.cli.commands.demo.people import (
    DEMO_KEY_NAME,
    DEMO_TOKEN_LIFETIME,
    FIRST_MEMBER,
    SeededMember,
    release_date,
)
from parrain.cli.commands.demo.running import WEBHOOK_PATH
from parrain.cli.commands.demo.seeding import DemoSeed
from parrain.cli.output import console
from parrain.config import Settings
from parrain.members.tokens import MAX_LIFETIME_SECONDS, mint_member_token
from parrain.operators.roles import Role
from parrain.payouts.providers.fake import DEFAULT_CLIENT_ID, DEFAULT_WEBHOOK_ID, FakePayPal


def print_seed(
    seed: DemoSeed, settings: Settings, *, database: Path, now: datetime, fake: FakePayPal | None
) -> None:
    out = console()
    base = settings.referrals.link_base_url
    _print_campaigns(seed.campaigns, database=database)
    out.print(f"API:           {base}/v1/campaigns", highlight=False)
    out.print(f"API reference: {base}/docs", highlight=False)
    _print_operators(seed, base=base)
    _print_members(seed.members, settings, now=now)
    _print_integration(seed, base=base)
    if fake is not None:
        out.print(
            f"PayPal fake:   {fake.base_url} (client id {DEFAULT_CLIENT_ID}, webhook id "
            f"{DEFAULT_WEBHOOK_ID}; it notifies {base}{WEBHOOK_PATH})",
            highlight=False,
        )


def _print_campaigns(seeded: list[SeededCampaign], *, database: Path) -> None:
    table = Table(title=f"Demo campaigns in {escape(str(database))}")
    table.add_column("Name")
    table.add_column("Market")
    table.add_column("Status")
    table.add_column("Reward", justify="right", no_wrap=True)
    table.add_column("Budget left", justify="right", no_wrap=True)
    table.add_column("Seeded")
    for item in seeded:
        campaign = item.campaign
        table.add_row(
            campaign.name,
            f"{campaign.market} {campaign.currency}",
            campaign.status.value,
            campaign.reward_display,
            campaign.budget.available_display,
            "created" if item.created else "found",
        )
    console().print(table)


def _print_operators(seed: DemoSeed, *, base: str) -> None:
    out = console()
    where = {Role.ADMIN: f"{base}/console", Role.AUDITOR: f"{base}/console/audit"}
    for item in seed.operators:
        spec = item.spec
        out.print(
            f"Console ({spec.role.value}): {where.get(spec.role, f'{base}/console')} "
            f"username {spec.username} password {spec.password}",
            highlight=False,
        )
    out.print(
        "  These passwords are printed for the demo's made-up data only: never use them for "
        "real accounts.",
        highlight=False,
    )
    hours = int(DEMO_TOKEN_LIFETIME / timedelta(hours=1))
    out.print(f"Admin API token ({hours} hours): {seed.admin_token}", highlight=False)
    out.print(
        f"  curl -H 'Authorization: Bearer {seed.admin_token}' {base}/v1/campaigns",
        highlight=False,
    )


def _member_link(settings: Settings, user: str, *, now: datetime) -> str:
    token = mint_member_token(
        secret=settings.members.token_secret_bytes(settings.crypto),
        subject=user,
        market="GB",
        now=now,
        lifetime_seconds=MAX_LIFETIME_SECONDS,
    )
    return f"{settings.referrals.link_base_url}/m/enter?token={token}"


def _print_members(seeded: list[SeededMember], settings: Settings, *, now: datetime) -> None:
    """Links that open the member pages as the marketplace's app would (ADR 21), each valid
    ten minutes: every seeded member's and a newcomer's; and how to mint more."""
    out = console()
    base = settings.referrals.link_base_url
    table = Table(title="Demo members (UK)")
    table.add_column("Member")
    table.add_column("Stage")
    table.add_column("Friends", justify="right")
    table.add_column("Prize")
    table.add_column("Seeded")
    for item in seeded:
        reward = item.progress.reward
        held_until = release_date(item)
        prize: str = "-" if reward is None else reward.status
        if held_until is not None:
            prize = f"held until {held_until:%Y-%m-%d}"
        table.add_row(
            item.spec.marketplace_user_id,
            item.spec.stage,
            f"{item.progress.friends_counted} of {item.progress.friends_needed}",
            prize,
            "created" if item.created else "found",
        )
    out.print(table)
    for item in seeded:
        label = "the demo member" if item.spec is FIRST_MEMBER else item.spec.marketplace_user_id
        link = _member_link(settings, item.spec.marketplace_user_id, now=now)
        out.print(f"Member pages of {label} (10 minutes): {link}", highlight=False)
    newcomer = _member_link(settings, "demo-newcomer", now=now)
    out.print(f"Member pages of a newcomer (10 minutes): {newcomer}", highlight=False)
    out.print(
        "More: PARRAIN_CRYPTO_ALLOW_DEVELOPMENT_KEYS=true parrain --database-url <demo db> "
        f"member token {FIRST_MEMBER.marketplace_user_id} --market GB --base-url {base}",
        highlight=False,
    )


def _print_integration(seed: DemoSeed, *, base: str) -> None:
    out = console()
    first = next(item for item in seed.members if item.spec is FIRST_MEMBER)
    out.print(f"Sponsorship link of the demo member: {first.enrolment.link}", highlight=False)
    inviting = next(
        (item for item in seed.members if item.progress.reward is None and item.spec.friends),
        first,
    )
    out.print(
        f"A friend's invitation ({inviting.spec.marketplace_user_id}'s link): "
        f"{inviting.enrolment.link}",
        highlight=False,
    )
    if seed.api_key is not None:
        out.print(f"Events API key (shown once): {seed.api_key}", highlight=False)
    else:
        out.print(
            f"Events API key: made by the first run ({DEMO_KEY_NAME}); "
            "make another with: parrain --database-url <demo db> apikey create --name N "
            "--scope events",
            highlight=False,
        )
    out.print(
        f"Their progress: curl -H 'Authorization: Bearer <events key>' "
        f"{base}/v1/enrolments/{first.enrolment.id}/progress",
        highlight=False,
    )
