"""What the CLI prints, and how an expected error becomes one line on stderr.

Exit statuses: 0 success; 1 a check found a problem (books, audit chain, schema) or the
database cannot be used; 2 the caller's input was refused (every :class:`ParrainError`, an
invalid schema, a bad option), the same status Typer gives its own usage errors.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Final, NoReturn, ParamSpec, TypeVar

import typer
from pydantic import BaseModel, ValidationError
from rich.console import Console
from sqlalchemy.exc import DBAPIError, OperationalError

from parrain.errors import InvalidInput, ParrainError
from parrain.kit.clock import as_utc
from parrain.kit.money import Money, validate_currency

EXIT_PROBLEM: Final = 1
EXIT_REFUSED: Final = 2

P = ParamSpec("P")
R = TypeVar("R")
M = TypeVar("M", bound=BaseModel)

_UNDEFINED_TABLE = "42P01"


def console() -> Console:
    """A console on stdout. Markup and emoji codes are off: names are printed as typed; lines
    are not wrapped (tables still fit the width)."""
    return Console(markup=False, emoji=False, highlight=False, soft_wrap=True)


def error_line(code: str, message: str) -> None:
    typer.echo(f"error [{code}]: {message}", err=True)


def fail(code: str, message: str, *, status: int = EXIT_PROBLEM) -> NoReturn:
    error_line(code, message)
    raise typer.Exit(status)


def report_refusal(error: ParrainError) -> None:
    """One line for the error, then one line per launch-gate finding it carries."""
    error_line(error.code, error.message)
    findings = error.details.get("findings")
    if isinstance(findings, list):
        for finding in findings:
            if isinstance(finding, Mapping):
                typer.echo(f"  - {finding.get('check')}: {finding.get('message')}", err=True)


def _database_failure(error: DBAPIError) -> tuple[str, str] | None:
    """The code and message for a database that cannot be used, or None for anything else
    (a bug, which keeps its traceback)."""
    original = error.orig
    first_line = (str(original).strip().splitlines() or [type(original).__name__])[0]
    if getattr(original, "sqlstate", None) == _UNDEFINED_TABLE or "no such table" in first_line:
        return (
            "database_not_migrated",
            f"{first_line}: the database is not migrated; run `parrain db upgrade` first",
        )
    if isinstance(error, OperationalError):
        return "database_unavailable", f"the database cannot be used: {first_line}"
    return None


def reports_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Turn the errors a person can cause into one clear line on stderr and an exit status,
    never a traceback. Nothing was written: the transaction rolled back."""

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except ParrainError as error:
            report_refusal(error)
            raise typer.Exit(EXIT_REFUSED) from None
        except ValidationError as error:
            error_line(InvalidInput.code, describe_validation(error))
            raise typer.Exit(EXIT_REFUSED) from None
        except DBAPIError as error:
            failure = _database_failure(error)
            if failure is None:
                raise
            error_line(*failure)
            raise typer.Exit(EXIT_PROBLEM) from None

    return run


def describe_validation(
    error: ValidationError, option_names: Mapping[str, str] | None = None
) -> str:
    """Pydantic's errors on one line, each named by its CLI option when one is given."""
    names = option_names or {}
    parts: list[str] = []
    for item in error.errors(include_url=False):
        location = item["loc"]
        field = str(location[0]) if location else ""
        message = item["msg"].removeprefix("Value error, ")
        name = names.get(field, ".".join(str(part) for part in location))
        parts.append(f"{name}: {message}" if name else message)
    return "; ".join(parts)


def build(schema: type[M], option_names: Mapping[str, str], **values: Any) -> M:
    """Build ``schema`` from option values; a refusal names the options, not the fields."""
    try:
        return schema(**values)
    except ValidationError as error:
        raise InvalidInput(describe_validation(error, option_names)) from None


def parse_currency(text: str, *, option: str) -> str:
    """An ISO 4217 code as typed (``gbp`` or ``GBP``); a refusal names the option."""
    try:
        return validate_currency(text.strip().upper())
    except ParrainError as error:
        error.message = f"{option}: {error.message}"
        raise


def parse_amount(text: str, currency: str, *, option: str) -> Money:
    """What a person typed (``50.00``) as exact minor units; a refusal names the option."""
    try:
        return Money.parse(text, currency)
    except ParrainError as error:
        error.message = f"{option}: {error.message}"
        raise


def parse_moment(text: str, *, option: str) -> datetime:
    """An ISO 8601 time (``2026-03-01T00:00Z``); a time without an offset is UTC."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(
            f"{option}: {text!r} is not an ISO 8601 time such as 2026-03-01T00:00Z",
            field=option,
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def show_moment(moment: datetime | None) -> str:
    return as_utc(moment).strftime("%Y-%m-%d %H:%M UTC") if moment is not None else "-"
