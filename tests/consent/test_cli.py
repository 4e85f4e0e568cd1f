"""``parrain consent``: declare from a file, check the policy, print a notice."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from parrain.campaigns.schemas import CampaignRead
from parrain.consent import service as consent
from parrain.consent.schemas import DeclarationCreate, NoticeLanguage
from parrain.db.session import Database
from parrain.kit.clock import FrozenClock
from tests.cli.conftest import Cli, refused
from tests.consent.declarations import clause_of_the_case, draft_campaign, honest, programme_items


@pytest.fixture
def campaign(database: Database, clock: FrozenClock) -> CampaignRead:
    return draft_campaign(database, clock, name="Cash Rewards UK")


def write(path: Path, declaration: DeclarationCreate | dict[str, Any] | str) -> Path:
    if isinstance(declaration, DeclarationCreate):
        declaration = declaration.model_dump(mode="json")
    path.write_text(
        declaration if isinstance(declaration, str) else json.dumps(declaration, indent=2),
        encoding="utf-8",
    )
    return path


def test_a_declaration_is_recorded_from_a_file_with_its_notices_and_findings(
    cli: Cli, database: Database, campaign: CampaignRead, tmp_path: Path
) -> None:
    path = write(tmp_path / "declaration.json", honest())

    result = cli("consent", "declare", "Cash Rewards UK", str(path))

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "Declared version 1 of the data use of 'Cash Rewards UK' (4 items)."
    declared = database.read(lambda s: consent.get_declaration(session=s, campaign_id=campaign.id))
    for summary in declared.notices:
        assert f"notice {summary.language.value}: sha256 {summary.sha256}" in result.stdout
    assert "Flesch reading ease" in result.stdout
    assert "Kandel-Moles" in result.stdout
    assert lines[-1] == "The policy finds no problem: this declaration lets the campaign launch."

    again = cli("consent", "declare", str(campaign.id), str(path))
    assert again.exit_code == 0, again.output
    assert again.stdout.startswith(
        "Unchanged: version 1 of the declaration of 'Cash Rewards UK' already says this."
    )


def test_a_declaration_the_policy_refuses_is_recorded_and_explained(
    cli: Cli, campaign: CampaignRead, tmp_path: Path
) -> None:
    path = write(tmp_path / "clause.json", clause_of_the_case())

    result = cli("consent", "declare", "Cash Rewards UK", str(path))

    assert result.exit_code == 0, result.output
    assert "The policy finds 7 problems; the campaign cannot launch or resume" in result.stdout
    assert "  - channel_any_media: 'any media' is not a channel" in result.stdout

    check = cli("consent", "check-policy", "Cash Rewards UK")
    assert check.exit_code == 1
    assert check.stdout.startswith("Declaration version 1:\nThe policy finds 7 problems")
    assert "  - special_category: 'user.biometric.voice' is a special category" in check.stdout


def test_check_policy_passes_a_good_declaration_and_names_a_missing_one(
    cli: Cli, database: Database, clock: FrozenClock, campaign: CampaignRead, tmp_path: Path
) -> None:
    missing = cli("consent", "check-policy", "Cash Rewards UK")
    assert missing.exit_code == 1
    assert "  - declaration_missing: the campaign has no data-use declaration" in missing.stdout

    cli("consent", "declare", "Cash Rewards UK", str(write(tmp_path / "d.json", honest())))
    passed = cli("consent", "check-policy", "Cash Rewards UK")
    assert passed.exit_code == 0, passed.output
    assert "The policy finds no problem" in passed.stdout


def test_a_notice_prints_exactly_the_stored_bytes(
    cli: Cli, database: Database, campaign: CampaignRead, tmp_path: Path
) -> None:
    cli("consent", "declare", "Cash Rewards UK", str(write(tmp_path / "1.json", honest())))
    programme = DeclarationCreate(items=programme_items())
    cli("consent", "declare", "Cash Rewards UK", str(write(tmp_path / "2.json", programme)))

    latest = cli("consent", "notice", "Cash Rewards UK", "--lang", "fr")
    first = cli("consent", "notice", "Cash Rewards UK", "--lang", "fr", "--version", "1")

    assert latest.exit_code == 0, latest.output
    assert first.exit_code == 0, first.output
    for result, version in ((latest, 2), (first, 1)):
        stored = database.read(
            lambda s, v=version: consent.get_notice(
                session=s, campaign_id=campaign.id, language=NoticeLanguage.FR, version=v
            )
        )
        assert result.stdout == stored.content
        assert hashlib.sha256(result.stdout.encode()).hexdigest() == stored.sha256
        assert result.stderr.startswith(f"version {version}, fr, sha256 {stored.sha256}, ")
        assert "Kandel-Moles" in result.stderr
    assert "dans nos publicités" in first.stdout
    assert "dans nos publicités" not in latest.stdout


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot be read"),
        ("{not json", "not valid JSON (line 1, column 2"),
        ({"items": []}, "items: List should have at least 1 item"),
        ({"items": "all of it"}, "items: Input should be a valid list"),
    ],
)
def test_a_bad_file_is_refused_with_exit_2(
    cli: Cli, campaign: CampaignRead, tmp_path: Path, content: Any, message: str
) -> None:
    path = tmp_path / "declaration.json"
    if content is not None:
        write(path, content)

    line = refused(cli("consent", "declare", "Cash Rewards UK", str(path)), "invalid_declaration")

    assert message in line
    assert str(path) in line


def test_unknown_keys_campaigns_and_languages_are_refused_with_exit_2(
    cli: Cli, campaign: CampaignRead, tmp_path: Path
) -> None:
    payload = honest().model_dump(mode="json")
    payload["items"][0]["data_use"] = "essential.service.everything"
    path = write(tmp_path / "declaration.json", payload)
    line = refused(cli("consent", "declare", "Cash Rewards UK", str(path)), "unknown_taxonomy_key")
    assert "'essential.service.everything' is not a data use" in line

    refused(cli("consent", "check-policy", "Nope"), "campaign_not_found")
    refused(cli("consent", "notice", "Cash Rewards UK", "--lang", "en"), "declaration_not_found")
    wrong = cli("consent", "notice", "Cash Rewards UK", "--lang", "de")
    assert wrong.exit_code == 2
    assert "'de' is not one of" in wrong.stderr
