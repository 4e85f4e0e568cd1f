"""``parrain referral enrol|progress``, ``parrain campaign funnel`` and the holding job from
``parrain worker run --once``."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from parrain.db.session import Database
from parrain.kit.clock import FrozenClock
from tests.cli.conftest import Cli, refused
from tests.referrals.programme import Programme, friend_names


@pytest.fixture
def clock() -> FrozenClock:
    """Today: the CLI runs on the system clock, so the campaign must be live now."""
    return FrozenClock(datetime.now(UTC))


@pytest.fixture(autouse=True)
def _development_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARRAIN_CRYPTO_ALLOW_DEVELOPMENT_KEYS", "true")


def test_enrol_prints_the_code_and_link_and_never_the_personal_data(
    cli: Cli, database: Database, clock: FrozenClock
) -> None:
    programme = Programme.launch(database, clock)
    result = cli(
        "referral",
        "enrol",
        programme.campaign.name,
        "--user-id",
        "mkt-998877",
        "--email",
        "ann.lee@example.org",
        "--username",
        "annlee",
        "--json",
    )
    assert result.exit_code == 0, result.output
    enrolment = json.loads(result.stdout)
    assert enrolment["link"].endswith(f"/r/{enrolment['code']}")
    for personal in ("mkt-998877", "ann.lee@example.org", "annlee"):
        assert personal not in result.output

    again = cli(
        "referral",
        "enrol",
        str(programme.campaign.id),
        "--user-id",
        "mkt-998877",
        "--email",
        "ann.lee@example.org",
        "--username",
        "annlee",
    )
    assert "already enrolled" in refused(again, "already_enrolled")


def test_enrol_refuses_a_bad_email_naming_the_option(
    cli: Cli, database: Database, clock: FrozenClock
) -> None:
    programme = Programme.launch(database, clock)
    result = cli(
        "referral",
        "enrol",
        programme.campaign.name,
        "--user-id",
        "u1",
        "--email",
        "nope",
        "--username",
        "ann",
    )
    line = refused(result, "invalid_input")
    assert "--email" in line
    assert "nope" not in line


def test_enrol_without_keys_is_refused(
    cli: Cli, database: Database, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    programme = Programme.launch(database, clock)
    monkeypatch.delenv("PARRAIN_CRYPTO_ALLOW_DEVELOPMENT_KEYS")
    result = cli(
        "referral",
        "enrol",
        programme.campaign.name,
        "--user-id",
        "u1",
        "--email",
        "a@example.org",
        "--username",
        "ann",
    )
    refused(result, "keys_not_configured")


def test_progress_funnel_and_the_worker_post_the_prize(
    cli: Cli, database: Database, clock: FrozenClock
) -> None:
    programme = Programme.launch(database, clock)
    enrolment = programme.enrol("ann")
    programme.invite_many(enrolment, friend_names("f", 5))

    shown = cli("referral", "progress", enrolment.code_display.lower())
    assert shown.exit_code == 0, shown.output
    assert "5 of 5 friends" in shown.stdout
    assert "held until" in shown.stdout
    as_json = json.loads(cli("referral", "progress", str(enrolment.id), "--json").stdout)
    assert as_json["reward"]["status"] == "held"

    funnel = json.loads(cli("campaign", "funnel", programme.campaign.name, "--json").stdout)
    assert (funnel["clicks"], funnel["signups"], funnel["rewarded"]) == (5, 5, 1)
    table = cli("campaign", "funnel", programme.campaign.name)
    assert "Members rewarded" in table.stdout

    worker = cli("worker", "run", "--once")  # on the system clock: not due for a week
    assert "rewards posted: 0" in worker.stdout
    clock.advance(timedelta(days=8))
    assert programme.release_due() == 1
    assert programme.progress(enrolment).reward.status == "posted"  # type: ignore[union-attr]


def test_progress_of_a_mistyped_code_is_refused(cli: Cli, database: Database) -> None:
    refused(cli("referral", "progress", "ZZZZ-ZZZZ-Z"), "invalid_code_check")
