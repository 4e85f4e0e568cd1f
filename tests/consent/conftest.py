"""Fixtures of the consent tests: the CLI runner of tests/cli on the test's database."""

from __future__ import annotations

import pytest

from tests.cli.conftest import Cli


@pytest.fixture
def cli(database_url: str) -> Cli:
    return Cli(database_url)
