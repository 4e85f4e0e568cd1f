"""``parrain consent verify-receipt`` and ``parrain consent public-key``: a receipt checked
offline, a tampered one refused with its code (exit 2), the key a regulator needs."""

from __future__ import annotations

from pathlib import Path

import pytest

from parrain.db.session import Database
from parrain.kit.clock import FrozenClock
from parrain.kit.crypto import SigningKey, encode_base64url, encode_public_key
from tests.cli.conftest import Cli, refused
from tests.consent import consents


@pytest.fixture
def receipt_file(database: Database, clock: FrozenClock, tmp_path: Path) -> Path:
    programme = consents.launch(database, clock)
    member_id = programme.enrol("ann").member_id
    consents.show(database, clock, member_id, programme.campaign.id)
    granted = consents.grant(database, clock, member_id, programme.campaign.id)
    assert granted.receipt is not None
    path = tmp_path / "receipt.json"
    path.write_text(granted.receipt.model_dump_json(indent=2), encoding="utf-8")
    return path


def test_a_receipt_verifies_with_the_given_public_key(cli: Cli, receipt_file: Path) -> None:
    public = encode_public_key(consents.SIGNING_KEY.public_key)
    result = cli("consent", "verify-receipt", str(receipt_file), "--public-key", public)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"The receipt verifies (key {consents.SIGNING_KEY.kid}).")
    assert "Example Marketplace Ltd" in result.stdout


def test_the_configured_key_verifies_and_is_printed_for_a_regulator(
    cli: Cli, receipt_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PARRAIN_CRYPTO_SIGNING_KEY", encode_base64url(consents.SIGNING_KEY.seed))
    result = cli("consent", "verify-receipt", str(receipt_file))
    assert result.exit_code == 0, result.output

    printed = cli("consent", "public-key")
    assert printed.exit_code == 0, printed.output
    assert printed.stdout.strip() == encode_public_key(consents.SIGNING_KEY.public_key)
    assert printed.stderr.strip() == f"kid {consents.SIGNING_KEY.kid}"


def test_a_tampered_or_foreign_receipt_is_refused_with_its_code(
    cli: Cli, receipt_file: Path, tmp_path: Path
) -> None:
    public = encode_public_key(consents.SIGNING_KEY.public_key)
    text = receipt_file.read_text(encoding="utf-8")
    edited = tmp_path / "edited.json"
    edited.write_text(text.replace('"social"', '"tv"', 1), encoding="utf-8")
    result = cli("consent", "verify-receipt", str(edited), "--public-key", public)
    refused(result, "receipt_claims_mismatch")

    other = encode_public_key(SigningKey(bytes(range(1, 33))).public_key)
    result = cli("consent", "verify-receipt", str(receipt_file), "--public-key", other)
    refused(result, "receipt_key_unknown")

    result = cli(
        "consent", "verify-receipt", str(tmp_path / "missing.json"), "--public-key", public
    )
    refused(result, "receipt_unreadable")


def test_without_a_signing_key_the_commands_say_so(
    cli: Cli, receipt_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PARRAIN_CRYPTO_SIGNING_KEY", raising=False)
    monkeypatch.setenv("PARRAIN_CRYPTO_ALLOW_DEVELOPMENT_KEYS", "false")
    refused(cli("consent", "public-key"), "keys_not_configured")
    refused(cli("consent", "verify-receipt", str(receipt_file)), "keys_not_configured")


def test_the_worker_round_expires_due_consents(
    cli: Cli, database: Database, clock: FrozenClock
) -> None:
    programme = consents.launch(database, clock)
    member_id = programme.enrol("ann").member_id
    consents.show(database, clock, member_id, programme.campaign.id)
    consents.grant(database, clock, member_id, programme.campaign.id)  # 183 days from START

    result = cli("worker", "run", "--once")  # the system clock: long after the expiry
    assert result.exit_code == 0, result.output
    assert "consents expired: 1" in result.stdout
    assert "consents expired: 0" in cli("worker", "run", "--once").stdout
