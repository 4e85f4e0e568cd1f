"""What runs beside the demo's API in the same process: the PayPal fake on a loopback port,
and the worker's rounds in a thread (prizes released when due, payouts to the fake,
webhooks, expiries). Both stop when the API does."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

import httpx
from pydantic import SecretStr

from parrain.config import Settings
from parrain.db.session import Database
from parrain.errors import ParrainError
from parrain.kit.clock import Clock
from parrain.logging import get_logger
from parrain.members.service import MemberKeys
from parrain.payouts.providers.fake import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_WEBHOOK_ID,
    FakePayPal,
)
from parrain.payouts.providers.paypal import PayPalClient
from parrain.payouts.worker import client_from_settings, run_round
from parrain.worker.jobs import (
    deliver_webhooks,
    expire_consents,
    expire_coupons,
    expire_pending_transfers,
    release_held_rewards,
    sweep_retention,
)

_log = get_logger(__name__)

#: The path of parrain's PayPal notifications endpoint, which the fake calls.
WEBHOOK_PATH = "/v1/paypal/webhooks"
RETENTION_SWEEP_EVERY = timedelta(hours=1)


def start_fake_paypal(
    *, host: str, port: int, api_base_url: str, settle_seconds: float
) -> FakePayPal:
    """The PayPal fake on ``host:port`` (0: any free port), notifying the demo's API."""
    return FakePayPal(
        client_id=DEFAULT_CLIENT_ID,
        client_secret=DEFAULT_CLIENT_SECRET,
        settle_after=timedelta(seconds=settle_seconds),
        webhook_url=f"{api_base_url}{WEBHOOK_PATH}",
        webhook_id=DEFAULT_WEBHOOK_ID,
    ).start(host=host, port=port)


def with_fake_paypal(settings: Settings, fake: FakePayPal) -> Settings:
    """``settings`` whose payout worker and webhook endpoint use ``fake``."""
    return settings.model_copy(
        update={
            "payouts": settings.payouts.model_copy(
                update={
                    "paypal_base_url": fake.base_url,
                    "paypal_client_id": SecretStr(DEFAULT_CLIENT_ID),
                    "paypal_client_secret": SecretStr(DEFAULT_CLIENT_SECRET),
                    "paypal_webhook_id": DEFAULT_WEBHOOK_ID,
                }
            )
        }
    )


@dataclass
class DemoWorker:
    """Runs every job of ``parrain worker run`` and a payout round every ``interval``
    seconds in a daemon thread, from :meth:`start` until :meth:`stop` (which waits for the
    round in progress). A round that fails is logged (its error code) and retried next time.
    ``report`` is called with a line for each round that did something."""

    database: Database
    clock: Clock
    settings: Settings
    keys: MemberKeys
    interval: float
    report: Callable[[str], None]
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> DemoWorker:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="parrain-demo-worker", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)
            self._thread = None

    def _run(self) -> None:
        next_sweep = self.clock.now()
        paypal = client_from_settings(self.settings.payouts, clock=self.clock)
        with httpx.Client() as hooks:
            try:
                while not self._stop.is_set():
                    try:
                        if self.clock.now() >= next_sweep:
                            sweep_retention(
                                database=self.database,
                                clock=self.clock,
                                default_days=self.settings.consent.max_days,
                            )
                            next_sweep = self.clock.now() + RETENTION_SWEEP_EVERY
                        line = self._round(hooks, paypal)
                    except ParrainError as error:
                        _log.warning("demo_worker_round_failed", code=error.code)
                    except Exception as error:  # keep the worker alive
                        _log.warning("demo_worker_round_failed", error=type(error).__name__)
                    else:
                        if line:
                            self.report(line)
                    self._stop.wait(self.interval)
            finally:
                if paypal is not None:
                    paypal.close()

    def _round(self, hooks: httpx.Client, paypal: PayPalClient | None) -> str:
        done: list[str] = []

        def count(what: str, number: int) -> None:
            if number:
                done.append(f"{what}: {number}")

        count(
            "pending transfers expired",
            expire_pending_transfers(database=self.database, clock=self.clock),
        )
        count("prizes released", release_held_rewards(database=self.database, clock=self.clock))
        count("consents expired", expire_consents(database=self.database, clock=self.clock))
        count("coupons expired", expire_coupons(database=self.database, clock=self.clock))
        webhooks = deliver_webhooks(
            database=self.database, clock=self.clock, settings=self.settings.webhooks, client=hooks
        )
        count("webhooks delivered", webhooks.delivered)
        if paypal is not None:
            payouts = run_round(
                database=self.database,
                clock=self.clock,
                client=paypal,
                keys=self.keys,
                settings=self.settings.payouts,
            )
            count("payouts sent in batches", payouts.submitted)
            count("payouts paid", payouts.paid)
            count("payouts returned", payouts.voided)
        return "; ".join(done)
