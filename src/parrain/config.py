"""Settings, grouped by section, read from the environment (prefix ``PARRAIN_``).

Each section is its own settings class with its own prefix, so the variable names read
naturally: ``PARRAIN_DATABASE_URL``, ``PARRAIN_SERVER_PORT``, ``PARRAIN_LOG_LEVEL``.
Secrets come only from the environment or a file, never from the database.
"""

from __future__ import annotations

import base64
import binascii
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from parrain.kit.crypto import (
    LookupKey,
    MasterKeyring,
    SigningKey,
    development_keyring,
    development_lookup_key,
    development_signing_key,
)
from parrain.kit.errors import InvalidKeyMaterial, KeysNotConfigured

#: The public development key of the pages' cookies: anyone can forge a session under it.
DEVELOPMENT_SESSION_KEY = b"parrain-development-session-key-not-secret"
#: The public development secret of member tokens: anyone can mint a token under it.
DEVELOPMENT_MEMBER_TOKEN_SECRET = b"parrain-development-member-token-secret-not-secret"


class DatabaseSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PARRAIN_DATABASE_", extra="ignore")

    url: str = Field(
        default="sqlite:///parrain.sqlite3",
        description=(
            "SQLAlchemy URL of the database. The embedded default is a SQLite file; production "
            "uses PostgreSQL, e.g. postgresql+psycopg://user@host:5432/parrain."
        ),
    )
    echo: bool = Field(default=False, description="Log every SQL statement (development only).")
    pool_size: int = Field(
        default=10, ge=1, le=200, description="PostgreSQL connections kept open per process."
    )
    pool_pre_ping: bool = Field(
        default=False,
        description=(
            "Test each pooled PostgreSQL connection with a round trip before use. Off by "
            "default: it costs a round trip per transaction; after a database restart the "
            "first transaction of each stale connection fails instead, and the pool renews."
        ),
    )
    pool_recycle_seconds: int = Field(
        default=1800,
        ge=-1,
        description="Replace PostgreSQL connections older than this (-1: never).",
    )
    busy_timeout_ms: int = Field(
        default=30_000,
        ge=0,
        description="How long a SQLite writer waits for the write lock before giving up.",
    )
    sqlite_synchronous: Literal["FULL", "NORMAL"] = Field(
        default="FULL",
        description=(
            "SQLite fsync policy. FULL survives power loss; NORMAL (WAL) survives a crashed "
            "process but may lose the last commits on power loss."
        ),
    )
    retry_attempts: int = Field(
        default=8,
        ge=1,
        le=50,
        description=(
            "How many times one transaction is tried when the database reports a "
            "serialization failure, a deadlock or a busy lock."
        ),
    )


class ServerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PARRAIN_SERVER_", extra="ignore")

    host: str = Field(default="127.0.0.1", description="Address the HTTP API listens on.")
    port: int = Field(default=8000, ge=1, le=65535, description="Port the HTTP API listens on.")
    max_body_bytes: int = Field(
        default=1_048_576, ge=1024, description="Largest request body accepted, in bytes."
    )


class LogSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PARRAIN_LOG_", extra="ignore")

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Lowest level written to the log."
    )
    json_lines: bool = Field(
        default=False, description="Write one JSON object per line instead of console text."
    )


class ReferralSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PARRAIN_REFERRALS_", extra="ignore")

    link_base_url: str = Field(
        default="http://127.0.0.1:8000",
        pattern=r"^https?://[^\s?#]+$",
        description=(
            "Public base URL of sponsorship links: a member's link is {base}/r/{code}. An "
            "http(s) URL without query or fragment."
        ),
    )
    device_cookie: str = Field(
        default="parrain_device",
        pattern=r"^[A-Za-z0-9_]{1,40}$",
        description=(
            "Name of the first-party cookie that tells one link visitor's device from another "
            "(a random value; only its keyed hash is stored)."
        ),
    )
    drain_in_api: bool = Field(
        default=True,
        description=(
            "Whether each API process drains, in a thread of its own, the events received "
            "for later (`Prefer: respond-async`, ADR 28). Turn it off where `parrain worker` "
            "processes on other hosts drain them instead."
        ),
    )
    drain_batch_size: int = Field(
        default=500,
        ge=1,
        le=5000,
        description="Queued events a drain applies per transaction.",
    )
    drain_poll_seconds: float = Field(
        default=1.0,
        ge=0.05,
        le=300.0,
        description=(
            "How often an idle drainer looks for events queued by other processes (its own "
            "process wakes it at once)."
        ),
    )
    parked_keep_days: int = Field(
        default=30,
        ge=1,
        le=3650,
        description=(
            "Days an event received for later and set aside after failing is kept for a "
            "person to mend and retry; then `parrain worker`'s hourly sweep discards it (its "
            "sealed personal data deleted, its outcome `ignored`)."
        ),
    )


class ConsentSettings(BaseSettings):
    """Limits the consent policy applies to data-use declarations (ADR 11), and the
    consent checks' in-process cache (ADR 25)."""

    model_config = SettingsConfigDict(env_prefix="PARRAIN_CONSENT_", extra="ignore")

    max_advertising_days: int = Field(
        default=183,
        ge=1,
        le=3650,
        description=(
            "Longest a marketing or advertising use (fideslang marketing.*) may be declared "
            "for, in days; a longer grant fails the launch gate. 183 days is about 6 months."
        ),
    )
    max_days: int = Field(
        default=365,
        ge=1,
        le=3650,
        description=(
            "Longest any other declared use may keep or show a member's data, in days. Records "
            "the law makes the marketplace keep (accounts) follow their own rule, not this one."
        ),
    )
    check_cache_members: int = Field(
        default=100_000,
        ge=0,
        le=10_000_000,
        description=(
            "Members whose consent rows each process keeps in memory for consent checks "
            "(least recently checked dropped first; about 1 KB each); 0 turns the cache off. "
            "The cache is exact: a change committed before a check is seen by it (ADR 25)."
        ),
    )
    check_changes_kept: int = Field(
        default=100_000,
        ge=1_000,
        description=(
            "Consent changes kept in the database's change log (the consent expiry job "
            "deletes older ones); a process whose cache is further behind clears it (ADR 25)."
        ),
    )


def _secret_text(*, inline: SecretStr, file: Path | None, variable: str) -> str | None:
    """The key text from the variable or the file it names; ``None`` when neither is set.

    Both set is refused: an operator who edits one and not the other must not be left
    guessing which key the process runs with.
    """
    if inline.get_secret_value().strip() and file is not None:
        raise InvalidKeyMaterial(f"set {variable} or {variable}_FILE, not both")
    if file is not None:
        try:
            text = file.read_text(encoding="utf-8")
        except OSError as error:
            raise InvalidKeyMaterial(
                f"{variable}_FILE {str(file)!r} cannot be read: {error.strerror or 'I/O error'}"
            ) from None
        except UnicodeDecodeError:
            raise InvalidKeyMaterial(f"{variable}_FILE {str(file)!r} is not UTF-8 text") from None
        if not text.strip():
            raise InvalidKeyMaterial(f"{variable}_FILE {str(file)!r} is empty")
        return text
    text = inline.get_secret_value()
    return text if text.strip() else None


class CryptoSettings(BaseSettings):
    """Keys for personal data (ADR 5). From the environment or a file, never the database."""

    model_config = SettingsConfigDict(env_prefix="PARRAIN_CRYPTO_", extra="ignore")

    master_keys: SecretStr = Field(
        default=SecretStr(""),
        description=(
            "Master keys that wrap each person's data key: 'kid:base64key' entries separated "
            "by commas, each key 32 random bytes in standard base64 (openssl rand -base64 32). "
            "Keep retired keys listed until every wrapped key has been rewrapped."
        ),
    )
    master_keys_file: Path | None = Field(
        default=None,
        description=(
            "File holding the master keys in the same format (entries may be one per line). "
            "Setting both this and PARRAIN_CRYPTO_MASTER_KEYS is refused."
        ),
    )
    current_kid: str | None = Field(
        default=None,
        max_length=32,
        description=(
            "Key id of the master key that wraps new data keys. May be left out when only "
            "one master key is configured."
        ),
    )
    lookup_key: SecretStr = Field(
        default=SecretStr(""),
        description=(
            "HMAC key of the lookup hashes (find a member by email): 32 random bytes in "
            "standard base64. Changing it invalidates every stored lookup hash."
        ),
    )
    lookup_key_file: Path | None = Field(
        default=None,
        description=(
            "File holding the lookup key. Setting both this and PARRAIN_CRYPTO_LOOKUP_KEY "
            "is refused."
        ),
    )
    signing_key: SecretStr = Field(
        default=SecretStr(""),
        description=(
            "Ed25519 key that signs consent receipts (ADR 13): the 32-byte seed in base64url, "
            "or an unencrypted PKCS#8 PEM (openssl genpkey -algorithm ed25519). Its public "
            "key (`parrain consent public-key`) is what verifiers need."
        ),
    )
    signing_key_file: Path | None = Field(
        default=None,
        description=(
            "File holding the receipt signing key. Setting both this and "
            "PARRAIN_CRYPTO_SIGNING_KEY is refused."
        ),
    )
    allow_development_keys: bool = Field(
        default=False,
        description=(
            "Use the public, fixed development keys when no key is configured. Only for "
            "development, tests and `parrain demo`: data under them is not protected."
        ),
    )

    def build_master_keyring(self) -> MasterKeyring:
        """The configured master keyring; development keys only when allowed and none is set.

        Raises :class:`~parrain.kit.errors.KeysNotConfigured` when nothing is configured and
        development keys are not allowed, so production cannot start on public keys.
        """
        text = _secret_text(
            inline=self.master_keys,
            file=self.master_keys_file,
            variable="PARRAIN_CRYPTO_MASTER_KEYS",
        )
        if text is None:
            if self.allow_development_keys:
                return development_keyring()
            raise KeysNotConfigured(
                "no master key is configured: set PARRAIN_CRYPTO_MASTER_KEYS or "
                "PARRAIN_CRYPTO_MASTER_KEYS_FILE (development only: "
                "PARRAIN_CRYPTO_ALLOW_DEVELOPMENT_KEYS=true)"
            )
        return MasterKeyring.parse(text, current_kid=self.current_kid)

    def build_lookup_key(self) -> LookupKey:
        """The configured lookup key; the development one only when allowed and none is set."""
        text = _secret_text(
            inline=self.lookup_key,
            file=self.lookup_key_file,
            variable="PARRAIN_CRYPTO_LOOKUP_KEY",
        )
        if text is None:
            if self.allow_development_keys:
                return development_lookup_key()
            raise KeysNotConfigured(
                "no lookup key is configured: set PARRAIN_CRYPTO_LOOKUP_KEY or "
                "PARRAIN_CRYPTO_LOOKUP_KEY_FILE (development only: "
                "PARRAIN_CRYPTO_ALLOW_DEVELOPMENT_KEYS=true)"
            )
        return LookupKey.parse(text)

    def build_signing_key(self) -> SigningKey:
        """The configured receipt signing key; the public development key only when allowed
        and none is set (its receipts prove nothing, and verifiers say so)."""
        text = _secret_text(
            inline=self.signing_key,
            file=self.signing_key_file,
            variable="PARRAIN_CRYPTO_SIGNING_KEY",
        )
        if text is None:
            if self.allow_development_keys:
                return development_signing_key()
            raise KeysNotConfigured(
                "no receipt signing key is configured: set PARRAIN_CRYPTO_SIGNING_KEY or "
                "PARRAIN_CRYPTO_SIGNING_KEY_FILE (development only: "
                "PARRAIN_CRYPTO_ALLOW_DEVELOPMENT_KEYS=true)"
            )
        return SigningKey.parse(text)


class WebhookSettings(BaseSettings):
    """Where the outbox's messages (a withdrawn consent's takedown...) are delivered."""

    model_config = SettingsConfigDict(env_prefix="PARRAIN_WEBHOOKS_", extra="ignore")

    url: str | None = Field(
        default=None,
        pattern=r"^https?://[^\s#]+$",
        description=(
            "The integration's webhook endpoint (http or https). Unset: messages wait in the "
            "outbox, nothing is lost, and `parrain worker run` says how many are waiting."
        ),
    )
    secret: SecretStr | None = Field(
        default=None,
        min_length=32,
        description=(
            "Shared secret of the HMAC-SHA256 signature (X-Parrain-Signature); at least 32 "
            "characters. Required when url is set."
        ),
    )
    timeout_seconds: float = Field(
        default=5.0, gt=0, le=60, description="How long one delivery attempt may take."
    )
    retry_base_seconds: int = Field(
        default=10, ge=1, le=3600, description="Wait after a first failure; doubles each time."
    )
    retry_max_seconds: int = Field(
        default=3600, ge=1, le=86400, description="The longest wait between two attempts."
    )

    @model_validator(mode="after")
    def _secret_with_url(self) -> WebhookSettings:
        if self.url is not None and self.secret is None:
            raise ValueError("PARRAIN_WEBHOOKS_SECRET is required with PARRAIN_WEBHOOKS_URL")
        return self


class PayoutSettings(BaseSettings):
    """The payout worker: where PayPal is, and what is worth a payout (ADR 18)."""

    model_config = SettingsConfigDict(env_prefix="PARRAIN_PAYOUTS_", extra="ignore")

    paypal_base_url: str | None = Field(
        default=None,
        pattern=r"^https?://[^\s#]+$",
        description=(
            "PayPal's API root (live, sandbox, or `parrain "
            "fake-paypal`'s). Unset: the payout job does nothing and says so."
        ),
    )
    paypal_client_id: SecretStr | None = Field(
        default=None, description="OAuth2 client id of the PayPal app (kept out of logs too)."
    )
    paypal_client_secret: SecretStr | None = Field(
        default=None, description="OAuth2 client secret of the PayPal app."
    )
    paypal_webhook_id: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9]+$",
        max_length=50,
        description=(
            "The id PayPal gave the webhook that calls `POST /v1/paypal/webhooks`: every "
            "notification is verified with PayPal under it. Unset: notifications are refused "
            "(503) and PayPal sends them again later."
        ),
    )
    min_amount_minor: int = Field(
        default=100,
        ge=1,
        description="A member's cash in a currency is paid once it reaches this (minor units).",
    )
    max_batch_items: int = Field(
        default=15_000, ge=1, le=15_000, description="Items per PayPal batch (PayPal: 15,000)."
    )
    lease_seconds: float = Field(
        default=300.0,
        gt=0,
        le=86_400,
        description=(
            "How long a worker holds a batch it sends or polls; a crashed worker's batches "
            "are taken over once it has passed."
        ),
    )
    request_timeout_seconds: float = Field(
        default=30.0, gt=0, le=300, description="How long one request to PayPal may take."
    )


class WebSettings(BaseSettings):
    """The pages: cookies of member and operator sessions."""

    model_config = SettingsConfigDict(env_prefix="PARRAIN_WEB_", extra="ignore")

    session_key: SecretStr = Field(
        default=SecretStr(""),
        description=(
            "HMAC key that signs session cookies of the pages: at least 32 random bytes in "
            "standard base64 (openssl rand -base64 32). Changing it signs every member out."
        ),
    )
    session_key_file: Path | None = Field(
        default=None,
        description=(
            "File holding the session key. Setting both this and PARRAIN_WEB_SESSION_KEY is "
            "refused."
        ),
    )
    cookie_secure: bool = Field(
        default=True,
        description=(
            "Mark cookies Secure (sent over HTTPS only). Turn off only to serve the pages over "
            "plain HTTP on a loopback address (the demo and the tests do)."
        ),
    )
    link_rate_per_minute: int = Field(
        default=120,
        ge=1,
        description=(
            "Visits of sponsorship links (/r/{code}) one client address may make per minute, "
            "on average, per API process."
        ),
    )
    link_burst: int = Field(
        default=30, ge=1, description="Link visits one client address may make at once."
    )
    sign_in_rate_per_minute: int = Field(
        default=10,
        ge=1,
        description=(
            "Operator sign-in attempts one client address may make per minute, on average, "
            "per API process (each account also locks after repeated failures)."
        ),
    )
    sign_in_burst: int = Field(
        default=5, ge=1, description="Sign-in attempts one client address may make at once."
    )
    member_enter_rate_per_minute: int = Field(
        default=30,
        ge=1,
        description=(
            "Visits of the members' way in (/m/enter?token=…) one client address may make per "
            "minute, on average: a person arrives from the app once in a while; many tokens "
            "tried from one address are someone guessing."
        ),
    )
    member_enter_burst: int = Field(
        default=10, ge=1, description="Visits of /m/enter one client address may make at once."
    )

    def session_key_bytes(self, crypto: CryptoSettings) -> bytes:
        """The configured session key; a fixed development key only when ``crypto`` allows
        development keys and none is set."""
        text = _secret_text(
            inline=self.session_key, file=self.session_key_file, variable="PARRAIN_WEB_SESSION_KEY"
        )
        if text is None:
            if crypto.allow_development_keys:
                return DEVELOPMENT_SESSION_KEY
            raise KeysNotConfigured(
                "no session key is configured: set PARRAIN_WEB_SESSION_KEY or "
                "PARRAIN_WEB_SESSION_KEY_FILE (development only: "
                "PARRAIN_CRYPTO_ALLOW_DEVELOPMENT_KEYS=true)"
            )
        try:
            key = base64.b64decode(text.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise InvalidKeyMaterial("PARRAIN_WEB_SESSION_KEY is not standard base64") from None
        if len(key) < 32:
            raise InvalidKeyMaterial("PARRAIN_WEB_SESSION_KEY must hold at least 32 bytes")
        return key


class ConsoleSettings(BaseSettings):
    """The operator console: how long a sign-in lasts and when repeated failures lock an
    account (ADR 20)."""

    model_config = SettingsConfigDict(env_prefix="PARRAIN_CONSOLE_", extra="ignore")

    session_hours: int = Field(
        default=12,
        ge=1,
        le=24 * 30,
        description=(
            "Longest an operator stays signed in, in hours, however active: then they sign in "
            "again. The session cookie expires at the same time."
        ),
    )
    idle_minutes: int = Field(
        default=30,
        ge=1,
        le=24 * 60,
        description=(
            "An operator who has opened no console page for this many minutes is signed out."
        ),
    )
    lockout_threshold: int = Field(
        default=5,
        ge=1,
        le=100,
        description=(
            "Consecutive wrong passwords after which an account is locked. A successful "
            "sign-in resets the count."
        ),
    )
    lockout_minutes: int = Field(
        default=15,
        ge=1,
        le=24 * 60,
        description=(
            "How long a locked account refuses every sign-in, even with the right password, "
            "in minutes; then it gets a fresh count of attempts."
        ),
    )


class MemberTokenSettings(BaseSettings):
    """The member token the marketplace's backend signs to open a member's pages (ADR 21),
    and the session those pages then keep."""

    model_config = SettingsConfigDict(env_prefix="PARRAIN_MEMBERS_", extra="ignore")

    token_secret: SecretStr = Field(
        default=SecretStr(""),
        description=(
            "HMAC-SHA256 secret shared with the marketplace's backend, which signs member "
            "tokens with it: at least 32 random bytes in standard base64 (openssl rand "
            "-base64 32). Changing it refuses every token signed with the old one."
        ),
    )
    token_secret_file: Path | None = Field(
        default=None,
        description=(
            "File holding the member token secret. Setting both this and "
            "PARRAIN_MEMBERS_TOKEN_SECRET is refused."
        ),
    )
    token_max_lifetime_seconds: int = Field(
        default=600,
        ge=30,
        le=600,
        description=(
            "The longest lifetime (exp - iat) of a member token accepted, in seconds: at "
            "most ten minutes."
        ),
    )
    token_clock_skew_seconds: int = Field(
        default=60,
        ge=0,
        le=60,
        description=(
            "How far the marketplace's clock may be from ours when checking a token's "
            "iat/nbf/exp, in seconds (at most 60)."
        ),
    )
    session_seconds: int = Field(
        default=3600,
        ge=300,
        le=4 * 3600,
        description=(
            "How long a member's page session lasts after they entered with a token, in "
            "seconds (about an hour); then they open the pages from the app again."
        ),
    )

    def token_secret_bytes(self, crypto: CryptoSettings) -> bytes:
        """The configured token secret; a fixed development secret only when ``crypto``
        allows development keys and none is set."""
        text = _secret_text(
            inline=self.token_secret,
            file=self.token_secret_file,
            variable="PARRAIN_MEMBERS_TOKEN_SECRET",
        )
        if text is None:
            if crypto.allow_development_keys:
                return DEVELOPMENT_MEMBER_TOKEN_SECRET
            raise KeysNotConfigured(
                "no member token secret is configured: set PARRAIN_MEMBERS_TOKEN_SECRET or "
                "PARRAIN_MEMBERS_TOKEN_SECRET_FILE (development only: "
                "PARRAIN_CRYPTO_ALLOW_DEVELOPMENT_KEYS=true)"
            )
        try:
            secret = base64.b64decode(text.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise InvalidKeyMaterial(
                "PARRAIN_MEMBERS_TOKEN_SECRET is not standard base64"
            ) from None
        if len(secret) < 32:
            raise InvalidKeyMaterial("PARRAIN_MEMBERS_TOKEN_SECRET must hold at least 32 bytes")
        return secret


class Settings(BaseSettings):
    """All of parrain's settings. Build with ``get_settings()`` or explicitly in tests."""

    model_config = SettingsConfigDict(env_prefix="PARRAIN_", extra="ignore")

    database: DatabaseSettings = Field(
        default_factory=DatabaseSettings, description="Where the data lives."
    )
    server: ServerSettings = Field(default_factory=ServerSettings, description="The HTTP API.")
    log: LogSettings = Field(default_factory=LogSettings, description="Logging.")
    referrals: ReferralSettings = Field(
        default_factory=ReferralSettings, description="Sponsorship links and events."
    )
    crypto: CryptoSettings = Field(
        default_factory=CryptoSettings,
        description="Keys that encrypt and look up personal data.",
    )
    consent: ConsentSettings = Field(
        default_factory=ConsentSettings,
        description="Limits of the consent policy (data-use declarations).",
    )
    webhooks: WebhookSettings = Field(
        default_factory=WebhookSettings,
        description="Webhook delivery of the outbox's messages to integrations.",
    )
    payouts: PayoutSettings = Field(
        default_factory=PayoutSettings,
        description="Paying members' cash to PayPal (the payout worker).",
    )
    web: WebSettings = Field(
        default_factory=WebSettings, description="The member pages and the operator console."
    )
    members: MemberTokenSettings = Field(
        default_factory=MemberTokenSettings,
        description="The member token the marketplace signs, and the member pages' session.",
    )
    console: ConsoleSettings = Field(
        default_factory=ConsoleSettings,
        description="Operator sign-in: session lifetime, idle timeout and lockout.",
    )
    actor: str = Field(
        default="operator:cli",
        description="Who the audit log names for actions taken from this process's CLI.",
        max_length=120,
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
