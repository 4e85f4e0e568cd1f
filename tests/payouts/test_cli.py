"""``parrain fake-paypal``: a real process that serves the fake until it is stopped."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from parrain.cli.app import app

STARTUP_SECONDS = 30


def _first_line(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], 0.2)
        if ready:
            return process.stdout.readline()
        if process.poll() is not None:
            break
    raise AssertionError(f"parrain fake-paypal said nothing in {STARTUP_SECONDS} s")


def test_fake_paypal_command_starts_and_answers_a_token_request(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARRAIN_")}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "parrain.cli.app",
            "fake-paypal",
            "--port",
            "0",
            "--client-id",
            "cli-id",
            "--client-secret",
            "cli-secret",
            "--outcome",
            "^nobody=UNCLAIMED",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        line = _first_line(process)
        assert line.startswith("fake PayPal listening on http://127.0.0.1:")
        base = line.rsplit(" ", 1)[1].strip()
        token = httpx.post(
            f"{base}/v1/oauth2/token",
            data={"grant_type": "client_credentials"},
            auth=("cli-id", "cli-secret"),
            timeout=5,
        )
        assert token.status_code == 200
        assert token.json()["access_token"]
        refused = httpx.post(
            f"{base}/v1/oauth2/token",
            data={"grant_type": "client_credentials"},
            auth=("fake-client-id", "fake-client-secret"),
            timeout=5,
        )
        assert refused.status_code == 401
    finally:
        process.terminate()
        try:
            assert process.wait(timeout=15) == 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()


def test_a_bad_outcome_rule_is_refused_with_exit_2() -> None:
    result = CliRunner().invoke(app, ["fake-paypal", "--port", "0", "--outcome", "x=MAYBE"])
    assert result.exit_code == 2
    assert "error [invalid_input]" in result.stderr


@pytest.mark.parametrize(
    "option", [["--webhook-url", "ftp://example.org/hook"], ["--webhook-id", "not-an-id!"]]
)
def test_a_bad_webhook_option_is_refused_with_exit_2(option: list[str]) -> None:
    result = CliRunner().invoke(app, ["fake-paypal", "--port", "0", *option])
    assert result.exit_code == 2
    assert "error [invalid_input]" in result.stderr
