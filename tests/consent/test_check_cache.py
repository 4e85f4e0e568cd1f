"""The consent checks' in-process cache (ADR 25) is exact: whatever is committed before a
check starts is what the check sees, from this process or another; answers with the cache
are the answers without it; a pruned change log empties the cache instead of leaving it
stale."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from uuid import UUID

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from parrain.config import ConsentSettings, DatabaseSettings
from parrain.consent import repository
from parrain.consent import service as consent
from parrain.consent.models import ConsentChange
from parrain.consent.schemas import ConsentCheck
from parrain.consent.service.cache import CheckCache
from parrain.consent.service.checks import Decision
from parrain.db.session import Database
from parrain.errors import ParrainError
from parrain.kit.clock import FrozenClock
from parrain.kit.ids import new_id
from parrain.members import service as members
from parrain.privacy import service as privacy
from parrain.worker.jobs import expire_consents
from tests.consent import consents
from tests.consent.consents import ADS, OPERATIONS, PHOTO, USERNAME
from tests.consent.declarations import honest, photo_in_ads, programme_items
from tests.referrals.programme import KEYS, Programme

CHANNELS = ("app", "web", "social")


@pytest.fixture(autouse=True)
def _cache_on() -> Iterator[None]:
    consent.configure_check_cache(members=1_000)
    yield
    consent.configure_check_cache(members=1_000)


@pytest.fixture
def programme(database: Database, clock: FrozenClock) -> Programme:
    return consents.launch(database, clock)


def _cache(database: Database) -> CheckCache[Any]:
    cache = database.read(consent.check_cache)
    assert cache is not None
    return cache


def _check_many(
    database: Database, clock: FrozenClock, checks: list[ConsentCheck], *, use_cache: bool
) -> list[Decision]:
    return database.read(
        lambda s: consent.check_many(session=s, checks=checks, clock=clock, use_cache=use_cache)
    )


def _reason(database: Database, clock: FrozenClock, member_id: UUID, **changes: Any) -> str:
    checked = consents.check_in(member_id, **changes)
    cached, fresh = (
        _check_many(database, clock, [checked], use_cache=use_cache)[0]
        for use_cache in (True, False)
    )
    assert cached == fresh
    return cached.reason.value


def test_a_withdrawal_in_another_process_is_seen_by_the_very_next_check(
    database: Database, clock: FrozenClock, programme: Programme, database_url: str
) -> None:
    member_id = programme.enrol("ann").member_id
    campaign_id = programme.campaign.id
    consents.show(database, clock, member_id, campaign_id)
    consents.grant(database, clock, member_id, campaign_id)
    assert _reason(database, clock, member_id) == "consent_granted"
    assert _reason(database, clock, member_id) == "consent_granted"
    cache = _cache(database)
    assert member_id in cache.get_many([member_id])  # answered from memory
    # Another engine: another process as far as the caches go.
    other = Database(DatabaseSettings(url=database_url))
    try:
        consents.withdraw(other, clock, member_id, campaign_id)
    finally:
        other.dispose()
    assert _reason(database, clock, member_id) == "withdrawn"
    consents.show(database, clock, member_id, campaign_id)
    consents.grant(database, clock, member_id, campaign_id)
    assert _reason(database, clock, member_id) == "consent_granted"
    consents.refuse(database, clock, member_id, campaign_id, channel="app")
    assert _reason(database, clock, member_id, channel="app") == "refused"


def test_an_erasure_is_seen_by_the_next_check(
    database: Database, clock: FrozenClock, programme: Programme
) -> None:
    member_id = programme.enrol("ann").member_id
    consents.show(database, clock, member_id, programme.campaign.id)
    consents.grant(database, clock, member_id, programme.campaign.id)
    assert _reason(database, clock, member_id) == "consent_granted"
    database.run(
        lambda s: privacy.erase_member(session=s, member_id=member_id, actor="t", clock=clock)
    )
    assert _reason(database, clock, member_id) == "member_erased"


def test_a_new_enrolment_is_seen_by_the_next_check(
    database: Database, clock: FrozenClock, programme: Programme
) -> None:
    registered = database.run(
        lambda s: members.register_member(
            session=s, member_in=programme.member("carl"), keys=KEYS, clock=clock
        )
    )
    asked = {"data_category": USERNAME, "data_use": OPERATIONS, "channel": "app"}
    assert _reason(database, clock, registered.id, **asked) == "no_consent"
    assert registered.id in _cache(database).get_many([registered.id])
    assert programme.enrol("carl").member_id == registered.id
    assert _reason(database, clock, registered.id, **asked) == "programme_use"


def test_a_new_declaration_version_is_seen_by_the_next_check(
    database: Database, clock: FrozenClock, programme: Programme
) -> None:
    member_id = programme.enrol("ann").member_id
    asked = {"data_category": USERNAME, "data_use": OPERATIONS, "channel": "app"}
    before = _check_many(database, clock, [consents.check_in(member_id, **asked)], use_cache=True)
    assert (before[0].reason, before[0].declaration_version) == ("programme_use", 2)
    clears = _cache(database).clears
    version = consents.redeclare(
        programme,
        honest().model_copy(update={"items": [*programme_items(), photo_in_ads(max_days=90)]}),
    )
    assert version == 3
    after = _check_many(database, clock, [consents.check_in(member_id, **asked)], use_cache=True)
    assert (after[0].reason, after[0].declaration_version) == ("programme_use", 3)
    assert after[0].notice_sha256 != before[0].notice_sha256
    assert _cache(database).clears == clears + 1  # a new version: everyone's rows dropped


def test_a_pruned_log_makes_a_cache_that_is_behind_start_again(
    database: Database, clock: FrozenClock, programme: Programme
) -> None:
    ann = programme.enrol("ann").member_id
    bob = programme.enrol("bob").member_id
    campaign_id = programme.campaign.id
    for member_id in (ann, bob):
        consents.show(database, clock, member_id, campaign_id)
        consents.grant(database, clock, member_id, campaign_id)
    assert _reason(database, clock, ann) == "consent_granted"
    cache = _cache(database)
    clears = cache.clears
    # Changes the cache has not read yet: ann's withdrawal, then bob's three changes...
    consents.withdraw(database, clock, ann, campaign_id)
    consents.refuse(database, clock, bob, campaign_id, channel="app")
    consents.refuse(database, clock, bob, campaign_id, channel="web")
    consents.withdraw(database, clock, bob, campaign_id)
    # ...of which the job keeps the last two: ann's withdrawal is gone from the log.
    expire_consents(database=database, clock=clock, changes_kept=2)
    assert database.read(lambda s: s.scalar(select(func.count()).select_from(ConsentChange))) == 2
    assert _reason(database, clock, ann) == "withdrawn"
    assert cache.clears == clears + 1
    assert _reason(database, clock, bob, channel="web") == "refused"


def test_the_expiry_job_keeps_the_recent_changes(
    database: Database, clock: FrozenClock, programme: Programme
) -> None:
    ann = programme.enrol("ann").member_id
    consents.show(database, clock, ann, programme.campaign.id)
    consents.grant(database, clock, ann, programme.campaign.id)

    def logged() -> int:
        return database.read(lambda s: s.scalar(select(func.count()).select_from(ConsentChange)))

    before = logged()
    assert before >= 2  # the enrolment and the grant
    expire_consents(database=database, clock=clock)
    assert logged() == before


def test_a_batch_that_raced_a_newer_one_does_not_store_what_it_read() -> None:
    cache: CheckCache[str] = CheckCache(members=10)
    ann, bob = new_id(), new_id()

    def read(version: int, changed: list[UUID | None], *, since: int) -> repository.CheckVersion:
        return repository.CheckVersion(
            epoch="e",
            version=version,
            changed=changed,
            complete=len(changed) == version - since,
            clean=True,
        )

    first = read(4, [], since=2**62)
    cache.advance(first, cache.since())
    assert cache.store(first, {ann: "ann at 4", bob: "bob at 4"})
    # A slow batch read version 4; a newer batch reads version 5 (ann changed) first.
    since = cache.since()
    cache.advance(read(5, [ann], since=since), since)
    assert cache.get_many([ann, bob]) == {bob: "bob at 4"}
    assert not cache.store(first, {ann: "ann at 4 (stale)"})
    assert cache.get_many([ann]) == {}
    # A gap in the log (pruned), a NULL member, another epoch: everything goes.
    for changed, complete, epoch in (
        ([bob], False, "e"),
        ([None], True, "e"),
        ([], True, "other"),
    ):
        cache.store(read(cache.version, [], since=cache.version), {bob: "bob"})
        assert len(cache) == 1
        since = cache.since()
        cache.advance(
            repository.CheckVersion(
                epoch=epoch,
                version=cache.version + 1,
                changed=changed,
                complete=complete,
                clean=True,
            ),
            since,
        )
        assert len(cache) == 0


def test_a_transaction_that_wrote_neither_uses_nor_feeds_the_cache(
    database: Database, clock: FrozenClock, programme: Programme
) -> None:
    member_id = programme.enrol("ann").member_id
    campaign_id = programme.campaign.id
    consents.show(database, clock, member_id, campaign_id)
    consents.grant(database, clock, member_id, campaign_id)
    assert _reason(database, clock, member_id) == "consent_granted"
    cache = _cache(database)
    version = cache.version

    class Rollback(Exception):
        pass

    def withdraw_and_check(session: Any) -> None:
        consent.withdraw(
            session=session,
            member_id=member_id,
            withdrawal=consents.ConsentWithdrawal.model_validate(
                {
                    "campaign_id": campaign_id,
                    "data_category": PHOTO,
                    "data_use": ADS,
                    "channel": "social",
                    "method": "settings:ad_photo:withdraw",
                }
            ),
            issuer=consents.ISSUER,
            actor="api:test",
            clock=clock,
        )
        decided = consent.check(session=session, check_in=consents.check_in(member_id), clock=clock)
        assert decided.reason == "withdrawn"  # its own write, uncommitted
        raise Rollback

    with pytest.raises(Rollback):
        database.run(withdraw_and_check)
    assert cache.version == version
    assert _reason(database, clock, member_id) == "consent_granted"


def test_no_check_that_starts_after_a_withdrawal_commits_allows(
    database: Database, clock: FrozenClock, programme: Programme
) -> None:
    ids = [programme.enrol(f"member{index}").member_id for index in range(6)]
    campaign_id = programme.campaign.id
    for member_id in ids:
        consents.show(database, clock, member_id, campaign_id)
        consents.grant(database, clock, member_id, campaign_id)
    target = ids[0]
    checks = [consents.check_in(member_id) for member_id in ids]
    withdrawn_at: list[float] = []
    answers: list[tuple[float, str]] = []
    done = threading.Event()
    failures: list[BaseException] = []

    def checker() -> None:
        try:
            while not done.is_set():
                started = time.monotonic()
                decided = _check_many(database, clock, checks, use_cache=True)
                answers.append((started, decided[0].reason.value))
                assert [d.reason.value for d in decided[1:]] == ["consent_granted"] * 5
        except BaseException as error:  # reported by the main thread
            failures.append(error)
            done.set()

    def churn() -> None:
        try:
            for member_id in ids[1:]:  # other members change too, before and after
                consents.refuse(database, clock, member_id, campaign_id, channel="app")
            time.sleep(0.05)
            consents.withdraw(database, clock, target, campaign_id)
            withdrawn_at.append(time.monotonic())
            for member_id in ids[1:]:
                consents.refuse(database, clock, member_id, campaign_id, channel="web")
            time.sleep(0.1)
        except BaseException as error:
            failures.append(error)
        finally:
            done.set()

    threads = [threading.Thread(target=checker) for _ in range(3)]
    threads.append(threading.Thread(target=churn))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not failures, failures
    assert withdrawn_at
    after = [reason for started, reason in answers if started > withdrawn_at[0]]
    assert after, "no check started after the withdrawal"
    assert set(after) == {"withdrawn"}
    assert {reason for started, reason in answers if started <= withdrawn_at[0]} <= {
        "consent_granted",
        "withdrawn",
    }


# --------------------------------------------------------------------------- a random walk


_names = itertools.count()
ACTIONS = ("grant", "refuse", "withdraw", "expire", "erase", "enrol", "register", "declare")


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_answers_with_the_cache_are_the_answers_without_it(
    database: Database, clock: FrozenClock, data: st.DataObject
) -> None:
    programme = consents.launch(database, clock)  # each example its own (the clock moves on)
    campaign_id = programme.campaign.id
    pool = [programme.enrol(f"walker{next(_names)}").member_id for _ in range(3)]
    registered: list[Any] = []
    unknown = new_id()
    for member_id in pool:
        consents.show(database, clock, member_id, campaign_id)
    for _step in range(data.draw(st.integers(4, 12), label="steps")):
        action = data.draw(st.sampled_from(ACTIONS), label="action")
        member_id = data.draw(st.sampled_from(pool), label="member")
        channel = data.draw(st.sampled_from(CHANNELS), label="channel")
        try:
            if action == "grant":
                consents.show(database, clock, member_id, campaign_id)
                consents.grant(database, clock, member_id, campaign_id, channel=channel)
            elif action == "refuse":
                consents.show(database, clock, member_id, campaign_id)
                consents.refuse(database, clock, member_id, campaign_id, channel=channel)
            elif action == "withdraw":
                consents.withdraw(database, clock, member_id, campaign_id, channel=channel)
            elif action == "expire":
                clock.advance(timedelta(days=data.draw(st.sampled_from((1, 90, 200)))))
                if data.draw(st.booleans(), label="run the job"):
                    expire_consents(database=database, clock=clock)
            elif action == "erase":
                database.run(
                    lambda s, m=member_id: privacy.erase_member(
                        session=s, member_id=m, actor="t", clock=clock
                    )
                )
            elif action == "register":
                name = f"walker{next(_names)}"
                registered.append(
                    (
                        name,
                        database.run(
                            lambda s, n=name: members.register_member(
                                session=s, member_in=programme.member(n), keys=KEYS, clock=clock
                            )
                        ).id,
                    )
                )
                pool.append(registered[-1][1])
            elif action == "enrol":
                if registered:
                    name, _id = registered.pop(0)
                else:
                    name = f"walker{next(_names)}"
                pool.append(programme.enrol(name).member_id)
            else:
                days = data.draw(st.sampled_from((90, 120, 183)), label="days")
                consents.redeclare(
                    programme,
                    honest().model_copy(
                        update={"items": [*programme_items(), photo_in_ads(max_days=days)]}
                    ),
                )
        except ParrainError:
            pass  # not allowed in this state (nothing shown, nothing granted, erased...)
        batch = [
            consents.check_in(
                data.draw(st.sampled_from([*pool, unknown]), label="asked"),
                channel=data.draw(st.sampled_from(CHANNELS), label="asked channel"),
                territory=data.draw(st.sampled_from(("GB", "FR")), label="territory"),
                **data.draw(
                    st.sampled_from(
                        (
                            {},
                            {"data_category": USERNAME, "data_use": OPERATIONS},
                            {"data_category": "user.financial", "data_use": OPERATIONS},
                        )
                    ),
                    label="item",
                ),
            )
            for _ in range(data.draw(st.integers(1, 6), label="batch"))
        ]
        cached = _check_many(database, clock, batch, use_cache=True)
        assert cached == _check_many(database, clock, batch, use_cache=False)
        assert cached == _check_many(database, clock, batch, use_cache=True)


def test_the_cache_size_is_a_setting_and_zero_turns_it_off(
    database: Database, clock: FrozenClock, programme: Programme, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PARRAIN_CONSENT_CHECK_CACHE_MEMBERS", "0")
    assert ConsentSettings().check_cache_members == 0
    assert "ADR 25" in (ConsentSettings.model_fields["check_cache_members"].description or "")
    consent.configure_check_cache(members=0)
    member_id = programme.enrol("ann").member_id
    consents.show(database, clock, member_id, programme.campaign.id)
    consents.grant(database, clock, member_id, programme.campaign.id)
    assert database.read(consent.check_cache) is None
    assert _reason(database, clock, member_id) == "consent_granted"
    consents.withdraw(database, clock, member_id, programme.campaign.id)
    assert _reason(database, clock, member_id) == "withdrawn"
