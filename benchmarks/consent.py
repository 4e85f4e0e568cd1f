"""Consent checks: in process (``consent.service.check_many``) and over HTTP.

The script prepares a fresh database (a temporary SQLite file, or the PostgreSQL database
``parrain_bench_consent``, created for the run and dropped afterwards), migrates it and seeds
a live campaign whose declaration has the programme's items and one optional use (the
member's photo in adverts, on app, web and social), ``--members`` enrolled members, and for
each member the notice shown and, for most, the optional use granted on one or more
channels (a few withdrawn or refused). Then, one JSON line per mode::

    python benchmarks/consent.py --db sqlite
    python benchmarks/consent.py --db postgresql

* ``inprocess``: batches of ``--batch-size`` (1,000) checks through
  ``consent.service.check_many``, each batch one read transaction, for ``--seconds``:
  checks/s (target ≥ 50,000), and the same batches' rows read with plain SQL on the
  driver's cursor (the same three-part query, no SQLAlchemy, no decisions): rows/s and the
  ratio service / raw, as the other benchmarks print; then the same batches while another
  thread withdraws and grants again ``CHURN_PER_S`` (10) consents a second
  (``churn_checks_per_s``: every change drops that member from the check cache, ADR 25);
  CPU time per check (``cpu_us_per_check``) for both;
* ``http``: ``POST /v1/consent/check`` (one check per request) against
  ``uvicorn parrain.web.asgi:create_app_from_environment --factory --workers 2`` on
  loopback, on an open-loop schedule of ``--rate`` (1,000) requests/s for ``--http-seconds``
  from the lean client of ``_load.py`` (one thread, ``--connections`` keep-alive
  connections; ``benchmarks/events.py``'s server); each latency is measured from the
  *scheduled* send time. Target: p99 < 10 ms. Every answer is checked against the decision
  the seeding implies; the client's and the server's CPU per request are reported.

The checks mix what an integration asks: the optional use on a granted channel, on another
channel, in another territory, for a member who withdrew or refused, the programme's own
uses, and unknown members.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

import _support
import events as events_bench

DEFAULT_POSTGRES = "postgresql+psycopg://root@127.0.0.1:5432/parrain_bench_consent"
MODES = ("inprocess", "http")
MARKET = "GB"
PHOTO, ADS = "user.content.self_image", "marketing.advertising.first_party"
USERNAME, OPERATIONS = "user.account.username", "essential.service.operations"
CHANNELS = ("app", "social", "web")
TARGET_CHECKS_PER_S = 50_000.0
TARGET_P99_MS = 10.0
PACED_GRACE = 5.0
#: In process, with churn: consent changes per second another thread commits (a grant
#: withdrawn, then given again) while the checks run.
CHURN_PER_S = 10.0


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Seeded:
    campaign_id: uuid.UUID
    members: list[uuid.UUID]
    #: member → the channels granted (members who granted and kept it)
    granted: dict[uuid.UUID, frozenset[str]]
    #: member → ("refused" or "withdrawn", the channels it applies to)
    said_no: dict[uuid.UUID, tuple[str, frozenset[str]]]
    api_key: str


# --------------------------------------------------------------------------- seeding


def seed(url: str, *, members: int, rng: random.Random) -> Seeded:
    from parrain.access import service as access
    from parrain.access.schemas import ApiKeyCreate
    from parrain.campaigns import service as campaigns
    from parrain.campaigns.schemas import CampaignCreate, FundingCreate
    from parrain.config import CryptoSettings, DatabaseSettings
    from parrain.consent import service as consent
    from parrain.consent.schemas import (
        ConsentChoice,
        ConsentWithdrawal,
        DeclarationCreate,
        DeclarationItem,
        NoticeShownCreate,
    )
    from parrain.db.session import Database
    from parrain.kit.clock import SystemClock
    from parrain.kit.crypto import development_signing_key
    from parrain.members.schemas import MemberCreate
    from parrain.members.service import MemberKeys
    from parrain.referrals import service as referrals
    from parrain.referrals.schemas import EnrolmentCreate

    clock = SystemClock()
    keys = MemberKeys.from_settings(CryptoSettings(allow_development_keys=True))
    issuer = consent.ReceiptIssuer(
        signing_key=development_signing_key(), notice_base_url="http://127.0.0.1"
    )
    actor = "operator:bench"
    controller = "Bench Marketplace Ltd"
    database = Database(DatabaseSettings(url=url))
    run_id = f"{rng.getrandbits(32):08x}"
    try:

        def launch(session: Session) -> Any:
            created = campaigns.create(
                session=session,
                campaign_in=CampaignCreate(
                    name=f"Cash Rewards consent bench {run_id}",
                    market=MARKET,
                    currency="GBP",
                    languages=["en"],
                    starts_at=clock.now() - timedelta(hours=1),
                    ends_at=clock.now() + timedelta(days=30),
                    friends_needed=5,
                    reward_cash_minor=2000,
                    reward_coupon_minor=3000,
                ),
                actor=actor,
                clock=clock,
            )
            campaigns.fund(
                session=session,
                campaign_id=created.id,
                funding_in=FundingCreate(amount_minor=10**9, currency="GBP"),
                actor=actor,
                clock=clock,
            )
            items = list(
                consent.programme_declaration(controller=controller, territories=[MARKET]).items
            )
            items.append(
                DeclarationItem.model_validate(
                    {
                        "data_category": PHOTO,
                        "data_use": ADS,
                        "legal_basis": "consent",
                        "controllers": [controller],
                        "channels": list(CHANNELS),
                        "territories": [MARKET],
                        "max_days": 183,
                    }
                )
            )
            consent.declare(
                session=session,
                campaign_id=created.id,
                declaration_in=DeclarationCreate(items=items),
                actor=actor,
                clock=clock,
            )
            return campaigns.launch(
                session=session, campaign_id=created.id, actor=actor, clock=clock
            )

        campaign = database.run(launch)
        member_ids: list[uuid.UUID] = []
        granted: dict[uuid.UUID, frozenset[str]] = {}
        said_no: dict[uuid.UUID, tuple[str, frozenset[str]]] = {}
        chunk = 200
        for start in range(0, members, chunk):
            plan = []
            for index in range(start, min(start + chunk, members)):
                roll = rng.random()
                channels = frozenset(c for c in CHANNELS if rng.random() < 0.6) or {"social"}
                plan.append((index, roll, frozenset(channels)))

            def enrol(session: Session, plan: list[Any] = plan) -> list[Any]:
                out = []
                for index, roll, channels in plan:
                    member = MemberCreate.model_validate(
                        {
                            "market": MARKET,
                            "marketplace_user_id": f"bench-{run_id}-member-{index}",
                            "email": f"member{index}.{run_id}@example.org",
                            "username": f"member{index}",
                        }
                    )
                    member_id = referrals.enrol(
                        session=session,
                        campaign_id=campaign.id,
                        enrolment_in=EnrolmentCreate(member=member),
                        keys=keys,
                        clock=clock,
                        link_base_url="http://127.0.0.1",
                    ).member_id
                    consent.show_notice(
                        session=session,
                        member_id=member_id,
                        shown_in=NoticeShownCreate(
                            campaign_id=campaign.id, language="en", method="bench:screen"
                        ),
                        clock=clock,
                    )
                    answer = "granted"
                    if roll < 0.1:
                        answer = "refused"
                    elif roll < 0.2:
                        answer = "withdrawn"
                    for channel in sorted(channels):
                        choice = ConsentChoice.model_validate(
                            {
                                "campaign_id": campaign.id,
                                "data_category": PHOTO,
                                "data_use": ADS,
                                "channel": channel,
                                "language": "en",
                                "method": "bench:switch",
                            }
                        )
                        if answer == "refused":
                            consent.refuse(
                                session=session,
                                member_id=member_id,
                                choice=choice,
                                actor=actor,
                                clock=clock,
                            )
                            continue
                        consent.grant(
                            session=session,
                            member_id=member_id,
                            choice=choice,
                            issuer=issuer,
                            actor=actor,
                            clock=clock,
                        )
                        if answer == "withdrawn":
                            consent.withdraw(
                                session=session,
                                member_id=member_id,
                                withdrawal=ConsentWithdrawal.model_validate(
                                    {
                                        k: v
                                        for k, v in choice.model_dump().items()
                                        if k != "language"
                                    }
                                ),
                                issuer=issuer,
                                actor=actor,
                                clock=clock,
                            )
                    out.append((member_id, answer, channels))
                return out

            for member_id, answer, channels in database.run(enrol):
                member_ids.append(member_id)
                if answer == "granted":
                    granted[member_id] = channels
                else:
                    said_no[member_id] = (answer, channels)
            log(f"  seeded {len(member_ids)} members")
        api_key = database.run(
            lambda s: access.create_api_key(
                session=s,
                key_in=ApiKeyCreate(name=f"bench-consent-{run_id}", scopes=["consent"]),
                actor=actor,
                clock=clock,
            )
        ).key
        return Seeded(campaign.id, member_ids, granted, said_no, api_key)
    finally:
        database.dispose()


# --------------------------------------------------------------------------- the checks


def make_check(seeded: Seeded, rng: random.Random) -> tuple[dict[str, Any], str]:
    """A check body and the reason the seeding implies."""
    roll = rng.random()
    member = rng.choice(seeded.members)
    body: dict[str, Any] = {
        "member_id": str(member),
        "data_category": PHOTO,
        "data_use": ADS,
        "channel": rng.choice(CHANNELS),
        "territory": MARKET,
    }
    if roll < 0.15:
        body.update(data_category=USERNAME, data_use=OPERATIONS, channel="app")
        return body, "programme_use"
    if roll < 0.18:
        body["member_id"] = str(uuid.UUID(int=rng.getrandbits(128)))
        return body, "member_unknown"
    if roll < 0.25:
        body["territory"] = "FR"
    channels = seeded.granted.get(member)
    if channels is None:
        answer, answered = seeded.said_no[member]
        return body, answer if body["channel"] in answered else "no_consent"
    if body["channel"] in channels:
        return body, "consent_granted" if body["territory"] == MARKET else "territory_not_covered"
    return body, "channel_not_covered"


def batches(seeded: Seeded, *, size: int, count: int, rng: random.Random) -> list[Any]:
    from parrain.consent.schemas import ConsentCheck

    out = []
    for _ in range(count):
        pairs = [make_check(seeded, rng) for _ in range(size)]
        out.append(
            (
                [ConsentCheck.model_validate(body) for body, _reason in pairs],
                [reason for _body, reason in pairs],
            )
        )
    return out


# --------------------------------------------------------------------------- in process


_RAW_SQL = """
SELECT 'g', g.member_id, g.campaign_id, g.data_category, g.data_use, g.channel, g.status,
       g.granted_at, g.expires_at, g.territories, g.declaration_version, g.notice_sha256,
       g.declaration_id, NULL
  FROM consent_grants g
 WHERE g.member_id {among} AND g.data_category IN ({p}, {p}) AND g.data_use IN ({p}, {p})
UNION ALL
SELECT 'm', m.id, e.campaign_id, NULL, NULL, NULL, NULL, NULL, NULL, NULL, d.version, NULL,
       d.id, m.erased_at
  FROM members m
  LEFT JOIN enrolments e ON e.member_id = m.id
  LEFT JOIN consent_declarations d ON d.campaign_id = e.campaign_id
   AND d.version = (SELECT max(l.version) FROM consent_declarations l
                     WHERE l.campaign_id = e.campaign_id)
 WHERE m.id {among}
"""


def raw_rows(database: Any, checks: Sequence[Any]) -> int:
    """The rows ``check_many`` reads for ``checks``, with plain SQL on the driver's cursor
    (the same statement, the same parameters: a list on SQLite, an array on PostgreSQL)."""
    sqlite = database.dialect == "sqlite"
    ids = sorted({check.member_id for check in checks})
    if sqlite:
        among, p, values = f"IN ({', '.join(['?'] * len(ids))})", "?", [i.hex for i in ids]
    else:
        among, p, values = "= ANY(%s)", "%s", [ids]
    sql = _RAW_SQL.format(among=among, p=p)
    params = [*values, PHOTO, USERNAME, ADS, OPERATIONS, *values]
    connection = database.engine.raw_connection()
    try:
        cursor = connection.cursor()
        cursor.execute(sql, params)
        count = len(cursor.fetchall())
        cursor.close()
        connection.rollback()
    finally:
        connection.close()
    return count


def churn(url: str, seeded: Seeded, stop: threading.Event, done: list[int]) -> None:
    """Withdraw a granted consent, then grant it again, ``CHURN_PER_S`` changes a second,
    each its own transaction, until ``stop`` (after a grant); count the changes in
    ``done``."""
    from parrain.config import DatabaseSettings
    from parrain.consent import service as consent
    from parrain.consent.schemas import ConsentChoice, ConsentWithdrawal
    from parrain.db.session import Database
    from parrain.kit.clock import SystemClock
    from parrain.kit.crypto import development_signing_key

    clock = SystemClock()
    issuer = consent.ReceiptIssuer(
        signing_key=development_signing_key(), notice_base_url="http://127.0.0.1"
    )
    database = Database(DatabaseSettings(url=url))
    pairs = sorted(
        (member, channel) for member, channels in seeded.granted.items() for channel in channels
    )[:50]
    fields = {"data_category": PHOTO, "data_use": ADS, "campaign_id": seeded.campaign_id}
    try:
        started = time.perf_counter()
        for index in itertools.count():
            if not pairs or (stop.is_set() and index % 2 == 0):
                return  # (after a grant: the consents are as seeded again)
            member, channel = pairs[(index // 2) % len(pairs)]
            body = {**fields, "channel": channel, "method": "bench:churn"}
            if index % 2 == 0:
                withdrawal = ConsentWithdrawal.model_validate(body)
                database.run(
                    lambda s, w=withdrawal, m=member: consent.withdraw(
                        session=s,
                        member_id=m,
                        withdrawal=w,
                        issuer=issuer,
                        actor="bench",
                        clock=clock,
                    )
                )
            else:
                choice = ConsentChoice.model_validate({**body, "language": "en"})
                database.run(
                    lambda s, c=choice, m=member: consent.grant(
                        session=s,
                        member_id=m,
                        choice=c,
                        issuer=issuer,
                        actor="bench",
                        clock=clock,
                    )
                )
            done[0] += 1
            pause = started + (index + 1) / CHURN_PER_S - time.perf_counter()
            if pause > 0:
                stop.wait(pause)
    finally:
        database.dispose()


def in_process(url: str, seeded: Seeded, args: argparse.Namespace, db: str) -> dict[str, Any]:
    from parrain.config import DatabaseSettings
    from parrain.consent import service as consent
    from parrain.db.session import Database
    from parrain.kit.clock import SystemClock

    rng = random.Random(args.seed)
    prepared = batches(seeded, size=args.batch_size, count=50, rng=rng)
    database = Database(DatabaseSettings(url=url))
    clock = SystemClock()
    wrong = 0

    def run_checks(seconds: float) -> tuple[int, int, float, float]:
        """Batches for ``seconds``: checks, batches, wall and CPU seconds."""
        count = index = 0
        started = time.perf_counter()
        cpu = time.process_time()
        while time.perf_counter() - started < seconds:
            checks, _expected = prepared[index % len(prepared)]
            database.read(lambda s, c=checks: consent.check_many(session=s, checks=c, clock=clock))
            count += len(checks)
            index += 1
        return count, index, time.perf_counter() - started, time.process_time() - cpu

    try:
        for checks, expected in prepared[:3]:  # warm-up, and every answer checked once
            answers = database.read(
                lambda s, c=checks: consent.check_many(session=s, checks=c, clock=clock)
            )
            wrong += sum(a.reason != e for a, e in zip(answers, expected, strict=True))
        count, index, elapsed, service_cpu = run_checks(args.seconds)
        cache = database.read(consent.check_cache)
        clears = cache.clears if cache is not None else 0
        rows = raw_count = 0
        raw_started = time.perf_counter()
        raw_index = 0
        while time.perf_counter() - raw_started < args.seconds:
            checks, _expected = prepared[raw_index % len(prepared)]
            rows += raw_rows(database, checks)
            raw_count += len(checks)
            raw_index += 1
        raw_elapsed = time.perf_counter() - raw_started
        # The same checks while another thread changes consents (its CPU counts too).
        stop, changes = threading.Event(), [0]
        churner = threading.Thread(target=churn, args=(url, seeded, stop, changes), daemon=True)
        churner.start()
        try:
            churned, _batches, churn_elapsed, churn_cpu = run_checks(args.seconds)
        finally:
            stop.set()
            churner.join()
        # Every answer checked again once the changes stopped: each withdrawal was followed
        # by its grant, so the consents are as seeded, and the cache must say so.
        for checks, expected in prepared[:3]:
            answers = database.read(
                lambda s, c=checks: consent.check_many(session=s, checks=c, clock=clock)
            )
            wrong += sum(a.reason != e for a, e in zip(answers, expected, strict=True))
        cache = database.read(consent.check_cache)
        churn_clears = (cache.clears if cache is not None else 0) - clears
    finally:
        database.dispose()
    per_s = count / elapsed
    raw_per_s = raw_count / raw_elapsed
    churn_per_s = churned / churn_elapsed
    return {
        "mode": "inprocess",
        "db": db,
        "batch_size": args.batch_size,
        "checks": count,
        "seconds": round(elapsed, 2),
        "checks_per_s": round(per_s, 1),
        "batch_ms": round(1000 * elapsed / index, 2),
        "cpu": round(service_cpu / elapsed, 2),
        "cpu_us_per_check": round(1e6 * service_cpu / count, 2),
        "raw_checks_per_s": round(raw_per_s, 1),
        "raw_rows_per_batch": round(rows / raw_index, 1),
        "ratio_to_raw": round(per_s / raw_per_s, 3),
        "churn_changes_per_s": round(changes[0] / churn_elapsed, 1),
        "churn_checks_per_s": round(churn_per_s, 1),
        "churn_cpu_us_per_check": round(1e6 * churn_cpu / churned, 2),
        "churn_cache_clears": churn_clears,
        "wrong_answers": wrong,
        "target": {"checks_per_s_at_least": TARGET_CHECKS_PER_S},
        "met": per_s >= TARGET_CHECKS_PER_S and churn_per_s >= TARGET_CHECKS_PER_S and wrong == 0,
    }


# --------------------------------------------------------------------------- over HTTP


def over_http(url: str, seeded: Seeded, args: argparse.Namespace, db: str) -> dict[str, Any]:
    """One check per request, open loop at ``--rate`` (latency from each request's due time,
    so a stall counts against every request it delayed), from the lean client of
    ``_load.py`` on ``--connections`` keep-alive connections; one unmeasured second first."""
    import _load

    rng = random.Random(args.seed + 1)
    warm = [make_check(seeded, rng) for _ in range(int(args.rate))]
    planned = [make_check(seeded, rng) for _ in range(int(args.http_seconds * args.rate))]
    with events_bench.api_server(
        url, port=events_bench.free_port(), workers=args.workers
    ) as base_url:
        target = _load.Target.from_url(base_url, {"Authorization": f"Bearer {seeded.api_key}"})
        warm_requests = [target.post_json("/v1/consent/check", body) for body, _ in warm]
        requests = [target.post_json("/v1/consent/check", body) for body, _ in planned]
        _load.open_loop(
            target,
            lambda i: warm_requests[i],
            rate=args.rate,
            seconds=len(warm) / args.rate,
            max_in_flight=args.connections,
        )
        pgid = events_bench.SERVER_PGIDS.get(base_url)
        server_before = _load.process_group_cpu(pgid) if pgid is not None else None
        client_before = time.process_time()
        run = _load.open_loop(
            target,
            lambda i: requests[i],
            rate=args.rate,
            seconds=args.http_seconds,
            max_in_flight=args.connections,
            grace=PACED_GRACE,
        )
        client_cpu = time.process_time() - client_before
        server_after = _load.process_group_cpu(pgid) if pgid is not None else None
    errors: Counter[str] = Counter()
    wrong = 0
    latencies: list[float] = []
    for result in run.results:
        response = result.response
        if response is None:
            errors[result.error or "no_answer"] += 1
            continue
        if response.status != 200:
            errors[f"http_{response.status}"] += 1
            continue
        if response.json().get("reason") != planned[result.index][1]:
            wrong += 1
        latencies.append(result.latency)
    latencies.sort()
    answered = len(latencies)
    server_cpu = (
        None if server_before is None or server_after is None else server_after - server_before
    )
    p99 = events_bench.ms(events_bench.percentile(latencies, 0.99))
    return {
        "mode": "http",
        "db": db,
        "workers": args.workers,
        "rate_per_s": args.rate,
        "connections": args.connections,
        "requests": answered,
        "seconds": round(run.elapsed, 2),
        "answered_per_s": round(answered / run.elapsed, 1) if run.elapsed else None,
        "p50_ms": events_bench.ms(events_bench.percentile(latencies, 0.50)),
        "p99_ms": p99,
        "max_ms": events_bench.ms(max(latencies, default=None)),
        "errors": sum(errors.values()),
        "error_kinds": dict(errors),
        "wrong_answers": wrong,
        "unsent": run.unsent,
        "client_cpu_us_per_request": round(client_cpu / max(1, answered) * 1e6, 1),
        "server_cpu_us_per_request": (
            None if server_cpu is None else round(server_cpu / max(1, answered) * 1e6, 1)
        ),
        "target": {"p99_ms_below": TARGET_P99_MS},
        "met": (
            p99 is not None and p99 < TARGET_P99_MS and not errors and not wrong and not run.unsent
        ),
    }


# --------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql"), required=True)
    parser.add_argument(
        "--database-url",
        help="use this database instead of a fresh one (it is migrated; rows are left behind)",
    )
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--members", type=int, default=3000, help="members seeded")
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=10.0, help="in process, per side")
    parser.add_argument("--http-seconds", type=float, default=20.0)
    parser.add_argument("--rate", type=float, default=1000.0, help="HTTP requests/s")
    parser.add_argument("--connections", type=int, default=32, help="HTTP: most in flight")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--seed", type=int, default=20_261_130)
    args = parser.parse_args(argv)

    started = time.perf_counter()
    with _support.fresh_database(
        args.db, args.database_url, postgres=DEFAULT_POSTGRES, stem="consent"
    ) as url:
        events_bench.migrate(url, args.db)
        seeded = seed(url, members=args.members, rng=random.Random(args.seed))
        _support.settle_statistics(url)
        log(f"{args.db}: seeded in {time.perf_counter() - started:.0f}s")
        failed = False
        for mode in args.modes:
            line = (in_process if mode == "inprocess" else over_http)(url, seeded, args, args.db)
            print(json.dumps(line), flush=True)
            failed = failed or not line["met"]
    log(f"{args.db}: {time.perf_counter() - started:.0f}s in all")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
