"""The member token: what the marketplace signs is accepted, everything else is refused with
its own error, and no refusal quotes the token."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from parrain.audit import service as audit
from parrain.config import (
    DEVELOPMENT_MEMBER_TOKEN_SECRET,
    CryptoSettings,
    MemberTokenSettings,
)
from parrain.db.session import Database
from parrain.kit.errors import InvalidKeyMaterial, KeysNotConfigured
from parrain.members.errors import (
    MemberTokenExpired,
    MemberTokenMalformed,
    MemberTokenNotYetValid,
    MemberTokenRefused,
    MemberTokenTampered,
    MemberTokenTooLongLived,
    MemberTokenWrongAudience,
)
from parrain.members.tokens import mint_member_token, verify_member_token
from tests.cli.conftest import ACTOR, Cli, refused

SECRET = b"s" * 32
NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _sign(
    claims: dict[str, Any], *, header: dict[str, Any] | None = None, secret: bytes = SECRET
) -> str:
    """A token built by hand, the way any JWT library would build it."""
    head = _b64(json.dumps(header or {"alg": "HS256", "typ": "JWT"}).encode())
    body = _b64(json.dumps(claims).encode())
    signature = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{_b64(signature)}"


def _claims(**changes: Any) -> dict[str, Any]:
    issued = int(NOW.timestamp())
    claims: dict[str, Any] = {
        "aud": "parrain-member",
        "sub": "user-ann",
        "market": "GB",
        "iat": issued,
        "exp": issued + 300,
        "nonce": "n0nce-of-sixteen-chars",
    }
    claims.update(changes)
    return {key: value for key, value in claims.items() if value is not None}


def test_a_minted_token_verifies_with_its_claims() -> None:
    token = mint_member_token(secret=SECRET, subject="user-ann", market="gb", now=NOW)
    claims = verify_member_token(token, secret=SECRET, now=NOW + timedelta(seconds=299))
    assert claims.subject.reveal() == "user-ann"
    assert claims.market == "GB"
    assert claims.issued_at == NOW
    assert claims.expires_at == NOW + timedelta(seconds=300)
    assert len(claims.nonce) >= 16
    other = mint_member_token(secret=SECRET, subject="user-ann", market="GB", now=NOW)
    assert verify_member_token(other, secret=SECRET, now=NOW).nonce != claims.nonce


def test_a_token_built_by_a_jwt_library_verifies() -> None:
    claims = verify_member_token(
        _sign(_claims(aud=["other", "parrain-member"])), secret=SECRET, now=NOW
    )
    assert claims.subject.reveal() == "user-ann"


def test_an_expired_token_is_refused_after_the_skew() -> None:
    token = mint_member_token(secret=SECRET, subject="u", market="FR", now=NOW, lifetime_seconds=60)
    verify_member_token(token, secret=SECRET, now=NOW + timedelta(seconds=119))
    with pytest.raises(MemberTokenExpired) as refused:
        verify_member_token(token, secret=SECRET, now=NOW + timedelta(seconds=120))
    assert refused.value.code == "member_token_expired"
    assert refused.value.status_code == 401


def test_a_token_from_the_future_is_not_yet_valid() -> None:
    token = mint_member_token(
        secret=SECRET, subject="u", market="GB", now=NOW + timedelta(minutes=2)
    )
    verify_member_token(token, secret=SECRET, now=NOW + timedelta(seconds=60))  # within skew
    with pytest.raises(MemberTokenNotYetValid):
        verify_member_token(token, secret=SECRET, now=NOW)
    not_before = _sign(_claims(nbf=int(NOW.timestamp()) + 120))
    with pytest.raises(MemberTokenNotYetValid):
        verify_member_token(not_before, secret=SECRET, now=NOW)


def test_a_tampered_token_is_refused() -> None:
    token = mint_member_token(secret=SECRET, subject="user-ann", market="GB", now=NOW)
    head, _body, signature = token.split(".")
    forged_body = _b64(json.dumps(_claims(sub="user-bob")).encode())
    with pytest.raises(MemberTokenTampered) as refused:
        verify_member_token(f"{head}.{forged_body}.{signature}", secret=SECRET, now=NOW)
    assert refused.value.code == "member_token_bad_signature"
    with pytest.raises(MemberTokenTampered):
        verify_member_token(token, secret=b"t" * 32, now=NOW)
    with pytest.raises(MemberTokenTampered):
        verify_member_token(_sign(_claims(), secret=b"x" * 32), secret=SECRET, now=NOW)


def test_the_wrong_audience_is_refused() -> None:
    with pytest.raises(MemberTokenWrongAudience):
        verify_member_token(_sign(_claims(aud="parrain-operator")), secret=SECRET, now=NOW)
    with pytest.raises(MemberTokenWrongAudience):
        verify_member_token(_sign(_claims(aud=None)), secret=SECRET, now=NOW)


def test_a_lifetime_over_ten_minutes_is_refused() -> None:
    issued = int(NOW.timestamp())
    with pytest.raises(MemberTokenTooLongLived):
        verify_member_token(_sign(_claims(exp=issued + 601)), secret=SECRET, now=NOW)
    verify_member_token(_sign(_claims(exp=issued + 600)), secret=SECRET, now=NOW)
    with pytest.raises(ValueError, match="1 to 600 seconds"):
        mint_member_token(secret=SECRET, subject="u", market="GB", now=NOW, lifetime_seconds=601)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "abc",
        "a.b",
        "a.b.c.d",
        "..",
        "x" * 3000,
        "!!!.???.###",
        _sign(_claims(), header={"alg": "none", "typ": "JWT"}),
        _sign(_claims(), header={"alg": "HS512"}),
        _sign(_claims(sub=None)),
        _sign(_claims(sub="")),
        _sign(_claims(sub="a\x00b")),
        _sign(_claims(market="ZZ")),
        _sign(_claims(market=None)),
        _sign(_claims(nonce=None)),
        _sign(_claims(nonce="short")),
        _sign(_claims(iat="yesterday")),
        _sign(_claims(exp=True)),
        _sign(_claims(exp=int(NOW.timestamp()) - 1)),
        _sign(["not", "an", "object"]),  # type: ignore[arg-type]
    ],
)
def test_malformed_tokens_are_refused(token: str) -> None:
    with pytest.raises(MemberTokenMalformed) as refused:
        verify_member_token(token, secret=SECRET, now=NOW)
    assert refused.value.code == "member_token_malformed"
    assert isinstance(refused.value, MemberTokenRefused)
    if len(token) > 10:
        assert token not in refused.value.message
        assert token not in str(refused.value.details)


def test_the_secret_comes_from_settings() -> None:
    crypto = CryptoSettings()
    with pytest.raises(KeysNotConfigured):
        MemberTokenSettings().token_secret_bytes(crypto)
    development = CryptoSettings(allow_development_keys=True)
    assert MemberTokenSettings().token_secret_bytes(development) == DEVELOPMENT_MEMBER_TOKEN_SECRET
    configured = MemberTokenSettings(token_secret=base64.b64encode(SECRET).decode())
    assert configured.token_secret_bytes(crypto) == SECRET
    with pytest.raises(InvalidKeyMaterial):
        MemberTokenSettings(token_secret=base64.b64encode(b"short").decode()).token_secret_bytes(
            crypto
        )


def test_the_cli_mints_a_working_link_and_audits_it(
    database_url: str, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PARRAIN_CRYPTO_ALLOW_DEVELOPMENT_KEYS", "true")
    minted = Cli(database_url)(
        "member", "token", "user-ann", "--market", "gb", "--base-url", "http://127.0.0.1:8000/"
    )
    assert minted.exit_code == 0, minted.output
    link = minted.stdout.strip().splitlines()[0]
    assert link.startswith("http://127.0.0.1:8000/m/enter?token=")
    claims = verify_member_token(
        link.split("token=", 1)[1],
        secret=DEVELOPMENT_MEMBER_TOKEN_SECRET,
        now=datetime.now(UTC),
    )
    assert claims.subject.reveal() == "user-ann"
    assert claims.market == "GB"
    assert claims.expires_at - claims.issued_at == timedelta(seconds=300)
    entries = database.read(lambda s: audit.list_entries(session=s))
    assert [(e.action, e.actor) for e in entries] == [("member.token_minted", ACTOR)]
    assert "user-ann" not in str(entries[0].details) + entries[0].subject
    refused(Cli(database_url)("member", "token", "user-ann", "--market", "ZZ"), "invalid_input")
    monkeypatch.delenv("PARRAIN_CRYPTO_ALLOW_DEVELOPMENT_KEYS")
    refused(
        Cli(database_url)("member", "token", "user-ann", "--market", "GB"), "keys_not_configured"
    )
