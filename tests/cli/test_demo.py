from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from parrain.audit import service as audit
from parrain.campaigns import service as campaigns
from parrain.campaigns.schemas import CampaignRead, CampaignStatus
from parrain.cli.app import app
from parrain.cli.commands import demo as demo_commands
from parrain.cli.commands.demo import DEMO_MEMBERS, DemoSeed, seed_demo, seed_everything
from parrain.config import CryptoSettings, DatabaseSettings, Settings
from parrain.consent import service as consent
from parrain.coupons import service as coupons
from parrain.db import migrate
from parrain.db.session import Database
from parrain.kit.clock import FrozenClock, SystemClock
from parrain.kit.money import Money
from parrain.members import service as members
from parrain.members.service import MemberKeys
from parrain.operators import service as operators
from parrain.operators.roles import Role
from parrain.operators.schemas import SessionKind, SignInPolicy
from parrain.referrals import service as referrals
from tests.cli.conftest import Cli
from tests.web.console.helpers import csrf_of
from tests.web.member.pages import text_of

NAMES = {"Cash Rewards UK", "Cash Rewards France"}
PRIZE = 5000  # 20.00 cash + 30.00 coupons
#: What each seeded member's progress shows: (friends counted, the prize's state).
STAGES = {
    "demo-member-ann": (0, None),
    "demo-member-ben": (2, None),
    "demo-member-cleo": (5, "held"),
    "demo-member-dan": (5, "posted"),
}
_TOKEN = re.compile(r"Admin API token \(24 hours\): (\S+)")
_MEMBER_LINK = re.compile(
    r"Member pages of (the demo member|a newcomer|demo-member-\w+) \(10 minutes\): (\S+)"
)
_CONSOLE = re.compile(r"Console \((\w+)\): (\S+) username (\S+) password (\S+)")
_INVITATION = re.compile(r"A friend's invitation \(demo-member-ben's link\): (\S+/r/\w+)")
_PAYPAL = re.compile(r"PayPal fake: +(http://127\.0\.0\.1:\d+) ")


def _demo_database(path: Path) -> Iterator[Database]:
    database = Database(DatabaseSettings(url=f"sqlite:///{path}"))
    yield database
    database.dispose()


def _by_name(database: Database) -> dict[str, CampaignRead]:
    return {c.name: c for c in database.read(lambda s: campaigns.list_campaigns(session=s))}


def _assert_seeded(found: dict[str, CampaignRead], *, with_members: bool = False) -> None:
    assert set(found) == NAMES
    uk, france = found["Cash Rewards UK"], found["Cash Rewards France"]
    assert (uk.market, uk.currency, uk.languages) == ("GB", "GBP", ["en"])
    assert (france.market, france.currency, france.languages) == ("FR", "EUR", ["fr", "en"])
    for campaign in (uk, france):
        assert campaign.status is CampaignStatus.LIVE
        assert (campaign.friends_needed, campaign.enrolment_window_hours) == (5, 24)
        assert (campaign.reward_cash_minor, campaign.reward_coupon_minor) == (2000, 3000)
        assert campaign.holding_days == 7
        assert campaign.budget.funded_minor == 500_000
    # The members' two prizes (one held, one posted) came out of the UK budget.
    uk_left = 500_000 - 2 * PRIZE if with_members else 500_000
    assert uk.budget.available_minor == uk_left
    assert france.budget.available_minor == 500_000
    assert france.budget.available_display == Money(500_000, "EUR").format("fr_FR")
    assert france.budget.available_display == "5\u202f000,00\xa0€"


def _seeded_column(output: str, marker: str) -> dict[str, str]:
    """Each table row holding ``marker``: its first cell and its last (created or found)."""
    rows = [line.split("│") for line in output.splitlines() if marker in line and "│" in line]
    return {cells[1].strip(): cells[-2].strip() for cells in rows}


def _stages(database: Database) -> dict[str, tuple[int, str | None]]:
    """Each demo member's friends counted and prize state, read through the services."""
    keys = MemberKeys.from_settings(CryptoSettings(allow_development_keys=True))

    def work(session: Session) -> dict[str, tuple[int, str | None]]:
        uk = campaigns.find_by_name(session=session, name="Cash Rewards UK")
        assert uk is not None
        out: dict[str, tuple[int, str | None]] = {}
        for spec in DEMO_MEMBERS:
            member = members.find_by_marketplace_user(
                session=session,
                market="GB",
                marketplace_user_id=spec.marketplace_user_id,
                keys=keys,
            )
            assert member is not None, spec.name
            enrolment = referrals.find_enrolment_of(
                session=session, campaign_id=uk.id, member_id=member.id, link_base_url="http://x"
            )
            assert enrolment is not None, spec.name
            progress = referrals.progress(
                session=session,
                enrolment_id=enrolment.id,
                clock=FrozenClock(enrolment.enrolled_at),
                link_base_url="http://x",
            )
            out[spec.marketplace_user_id] = (
                progress.friends_counted,
                None if progress.reward is None else progress.reward.status,
            )
        return out

    return database.read(work)


def _coupon_count(database: Database, marketplace_user_id: str) -> int:
    keys = MemberKeys.from_settings(CryptoSettings(allow_development_keys=True))

    def work(session: Session) -> int:
        member = members.find_by_marketplace_user(
            session=session, market="GB", marketplace_user_id=marketplace_user_id, keys=keys
        )
        assert member is not None
        return len(coupons.of_member(session=session, member_id=member.id))

    return database.read(work)


def test_demo_seeds_everything_once(tmp_path: Path) -> None:
    path = tmp_path / "demo.sqlite3"
    runner = CliRunner()
    first = runner.invoke(app, ["demo", "--database", str(path), "--no-serve"])
    assert first.exit_code == 0, first.output
    assert _seeded_column(first.stdout, "Cash Rewards") == {
        "Cash Rewards UK": "created",
        "Cash Rewards France": "created",
    }
    assert _seeded_column(first.stdout, "demo-member-") == dict.fromkeys(STAGES, "created")
    assert "http://127.0.0.1:8000/v1/campaigns" in first.stdout
    assert "http://127.0.0.1:8000/docs" in first.stdout
    assert "Sponsorship link of the demo member: http://127.0.0.1:8000/r/" in first.stdout
    assert _INVITATION.search(first.stdout)
    assert "Events API key (shown once): prn_" in first.stdout
    assert "PayPal fake" not in first.stdout  # nothing is served
    consoles = {role: rest for role, *rest in _CONSOLE.findall(first.stdout)}
    assert consoles == {
        "admin": ["http://127.0.0.1:8000/console", "admin", "parrain-demo-console-2026"],
        "auditor": [
            "http://127.0.0.1:8000/console/audit",
            "auditor",
            "parrain-demo-regulator-2026",
        ],
    }
    assert "demo's made-up data only" in first.stdout
    links = dict(_MEMBER_LINK.findall(first.stdout))
    assert set(links) == {
        "the demo member",
        "demo-member-ben",
        "demo-member-cleo",
        "demo-member-dan",
        "a newcomer",
    }
    first_token = _TOKEN.search(first.stdout)
    assert first_token is not None

    for database in _demo_database(path):
        _assert_seeded(_by_name(database), with_members=True)
        assert _stages(database) == STAGES
        assert _coupon_count(database, "demo-member-dan") == 1
        found = database.read(lambda s: operators.list_operators(session=s))
        assert {(o.username, o.role) for o in found} == {
            ("admin", Role.ADMIN),
            ("auditor", Role.AUDITOR),
        }
        entries_after_first = database.read(lambda s: audit.list_entries(session=s, limit=1000))

    second = runner.invoke(app, ["demo", "--database", str(path), "--no-serve", "--port", "8123"])
    assert second.exit_code == 0, second.output
    assert _seeded_column(second.stdout, "Cash Rewards") == {
        "Cash Rewards UK": "found",
        "Cash Rewards France": "found",
    }
    assert _seeded_column(second.stdout, "demo-member-") == dict.fromkeys(STAGES, "found")
    assert "http://127.0.0.1:8123/docs" in second.stdout
    assert "Sponsorship link of the demo member: http://127.0.0.1:8123/r/" in second.stdout
    assert "made by the first run" in second.stdout
    second_token = _TOKEN.search(second.stdout)
    assert second_token is not None
    assert second_token.group(1) != first_token.group(1)  # a new one each run

    for database in _demo_database(path):
        _assert_seeded(_by_name(database), with_members=True)
        assert _stages(database) == STAGES
        assert _coupon_count(database, "demo-member-dan") == 1
        assert len(database.read(lambda s: operators.list_operators(session=s))) == 2
        entries = database.read(lambda s: audit.list_entries(session=s, limit=1000))
        # The second run added its API token, and nothing else.
        assert entries[: len(entries_after_first)] == entries_after_first
        assert [e.action for e in entries[len(entries_after_first) :]] == ["operator.token_issued"]
        assert database.read(lambda s: audit.verify_chain(session=s)).intact


def _settings() -> Settings:
    return Settings(crypto=CryptoSettings(allow_development_keys=True))


def _seed(database: Database, clock: FrozenClock) -> DemoSeed:
    return seed_everything(
        database=database, settings=_settings(), clock=clock, actor="system:demo"
    )


def _consent_events(database: Database, member_id: UUID) -> list[tuple[str, str]]:
    def work(session: Session) -> list[tuple[str, str]]:
        events = consent.history(session=session, member_id=member_id)
        assert {(e.data_category, e.data_use) for e in events} <= {
            ("user.content.self_image", "marketing.advertising.first_party")
        }
        return [(e.action, e.channel) for e in events]

    return database.read(work)


def test_seeding_everything_twice_adds_only_a_token(database: Database, clock: FrozenClock) -> None:
    first = _seed(database, clock)
    assert [item.created for item in first.campaigns] == [True, True]
    assert [item.created for item in first.operators] == [True, True]
    assert [item.created for item in first.members] == [True] * len(DEMO_MEMBERS)
    assert first.api_key is not None
    assert _stages(database) == STAGES
    by_name = {item.spec.name: item for item in first.members}
    held = by_name["cleo"].progress.reward
    assert held is not None
    assert held.release_at is not None
    assert held.release_at > clock.now()  # still held at start-up
    assert by_name["ben"].enrolment.deadline_at > clock.now()  # ben still has time
    assert by_name["ann"].enrolment.enrolled_at == clock.now()
    # cleo said yes to the optional use, after its notice was shown; nobody else was asked.
    assert _consent_events(database, by_name["cleo"].enrolment.member_id) == [
        ("shown", "app"),
        ("shown", "web"),
        ("granted", "app"),
    ]
    assert _consent_events(database, by_name["dan"].enrolment.member_id) == []
    entries_after_first = database.read(lambda s: audit.list_entries(session=s, limit=1000))

    # The admin's token opens the management API as the admin, for a day.
    policy = SignInPolicy.from_settings(_settings().console)
    resumed = database.read(
        lambda s: operators.resume_session(
            session=s,
            token=first.admin_token,
            policy=policy,
            clock=clock,
            touch=False,
            kind=SessionKind.API,
        )
    )
    assert resumed is not None
    assert resumed.operator.role is Role.ADMIN
    assert resumed.session.expires_at - clock.now() == demo_commands.DEMO_TOKEN_LIFETIME

    clock.advance(demo_commands.DEMO_TOKEN_LIFETIME / 24)
    second = _seed(database, clock)
    assert [item.created for item in second.campaigns] == [False, False]
    assert [item.created for item in second.operators] == [False, False]
    assert [item.created for item in second.members] == [False] * len(DEMO_MEMBERS)
    assert second.api_key is None
    assert second.admin_token != first.admin_token
    assert _stages(database) == STAGES
    assert len(_consent_events(database, by_name["cleo"].enrolment.member_id)) == 3
    _assert_seeded(_by_name(database), with_members=True)
    entries = database.read(lambda s: audit.list_entries(session=s, limit=1000))
    assert entries[: len(entries_after_first)] == entries_after_first
    assert [e.action for e in entries[len(entries_after_first) :]] == ["operator.token_issued"]


def test_a_demo_file_of_an_older_demo_is_refused_with_a_clear_error(
    tmp_path: Path, clock: FrozenClock
) -> None:
    """An older ``parrain demo`` started its campaigns when it first ran: too late for the
    members' stories. The command says so and writes none of them."""
    path = tmp_path / "old.sqlite3"
    for database in _demo_database(path):
        migrate.upgrade(database.engine)
        database.run(lambda s: seed_demo(session=s, clock=SystemClock(), actor="system:demo"))
    result = CliRunner().invoke(app, ["demo", "--database", str(path), "--no-serve"])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error [demo_file_outdated]: 'Cash Rewards UK' starts too")
    assert "Traceback" not in result.output
    database = Database(DatabaseSettings(url=f"sqlite:///{path}"))
    try:
        assert database.read(lambda s: operators.list_operators(session=s)) == []
        uk = _by_name(database)["Cash Rewards UK"]
        funnel = database.read(lambda s: referrals.funnel(session=s, campaign_id=uk.id))
        assert funnel.enrolments == 0
    finally:
        database.dispose()


def test_seed_demo_in_one_transaction_is_idempotent(database: Database, clock: FrozenClock) -> None:
    first = database.run(lambda s: seed_demo(session=s, clock=clock, actor="system:demo"))
    assert [(item.campaign.name, item.created) for item in first] == [
        ("Cash Rewards UK", True),
        ("Cash Rewards France", True),
    ]
    _assert_seeded(_by_name(database))
    assert {c.launched_at for c in _by_name(database).values()} == {clock.now()}

    second = database.run(lambda s: seed_demo(session=s, clock=clock, actor="system:demo"))
    assert [item.created for item in second] == [False, False]
    _assert_seeded(_by_name(database))


def test_seed_demo_leaves_an_ended_campaign_ended(database: Database, clock: FrozenClock) -> None:
    database.run(lambda s: seed_demo(session=s, clock=clock, actor="system:demo"))
    uk = _by_name(database)["Cash Rewards UK"]
    database.run(
        lambda s: campaigns.end(session=s, campaign_id=uk.id, actor="operator:x", clock=clock)
    )
    again = database.run(lambda s: seed_demo(session=s, clock=clock, actor="system:demo"))
    assert [item.campaign.status for item in again] == [CampaignStatus.ENDED, CampaignStatus.LIVE]
    assert _by_name(database)["Cash Rewards UK"].budget.funded_minor == 500_000


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_for(
    what: str, check: Any, process: subprocess.Popen[bytes], log: Path, seconds: float
) -> Any:
    """Poll ``check()`` until it returns something true (and return it), the process exits
    or ``seconds`` pass."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"parrain demo exited with {process.returncode}:\n{log.read_text()}")
        try:
            found = check()
        except httpx.TransportError:
            found = None
        if found:
            return found
        time.sleep(0.1)
    pytest.fail(f"{what} did not happen within {seconds} s:\n{log.read_text()}")


def _healthy(base: str) -> bool:
    return httpx.get(f"{base}/health", timeout=5).status_code == 200


def _member_page(link: str) -> str:
    with httpx.Client(follow_redirects=True, timeout=20) as browser:
        page = browser.get(link)
        assert page.status_code == 200, page.text
        return text_of(page)


def _sign_in(base: str, username: str, password: str, page: str) -> httpx.Response:
    with httpx.Client(base_url=base, timeout=20) as browser:
        form = browser.get("/console/sign-in")
        assert form.status_code == 200, form.text
        signed_in = browser.post(
            "/console/sign-in",
            data={"username": username, "password": password, "csrf_token": csrf_of(form)},
        )
        assert signed_in.status_code == 303, signed_in.text
        assert signed_in.headers["location"] == "/console"
        return browser.get(page)


def test_the_demo_serves_everything_in_one_process(tmp_path: Path) -> None:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "demo.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARRAIN_")}
    env["PYTHONUNBUFFERED"] = "1"  # the printed links are read while it runs
    with log.open("wb") as output:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "parrain.cli.app",
                "demo",
                "--database",
                str(tmp_path / "d.sqlite3"),
                "--port",
                str(port),
                "--worker-interval",
                "0.5",
                "--paypal-settle-seconds",
                "0.5",
            ],
            cwd=tmp_path,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            # Generous deadlines: it takes about 5 s, but the test machines are shared.
            _wait_for("/health", lambda: _healthy(base), process, log, 90)
            printed = log.read_text()
            token = _TOKEN.search(printed)
            assert token is not None, printed
            paypal = _PAYPAL.search(printed)
            assert paypal is not None, printed
            links = dict(_MEMBER_LINK.findall(printed))

            assert httpx.get(f"{base}/v1/campaigns", timeout=20).status_code == 401
            listed = httpx.get(
                f"{base}/v1/campaigns",
                headers={"Authorization": f"Bearer {token.group(1)}"},
                timeout=20,
            )
            assert listed.status_code == 200, listed.text
            campaigns_served = {c["name"]: c for c in listed.json()}
            assert set(campaigns_served) == NAMES
            assert {c["status"] for c in campaigns_served.values()} == {"live"}
            assert httpx.get(f"{base}/docs", timeout=20).status_code == 200
            # The fake answers PayPal's token endpoint (a wrong secret is refused).
            refused = httpx.post(
                f"{paypal.group(1)}/v1/oauth2/token",
                auth=("fake-client-id", "not the secret"),
                data={"grant_type": "client_credentials"},
                timeout=20,
            )
            assert refused.status_code == 401

            consoles = {role: rest for role, *rest in _CONSOLE.findall(printed)}
            _url, admin, admin_password = consoles["admin"]
            campaigns_page = _sign_in(base, admin, admin_password, "/console")
            assert campaigns_page.status_code == 200
            assert "Cash Rewards UK" in text_of(campaigns_page)
            _url, auditor, auditor_password = consoles["auditor"]
            audit_page = _sign_in(base, auditor, auditor_password, "/console/audit")
            assert audit_page.status_code == 200, audit_page.text

            assert re.search(r"\b2 of 5 friends so far", _member_page(links["demo-member-ben"]))
            assert "Held until" in _member_page(links["demo-member-cleo"])
            invitation = _INVITATION.search(printed)
            assert invitation is not None
            assert httpx.get(invitation.group(1), timeout=20).status_code == 200

            # The worker pays dan's posted cash to the fake, and their page says so.
            paid = _wait_for(
                "dan's payout",
                lambda: (
                    "Paid: the cash was sent to your PayPal account"
                    in _member_page(links["demo-member-dan"])
                ),
                process,
                log,
                60,
            )
            assert paid
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                returncode = process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                pytest.fail(f"SIGTERM did not stop parrain demo:\n{log.read_text()}")
    served_log = log.read_text()
    assert returncode == 0, served_log
    assert "parrain demo stopped." in served_log
    assert "Traceback" not in served_log
    assert "worker: payouts sent in batches: 1" in served_log
    # no access log: it would name each client's IP address, personal data
    assert "GET /v1/campaigns" not in served_log
    assert "127.0.0.1:" not in served_log.replace(base, "").replace(paypal.group(1), "")


def test_serve_hands_the_configured_database_and_address_to_the_api(
    cli: Cli, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    served: dict[str, Any] = {}

    def record(*, settings: Settings, database: Database, host: str, port: int) -> None:
        served.update(settings=settings, database=database, host=host, port=port)

    monkeypatch.setattr(demo_commands, "run_api", record)
    result = cli("serve", "--port", "9001")
    assert result.exit_code == 0, result.output
    assert (served["host"], served["port"]) == ("127.0.0.1", 9001)
    assert served["settings"].database.url == database_url
    assert (served["settings"].server.host, served["settings"].server.port) == ("127.0.0.1", 9001)
    assert served["database"].dialect == make_url(database_url).get_backend_name()
    assert "on http://127.0.0.1:9001/" in result.stdout
