"""Run ``parrain`` in-process against the test's own database, and read back what it did."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from typer.testing import CliRunner, Result

from parrain.cli.app import app

ACTOR = "operator:cli-test"


@dataclass(frozen=True)
class Cli:
    """``parrain --database-url <the test's database> --actor operator:cli-test ...``"""

    database_url: str

    def __call__(self, *args: str) -> Result:
        runner = CliRunner()
        return runner.invoke(app, ["--database-url", self.database_url, "--actor", ACTOR, *args])


@pytest.fixture
def cli(database_url: str) -> Cli:
    return Cli(database_url)


def refused(result: Result, code: str) -> str:
    """Assert the command was refused with exit 2 and one ``error [code]`` line, no traceback,
    nothing on stdout; return the error line."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.stdout == ""
    first_line = result.stderr.splitlines()[0]
    assert first_line.startswith(f"error [{code}]: "), result.stderr
    return first_line
