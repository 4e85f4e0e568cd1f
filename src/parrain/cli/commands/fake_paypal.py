"""``parrain fake-paypal``: serve the PayPal Payouts v1 fake for development and the demo.

Items settle by the wall clock (``--settle-seconds``); ``--outcome REGEX=STATUS`` makes the
items of matching receivers end with that status (``--outcome '^unclaimed'=UNCLAIMED``).
"""

from __future__ import annotations

import signal
import threading
from datetime import timedelta
from typing import Annotated

import typer

from parrain.cli.output import EXIT_REFUSED, fail
from parrain.payouts.providers.fake import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    FakePayPal,
    OutcomeRule,
)
from parrain.payouts.providers.paypal_wire import ItemStatus


def _outcome_rule(text: str) -> OutcomeRule:
    pattern, _, status = text.rpartition("=")
    if not pattern or status not in ItemStatus.__members__:
        fail(
            "invalid_input",
            f"--outcome is REGEX=STATUS with STATUS one of {', '.join(ItemStatus)}",
            status=EXIT_REFUSED,
        )
    return OutcomeRule(pattern, ItemStatus(status))


def fake_paypal(
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="Port to listen on (0: any free one).")
    ] = 8089,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    client_id: Annotated[
        str, typer.Option("--client-id", help="The client id the token endpoint accepts.")
    ] = DEFAULT_CLIENT_ID,
    client_secret: Annotated[
        str,
        typer.Option(
            "--client-secret",
            envvar="PARRAIN_FAKE_PAYPAL_CLIENT_SECRET",
            help="The client secret the token endpoint accepts.",
        ),
    ] = DEFAULT_CLIENT_SECRET,
    settle_seconds: Annotated[
        float,
        typer.Option("--settle-seconds", min=0.0, help="Seconds an item stays PENDING."),
    ] = 5.0,
    outcome: Annotated[
        list[str] | None,
        typer.Option("--outcome", help="REGEX=STATUS: receivers matching REGEX end with STATUS."),
    ] = None,
) -> None:
    """Serve a fake of PayPal Payouts v1 until stopped (Ctrl-C or SIGTERM)."""
    rules = [_outcome_rule(text) for text in outcome or []]
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    fake = FakePayPal(
        client_id=client_id,
        client_secret=client_secret,
        settle_after=timedelta(seconds=settle_seconds),
        outcomes=rules,
    )
    try:
        fake.start(host=host, port=port)
    except OSError as error:
        fail("address_unavailable", f"cannot listen on {host}:{port}: {error.strerror}")
    try:
        print(f"fake PayPal listening on {fake.base_url}", flush=True)
        stop.wait()
    finally:
        fake.stop()
