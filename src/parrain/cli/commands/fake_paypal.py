"""``parrain fake-paypal``: serve the PayPal Payouts v1 fake for development and the demo.

Items settle by the wall clock (``--settle-seconds``); ``--outcome REGEX=STATUS`` makes the
items of matching receivers end with that status (``--outcome '^unclaimed'=UNCLAIMED``).
``--webhook-url`` makes it notify that URL as PayPal does (ADR 19), under ``--webhook-id``
(what ``PARRAIN_PAYOUTS_PAYPAL_WEBHOOK_ID`` must say).
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
    DEFAULT_WEBHOOK_ID,
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
    webhook_url: Annotated[
        str | None,
        typer.Option(
            "--webhook-url",
            help="Send PayPal's payout notifications to this URL (e.g. parrain's "
            "/v1/paypal/webhooks).",
        ),
    ] = None,
    webhook_id: Annotated[
        str,
        typer.Option("--webhook-id", help="The webhook id the notifications are signed for."),
    ] = DEFAULT_WEBHOOK_ID,
) -> None:
    """Serve a fake of PayPal Payouts v1 until stopped (Ctrl-C or SIGTERM)."""
    rules = [_outcome_rule(text) for text in outcome or []]
    if webhook_url is not None and not webhook_url.startswith(("http://", "https://")):
        fail("invalid_input", "--webhook-url is an http:// or https:// URL", status=EXIT_REFUSED)
    if not webhook_id.isascii() or not webhook_id.isalnum() or len(webhook_id) > 50:
        fail("invalid_input", "--webhook-id is 1 to 50 letters and digits", status=EXIT_REFUSED)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    fake = FakePayPal(
        client_id=client_id,
        client_secret=client_secret,
        settle_after=timedelta(seconds=settle_seconds),
        outcomes=rules,
        webhook_url=webhook_url,
        webhook_id=webhook_id,
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
