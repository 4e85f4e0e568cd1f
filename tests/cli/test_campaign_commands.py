from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from parrain.audit import service as audit
from parrain.campaigns import service as campaigns
from parrain.campaigns.schemas import CampaignRead, CampaignStatus
from parrain.consent import service as consent
from parrain.db.session import Database
from parrain.kit.clock import SystemClock
from tests.cli.conftest import ACTOR, Cli, refused

UK = [
    "campaign",
    "create",
    "--name",
    "Cash Rewards UK",
    "--market",
    "GB",
    "--currency",
    "GBP",
    "--languages",
    "en,fr",
    "--starts",
    "2030-03-01T00:00Z",
    "--ends",
    "2030-04-01T12:30+01:00",
    "--friends",
    "5",
    "--enrolment-hours",
    "24",
    "--reward-cash",
    "20.00",
    "--reward-coupons",
    "30.00",
    "--friend-welcome",
    "5.00",
    "--holding-days",
    "7",
]


def _with(base: list[str], option: str, value: str) -> list[str]:
    args = list(base)
    args[args.index(option) + 1] = value
    return args


def _campaign(database: Database, name: str = "Cash Rewards UK") -> CampaignRead:
    found = database.read(lambda s: campaigns.find_by_name(session=s, name=name))
    assert found is not None
    return found


def _audit_actions(database: Database) -> list[str]:
    entries = database.read(lambda s: audit.list_entries(session=s, limit=1000))
    return [entry.action for entry in entries]


def _created(cli: Cli) -> None:
    result = cli(*UK)
    assert result.exit_code == 0, result.output


def _declared(database: Database, name: str = "Cash Rewards UK") -> None:
    """Give the campaign the programme's data-use declaration (the launch gate needs one)."""
    campaign_id = _campaign(database, name).id
    database.run(
        lambda s: consent.declare_programme_defaults(
            session=s,
            campaign_id=campaign_id,
            controller="Example Marketplace Ltd",
            actor=ACTOR,
            clock=SystemClock(),
        )
    )


def test_a_campaign_goes_from_draft_to_ended_through_the_cli(cli: Cli, database: Database) -> None:
    result = cli(*UK)
    assert result.exit_code == 0, result.output
    assert "Created draft campaign 'Cash Rewards UK'" in result.stdout
    assert "£50.00 (£20.00 cash + £30.00 coupons)" in result.stdout

    created = _campaign(database)
    assert created.status is CampaignStatus.DRAFT
    assert (created.market, created.currency, created.languages) == ("GB", "GBP", ["en", "fr"])
    assert created.starts_at == datetime(2030, 3, 1, tzinfo=UTC)
    assert created.ends_at == datetime(2030, 4, 1, 11, 30, tzinfo=UTC)
    assert (created.friends_needed, created.enrolment_window_hours) == (5, 24)
    assert (created.reward_cash_minor, created.reward_coupon_minor) == (2000, 3000)
    assert (created.friend_welcome_minor, created.holding_days) == (500, 7)

    result = cli("campaign", "fund", "Cash Rewards UK", "500.00")
    assert result.exit_code == 0, result.output
    assert "Funded 'Cash Rewards UK' with £500.00: budget available £500.00." in result.stdout
    assert _campaign(database).budget.funded_minor == 50_000
    _declared(database)

    for action, status in [
        ("launch", CampaignStatus.LIVE),
        ("pause", CampaignStatus.PAUSED),
        ("resume", CampaignStatus.LIVE),
        ("end", CampaignStatus.ENDED),
    ]:
        result = cli("campaign", action, "Cash Rewards UK")
        assert result.exit_code == 0, result.output
        assert f"Campaign 'Cash Rewards UK' is now {status.value}." in result.stdout
        assert _campaign(database).status is status

    ended = _campaign(database)
    assert ended.launched_at is not None
    assert ended.ended_at is not None
    entries = database.read(lambda s: audit.list_entries(session=s, limit=1000))
    assert [e.action for e in entries] == [
        "campaign.created",
        "ledger.account_opened",
        "campaign.funded",
        "consent.declared",
        "campaign.launched",
        "campaign.paused",
        "campaign.resumed",
        "campaign.ended",
    ]
    assert {e.actor for e in entries} == {ACTOR}


def test_a_campaign_is_named_by_its_id_too_and_a_funding_id_funds_once(
    cli: Cli, database: Database
) -> None:
    _created(cli)
    campaign_id = str(_campaign(database).id)
    funding_id = "0192f0c4-0000-7000-8000-000000000001"
    for _ in range(2):
        result = cli("campaign", "fund", campaign_id, "1234.5", "--funding-id", funding_id)
        assert result.exit_code == 0, result.output
    assert _campaign(database).budget.funded_minor == 123_450
    assert _audit_actions(database).count("campaign.funded") == 1


def test_starts_defaults_to_now_and_ends_thirty_days_later(cli: Cli, database: Database) -> None:
    before = datetime.now(UTC)
    args = [a for a in UK if a not in ("--starts", "2030-03-01T00:00Z")]
    args = [a for a in args if a not in ("--ends", "2030-04-01T12:30+01:00")]
    result = cli(*args)
    after = datetime.now(UTC)
    assert result.exit_code == 0, result.output
    created = _campaign(database)
    assert before - timedelta(seconds=1) <= created.starts_at <= after
    assert created.ends_at - created.starts_at == timedelta(days=30)


def test_list_shows_reward_and_budget_in_the_campaigns_locale(cli: Cli, database: Database) -> None:
    _created(cli)
    result = cli(
        *_with(
            _with(_with(UK, "--name", "Cash Rewards France"), "--market", "FR"), "--currency", "EUR"
        )
    )
    assert result.exit_code == 0, result.output
    assert cli("campaign", "fund", "Cash Rewards France", "5000").exit_code == 0
    _declared(database, "Cash Rewards France")
    assert cli("campaign", "launch", "Cash Rewards France").exit_code == 0

    result = cli("campaign", "list")
    assert result.exit_code == 0, result.output
    uk_row = next(line for line in result.stdout.splitlines() if "Cash Rewards UK" in line)
    assert "draft" in uk_row
    assert "£50.00" in uk_row
    assert "£0.00" in uk_row
    fr_row = next(line for line in result.stdout.splitlines() if "Cash Rewards France" in line)
    assert "live" in fr_row
    # Babel's French format: narrow no-break space between thousands, no-break space before €.
    assert "5\u202f000,00\xa0€" in fr_row
    assert "50,00\xa0€" in fr_row

    live_only = cli("campaign", "list", "--status", "live")
    assert "Cash Rewards France" in live_only.stdout
    assert "Cash Rewards UK" not in live_only.stdout
    assert cli("campaign", "list", "--status", "ended").stdout.strip() == "No ended campaigns."


def test_show_prints_the_details_and_json_for_machines(cli: Cli, database: Database) -> None:
    _created(cli)
    assert cli("campaign", "fund", "Cash Rewards UK", "500.00").exit_code == 0

    result = cli("campaign", "show", "Cash Rewards UK")
    assert result.exit_code == 0, result.output
    assert str(_campaign(database).id) in result.stdout
    assert "2030-03-01 00:00 UTC to 2030-04-01 11:30 UTC" in result.stdout
    assert "5 friends within 24 h of enrolment" in result.stdout
    assert "£5.00 per friend" in result.stdout
    assert "£500.00" in result.stdout

    as_json = cli("campaign", "show", "Cash Rewards UK", "--json")
    assert as_json.exit_code == 0, as_json.output
    shown = json.loads(as_json.stdout)
    assert shown["name"] == "Cash Rewards UK"
    assert shown["status"] == "draft"
    assert shown["reward_minor"] == 5000
    assert shown["budget"]["available_minor"] == 50_000
    assert shown["budget"]["available_display"] == "£500.00"


def test_an_amount_with_too_many_decimals_is_refused_and_nothing_is_written(
    cli: Cli, database: Database
) -> None:
    _created(cli)
    line = refused(cli("campaign", "fund", "Cash Rewards UK", "50.005"), "invalid_amount")
    assert line == "error [invalid_amount]: AMOUNT: GBP has 2 decimal places; '50.005' has more"
    assert _campaign(database).budget.funded_minor == 0
    assert _audit_actions(database) == ["campaign.created"]


@pytest.mark.parametrize(
    ("amount", "code", "message"),
    [
        ("-5.00", "invalid_input", "AMOUNT: Input should be greater than 0"),
        ("0", "invalid_input", "AMOUNT: Input should be greater than 0"),
        ("92233720368547758.08", "amount_out_of_range", "the amount exceeds 2^63-1 minor units"),
        ("5,000.00", "invalid_amount", "'5,000.00' is not a decimal amount such as 50.00"),
    ],
)
def test_a_bad_funding_amount_is_refused(
    cli: Cli, database: Database, amount: str, code: str, message: str
) -> None:
    _created(cli)
    line = refused(cli("campaign", "fund", "Cash Rewards UK", "--", amount), code)
    assert message in line
    assert _campaign(database).budget.funded_minor == 0
    assert _audit_actions(database) == ["campaign.created"]


@pytest.mark.parametrize(
    ("option", "value", "code", "message"),
    [
        ("--reward-cash", "abc", "invalid_amount", "--reward-cash: 'abc' is not a decimal amount"),
        (
            "--reward-cash",
            "-5.00",
            "invalid_input",
            "--reward-cash: Input should be greater than or equal to 0",
        ),
        (
            "--reward-coupons",
            "92233720368547758.08",
            "amount_out_of_range",
            "--reward-coupons: the amount exceeds 2^63-1 minor units",
        ),
        (
            "--currency",
            "XYZ",
            "unknown_currency",
            "--currency: 'XYZ' is not an ISO 4217 currency code",
        ),
        ("--market", "ZZ", "invalid_input", "--market: 'ZZ' is not an ISO 3166 country code"),
        ("--languages", "en,xx", "invalid_input", "--languages: 'xx' is not an ISO 639-1"),
        (
            "--friends",
            "0",
            "invalid_input",
            "--friends: Input should be greater than or equal to 1",
        ),
        ("--starts", "next monday", "invalid_input", "--starts: 'next monday' is not an ISO 8601"),
        ("--ends", "2030-02-01T00:00Z", "invalid_input", "the campaign must end after it starts"),
        ("--reward-cash", "0", "invalid_input", "the reward must be greater than zero"),
    ],
)
def test_a_bad_campaign_is_refused_and_nothing_is_written(
    cli: Cli, database: Database, option: str, value: str, code: str, message: str
) -> None:
    args = _with(UK, option, value)
    if value == "0":
        args = _with(args, "--reward-coupons", "0")
    line = refused(cli(*args), code)
    assert message in line
    assert database.read(lambda s: campaigns.list_campaigns(session=s)) == []
    assert _audit_actions(database) == []


def test_a_second_campaign_with_the_same_name_is_refused(cli: Cli, database: Database) -> None:
    _created(cli)
    line = refused(cli(*UK), "campaign_name_taken")
    assert line == "error [campaign_name_taken]: a campaign called 'Cash Rewards UK' already exists"
    assert len(database.read(lambda s: campaigns.list_campaigns(session=s))) == 1


@pytest.mark.parametrize(
    "reference",
    ["Cash Rewards Atlantis", "0192f0c4-0000-7000-8000-00000000dead", "cash rewards uk"],
)
def test_an_unknown_campaign_is_refused(cli: Cli, reference: str) -> None:
    _created(cli)
    line = refused(cli("campaign", "launch", reference), "campaign_not_found")
    assert line == f"error [campaign_not_found]: no campaign has the id or name {reference!r}"


def test_a_bad_funding_id_is_refused(cli: Cli, database: Database) -> None:
    _created(cli)
    line = refused(
        cli("campaign", "fund", "Cash Rewards UK", "10.00", "--funding-id", "nope"),
        "invalid_input",
    )
    assert line == "error [invalid_input]: --funding-id: 'nope' is not a UUID"
    assert _campaign(database).budget.funded_minor == 0


def test_an_illegal_transition_is_refused(cli: Cli, database: Database) -> None:
    _created(cli)
    line = refused(cli("campaign", "pause", "Cash Rewards UK"), "illegal_transition")
    assert line == "error [illegal_transition]: cannot pause a campaign that is draft"
    assert _campaign(database).status is CampaignStatus.DRAFT
    assert _audit_actions(database) == ["campaign.created"]


def test_launching_without_a_budget_lists_the_gate_findings(cli: Cli, database: Database) -> None:
    _created(cli)
    result = cli("campaign", "launch", "Cash Rewards UK")
    refused(result, "launch_gate_failed")
    # One prize: £50.00 reward and five friends welcomed with £5.00 each.
    assert (
        "  - budget_funded: the prize budget holds £0.00, less than one prize (£75.00)"
        in result.stderr.splitlines()
    )
    assert _campaign(database).status is CampaignStatus.DRAFT
    assert _audit_actions(database) == ["campaign.created"]


def test_an_ended_campaign_cannot_be_funded(cli: Cli, database: Database) -> None:
    _created(cli)
    _declared(database)
    for args in (("fund", "Cash Rewards UK", "75.00"), ("launch", "Cash Rewards UK")):
        assert cli("campaign", *args).exit_code == 0
    assert cli("campaign", "end", "Cash Rewards UK").exit_code == 0
    line = refused(cli("campaign", "fund", "Cash Rewards UK", "10.00"), "campaign_ended")
    assert line == "error [campaign_ended]: an ended campaign cannot be funded"
    assert _campaign(database).budget.funded_minor == 7_500


def test_coupon_rules_are_set_at_creation_and_shown(cli: Cli, database: Database) -> None:
    result = cli(*UK, "--coupon-min-spend", "25.00", "--coupon-days", "30")
    assert result.exit_code == 0, result.output
    shown = cli("campaign", "show", "Cash Rewards UK")
    assert "valid 30 days, on orders of at least £25.00" in shown.stdout
    campaign = _campaign(database)
    assert (campaign.coupon_min_spend_minor, campaign.coupon_valid_days) == (2500, 30)
    other = _with(UK, "--name", "Other")
    line = refused(cli(*other, "--coupon-days", "0"), "invalid_input")
    assert "--coupon-days" in line
