"""Consent events and the check, in process: a notice shown, a grant (with its receipt), the
check allowing, a withdrawal the very next check sees, with its takedown message; expiry;
a new notice version; what cannot be granted; many threads on one consent."""

from __future__ import annotations

import itertools
import threading
from datetime import timedelta
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from parrain.campaigns.errors import CampaignNotFound
from parrain.consent import service as consent
from parrain.consent.errors import (
    ChannelNotDeclared,
    ConsentAlreadyGranted,
    ConsentItemNotFound,
    ConsentMemberErased,
    ConsentNotGranted,
    NoticeNotShown,
    ProgrammeUseNotOptional,
)
from parrain.consent.models import ConsentEvent, ConsentGrant
from parrain.consent.receipts import ReceiptSignatureInvalid, verify_receipt
from parrain.consent.schemas import NoticeLanguage
from parrain.db.session import Database
from parrain.kit.clock import FrozenClock
from parrain.kit.crypto import verification_keys
from parrain.kit.ids import new_id
from parrain.members.errors import MemberNotFound
from parrain.outbox.models import OutboxMessage
from parrain.privacy import service as privacy
from parrain.worker.jobs import expire_consents
from tests.consent import consents
from tests.consent.consents import ADS, OPERATIONS, PHOTO, USERNAME
from tests.consent.declarations import honest, photo_in_ads, programme_items
from tests.referrals.programme import Programme


@pytest.fixture
def programme(database: Database, clock: FrozenClock) -> Programme:
    return consents.launch(database, clock)


@pytest.fixture
def member_id(programme: Programme) -> UUID:
    return programme.enrol("ann").member_id


def _events(database: Database, member_id: UUID) -> list[ConsentEvent]:
    return database.read(lambda s: consent.history(session=s, member_id=member_id))


def _outbox(database: Database) -> list[tuple[str, dict[str, Any]]]:
    def work(session: Session) -> list[tuple[str, dict[str, Any]]]:
        rows = session.scalars(select(OutboxMessage).order_by(OutboxMessage.created_at))
        return [(row.topic, row.payload) for row in rows]

    return database.read(work)


def _grant_row(database: Database, member_id: UUID) -> ConsentGrant:
    def work(session: Session) -> ConsentGrant:
        row = session.scalars(select(ConsentGrant).where(ConsentGrant.member_id == member_id))
        found = row.one()
        session.expunge(found)
        return found

    return database.read(work)


def test_grant_allows_and_the_very_next_check_after_a_withdrawal_denies(
    database: Database, clock: FrozenClock, programme: Programme, member_id: UUID
) -> None:
    campaign_id = programme.campaign.id
    assert consents.check(database, clock, member_id).reason == "no_consent"

    shown = consents.show(database, clock, member_id, campaign_id)
    assert shown.notice.version == 2
    assert [(e.action, e.channel) for e in shown.events] == [
        ("shown", "app"),
        ("shown", "social"),
        ("shown", "web"),
    ]
    assert {e.notice_sha256 for e in shown.events} == {shown.notice.sha256}
    # Shown is not granted: every optional use starts unticked.
    assert consents.check(database, clock, member_id).decision == "deny"

    granted = consents.grant(database, clock, member_id, campaign_id)
    assert granted.event.action == "granted"
    assert granted.event.notice_sha256 == shown.notice.sha256
    assert granted.event.method == "switch:ad_photo:on"
    assert granted.event.expires_at == clock.now() + timedelta(days=183)
    allowed = consents.check(database, clock, member_id)
    assert (allowed.decision, allowed.reason) == ("allow", "consent_granted")
    assert allowed.notice_sha256 == shown.notice.sha256
    assert allowed.declaration_version == 2
    assert allowed.campaign_id == campaign_id
    # Only the channel and territories granted.
    assert consents.check(database, clock, member_id, channel="app").reason == (
        "channel_not_covered"
    )
    assert consents.check(database, clock, member_id, territory="FR").reason == (
        "territory_not_covered"
    )

    clock.advance(timedelta(seconds=1))
    withdrawn = consents.withdraw(database, clock, member_id, campaign_id)
    assert withdrawn.event.action == "withdrawn"
    assert withdrawn.event.notice_sha256 == shown.notice.sha256
    denied = consents.check(database, clock, member_id)
    assert (denied.decision, denied.reason) == ("deny", "withdrawn")

    [(topic, payload)] = _outbox(database)
    assert topic == "consent.withdrawn"
    assert payload == {
        "event_id": str(withdrawn.event.id),
        "member_id": str(member_id),
        "campaign_id": str(campaign_id),
        "data_category": PHOTO,
        "data_use": ADS,
        "channel": "social",
        "withdrawn_at": clock.now().isoformat(),
    }
    assert [e.action for e in _events(database, member_id)] == [
        "shown",
        "shown",
        "shown",
        "granted",
        "withdrawn",
    ]
    row = _grant_row(database, member_id)
    assert (row.status, row.last_event_id) == ("withdrawn", withdrawn.event.id)
    with pytest.raises(ConsentNotGranted):
        consents.withdraw(database, clock, member_id, campaign_id)


def test_a_receipt_verifies_offline_and_one_changed_byte_fails(
    database: Database, clock: FrozenClock, programme: Programme, member_id: UUID
) -> None:
    consents.show(database, clock, member_id, programme.campaign.id)
    granted = consents.grant(database, clock, member_id, programme.campaign.id)
    assert granted.receipt is not None
    keys = verification_keys(consents.SIGNING_KEY.public_key)
    verified = verify_receipt(granted.receipt.jws, keys)
    assert verified.receipt.event_id == granted.event.id
    assert verified.receipt.member_id == member_id
    assert verified.receipt.notice_sha256 == granted.event.notice_sha256
    assert verified.receipt.controllers[0].name == "Example Marketplace Ltd"
    assert verified.claims["parrain"]["action"] == "granted"
    assert "Example Marketplace Ltd" in verified.summary

    header, payload, signature = granted.receipt.jws.split(".")
    flipped = payload[:10] + ("A" if payload[10] != "A" else "B") + payload[11:]
    with pytest.raises(ReceiptSignatureInvalid):
        verify_receipt(f"{header}.{flipped}.{signature}", keys)

    withdrawn = consents.withdraw(database, clock, member_id, programme.campaign.id)
    assert withdrawn.receipt is not None
    assert verify_receipt(withdrawn.receipt.jws, keys).claims["parrain"]["action"] == "withdrawn"


def test_a_grant_needs_the_same_notice_shown_first(
    database: Database, clock: FrozenClock, programme: Programme, member_id: UUID
) -> None:
    with pytest.raises(NoticeNotShown) as refused:
        consents.grant(database, clock, member_id, programme.campaign.id)
    assert refused.value.code == "notice_not_shown"
    assert _events(database, member_id) == []
    consents.show(database, clock, member_id, programme.campaign.id, language="fr")
    with pytest.raises(NoticeNotShown):  # the French notice, not the English one
        consents.grant(database, clock, member_id, programme.campaign.id)
    granted = consents.grant(database, clock, member_id, programme.campaign.id, language="fr")
    assert granted.event.language == "fr"


def test_what_cannot_be_granted_is_refused_with_a_clear_code(
    database: Database, clock: FrozenClock, programme: Programme, member_id: UUID
) -> None:
    campaign_id = programme.campaign.id
    consents.show(database, clock, member_id, campaign_id)
    with pytest.raises(ProgrammeUseNotOptional) as programme_use:
        consents.grant(
            database, clock, member_id, campaign_id, data_category=USERNAME, data_use=OPERATIONS
        )
    assert programme_use.value.code == "programme_use_not_optional"
    with pytest.raises(ProgrammeUseNotOptional):
        consents.withdraw(
            database, clock, member_id, campaign_id, data_category=USERNAME, data_use=OPERATIONS
        )
    with pytest.raises(ConsentItemNotFound):
        consents.grant(database, clock, member_id, campaign_id, data_category="user.name")
    with pytest.raises(ChannelNotDeclared):
        consents.grant(database, clock, member_id, campaign_id, channel="tv")
    with pytest.raises(CampaignNotFound):
        consents.grant(database, clock, member_id, new_id())
    with pytest.raises(MemberNotFound):
        consents.grant(database, clock, new_id(), campaign_id)
    with pytest.raises(ConsentNotGranted):
        consents.withdraw(database, clock, member_id, campaign_id)
    assert [e.action for e in _events(database, member_id)] == ["shown"] * 3


def test_a_refusal_denies_and_a_granted_consent_is_withdrawn_not_refused(
    database: Database, clock: FrozenClock, programme: Programme, member_id: UUID
) -> None:
    campaign_id = programme.campaign.id
    refused = consents.refuse(database, clock, member_id, campaign_id)
    assert (refused.event.action, refused.receipt) == ("refused", None)
    assert consents.check(database, clock, member_id).reason == "refused"
    consents.show(database, clock, member_id, campaign_id)
    consents.grant(database, clock, member_id, campaign_id)
    with pytest.raises(ConsentAlreadyGranted):
        consents.refuse(database, clock, member_id, campaign_id)
    assert consents.check(database, clock, member_id).reason == "consent_granted"


def test_programme_uses_are_allowed_on_their_declared_channels_and_territories(
    database: Database, clock: FrozenClock, programme: Programme, member_id: UUID
) -> None:
    allowed = consents.check(
        database, clock, member_id, data_category=USERNAME, data_use=OPERATIONS, channel="app"
    )
    assert (allowed.decision, allowed.reason) == ("allow", "programme_use")
    assert allowed.declaration_version == 2
    assert allowed.campaign_id == programme.campaign.id
    assert allowed.notice_sha256 is not None
    for changes, reason in (
        ({"channel": "social"}, "channel_not_covered"),
        ({"channel": "app", "territory": "FR"}, "territory_not_covered"),
    ):
        decided = consents.check(
            database, clock, member_id, data_category=USERNAME, data_use=OPERATIONS, **changes
        )
        assert (decided.decision, decided.reason) == ("deny", reason)
    # A member who never enrolled is not in the programme.
    friend = programme.enrol("bob").member_id
    assert consents.check(database, clock, friend).reason == "no_consent"
    assert consents.check(database, clock, new_id()).reason == "member_unknown"


def test_an_erased_member_is_denied_and_nothing_more_is_recorded(
    database: Database, clock: FrozenClock, programme: Programme, member_id: UUID
) -> None:
    consents.show(database, clock, member_id, programme.campaign.id)
    consents.grant(database, clock, member_id, programme.campaign.id)
    database.run(
        lambda s: privacy.erase_member(session=s, member_id=member_id, actor="t", clock=clock)
    )
    assert consents.check(database, clock, member_id).reason == "member_erased"
    with pytest.raises(ConsentMemberErased):
        consents.show(database, clock, member_id, programme.campaign.id)


def test_a_batch_answers_like_single_checks_in_order(
    database: Database, clock: FrozenClock, programme: Programme, member_id: UUID
) -> None:
    consents.show(database, clock, member_id, programme.campaign.id)
    consents.grant(database, clock, member_id, programme.campaign.id)
    other = programme.enrol("bob").member_id
    asked = [
        consents.check_in(member_id),
        consents.check_in(other),
        consents.check_in(member_id, channel="web"),
        consents.check_in(new_id()),
        consents.check_in(other, data_category=USERNAME, data_use=OPERATIONS, channel="web"),
        consents.check_in(member_id, at=clock.now() + timedelta(days=200)),
    ]
    batch = database.read(lambda s: consent.check_many(session=s, checks=asked, clock=clock))
    assert [d.reason for d in batch] == [
        "consent_granted",
        "no_consent",
        "channel_not_covered",
        "member_unknown",
        "programme_use",
        "expired",
    ]
    for one, decided in zip(asked, batch, strict=True):
        single = database.read(lambda s, c=one: consent.check(session=s, check_in=c, clock=clock))
        assert single == decided


def test_expiry_prompts_renewal_then_denies_and_the_job_records_it(
    database: Database, clock: FrozenClock, programme: Programme, member_id: UUID
) -> None:
    campaign_id = programme.campaign.id
    consents.show(database, clock, member_id, campaign_id)
    granted = consents.grant(database, clock, member_id, campaign_id)
    expires_at = granted.event.expires_at
    assert expires_at is not None

    def state() -> tuple[str, bool]:
        read = database.read(
            lambda s: consent.member_consents(session=s, member_id=member_id, clock=clock)
        )
        [item] = [i for i in read.items if i.channel == "social"]
        return item.status.value, item.renewal_due

    assert state() == ("granted", False)
    clock.set(expires_at - timedelta(days=10))
    assert state() == ("renewal_due", True)
    assert consents.check(database, clock, member_id).reason == "consent_granted"

    clock.set(expires_at)
    assert consents.check(database, clock, member_id).reason == "expired"  # before the job
    assert state() == ("expired", True)
    assert expire_consents(database=database, clock=clock) == 1
    assert expire_consents(database=database, clock=clock) == 0
    assert [e.action for e in _events(database, member_id)][-1] == "expired"
    [(topic, payload)] = _outbox(database)
    assert topic == "consent.expired"
    assert payload["member_id"] == str(member_id)
    assert payload["expired_at"] == expires_at.isoformat()
    assert consents.check(database, clock, member_id).reason == "expired"
    assert _grant_row(database, member_id).status == "expired"

    # Renewal: shown again, granted again.
    consents.show(database, clock, member_id, campaign_id)
    consents.grant(database, clock, member_id, campaign_id)
    assert consents.check(database, clock, member_id).reason == "consent_granted"


def test_a_new_notice_version_keeps_old_consents_on_the_old_hash(
    database: Database, clock: FrozenClock, programme: Programme, member_id: UUID
) -> None:
    campaign_id = programme.campaign.id
    old = consents.show(database, clock, member_id, campaign_id).notice
    consents.grant(database, clock, member_id, campaign_id)

    version = consents.redeclare(
        programme,
        honest().model_copy(update={"items": [*programme_items(), photo_in_ads(max_days=90)]}),
    )
    new = database.read(
        lambda s: consent.get_notice(session=s, campaign_id=campaign_id, language=NoticeLanguage.EN)
    )
    assert (version, new.version) == (3, 3)
    assert new.sha256 != old.sha256

    allowed = consents.check(database, clock, member_id)
    assert (allowed.reason, allowed.notice_sha256, allowed.declaration_version) == (
        "consent_granted",
        old.sha256,
        2,
    )
    assert [e.notice_sha256 for e in _events(database, member_id)] == [old.sha256] * 4
    with pytest.raises(NoticeNotShown):  # shown version 2, not version 3
        consents.grant(database, clock, member_id, campaign_id)
    consents.show(database, clock, member_id, campaign_id)
    regranted = consents.grant(database, clock, member_id, campaign_id)
    assert regranted.event.notice_sha256 == new.sha256
    assert regranted.event.declaration_version == 3
    assert regranted.event.expires_at == clock.now() + timedelta(days=90)
    assert consents.check(database, clock, member_id).notice_sha256 == new.sha256
    assert [e.notice_sha256 for e in _events(database, member_id)][:4] == [old.sha256] * 4


def test_many_threads_on_one_consent_leave_the_state_equal_to_the_last_event(
    database: Database, clock: FrozenClock, programme: Programme, member_id: UUID
) -> None:
    campaign_id = programme.campaign.id
    consents.show(database, clock, member_id, campaign_id)
    problems: list[BaseException] = []

    def worker(index: int) -> None:
        for round_ in range(6):
            try:
                if (index + round_) % 2:
                    consents.grant(database, clock, member_id, campaign_id)
                else:
                    consents.withdraw(database, clock, member_id, campaign_id)
            except ConsentNotGranted:
                pass
            except BaseException as error:
                problems.append(error)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert problems == []

    events = [e for e in _events(database, member_id) if e.action != "shown"]
    assert events
    row = _grant_row(database, member_id)
    last = max(events, key=lambda e: e.id)  # ids are time-ordered, written under the row lock
    assert row.last_event_id == last.id
    assert row.status == last.action
    assert (row.status == "granted") == (row.expires_at is not None)
    # Grants and withdrawals alternate: never two withdrawals in a row.
    actions = [e.action for e in sorted(events, key=lambda e: e.id)]
    assert all(not (a == b == "withdrawn") for a, b in itertools.pairwise(actions))
    expected = "consent_granted" if row.status == "granted" else "withdrawn"
    assert consents.check(database, clock, member_id).reason == expected
    withdrawals = sum(1 for a in actions if a == "withdrawn")
    assert len([t for t, _p in _outbox(database) if t == "consent.withdrawn"]) == withdrawals
