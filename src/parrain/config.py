"""Settings, grouped by section, read from the environment (prefix ``PARRAIN_``).

Each section is its own settings class with its own prefix, so the variable names read
naturally: ``PARRAIN_DATABASE_URL``, ``PARRAIN_SERVER_PORT``, ``PARRAIN_LOG_LEVEL``.
Secrets come only from the environment or a file, never from the database.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


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


class Settings(BaseSettings):
    """All of parrain's settings. Build with ``get_settings()`` or explicitly in tests."""

    model_config = SettingsConfigDict(env_prefix="PARRAIN_", extra="ignore")

    database: DatabaseSettings = Field(
        default_factory=DatabaseSettings, description="Where the data lives."
    )
    server: ServerSettings = Field(default_factory=ServerSettings, description="The HTTP API.")
    log: LogSettings = Field(default_factory=LogSettings, description="Logging.")
    actor: str = Field(
        default="operator:cli",
        description="Who the audit log names for actions taken from this process's CLI.",
        max_length=120,
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
