"""Declarations in the database: versions kept as written, notices hashed, the launch gate."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from parrain.audit import service as audit
from parrain.campaigns import service as campaigns
from parrain.campaigns.errors import CampaignNotFound, LaunchGateFailed
from parrain.campaigns.gate import registered_checks
from parrain.campaigns.schemas import CampaignRead, CampaignStatus
from parrain.consent import notices
from parrain.consent import service as consent
from parrain.consent.errors import (
    DeclarationLocked,
    DeclarationNotFound,
    DeclarationRefused,
    UnknownTaxonomyKey,
)
from parrain.consent.models import ConsentNotice
from parrain.consent.policy import PolicyLimits
from parrain.consent.schemas import (
    DeclarationCreate,
    DeclarationRead,
    NoticeLanguage,
    NoticeRead,
)
from parrain.db.session import Database
from parrain.kit.clock import FrozenClock
from tests.consent.declarations import (
    ACTOR,
    clause_of_the_case,
    draft_campaign,
    honest,
    photo_in_ads,
    programme_items,
)

EN, FR = NoticeLanguage.EN, NoticeLanguage.FR


def declare(
    database: Database,
    clock: FrozenClock,
    campaign_id: uuid.UUID,
    declaration_in: DeclarationCreate,
) -> DeclarationRead:
    return database.run(
        lambda s: consent.declare(
            session=s,
            campaign_id=campaign_id,
            declaration_in=declaration_in,
            actor=ACTOR,
            clock=clock,
        )
    )


def notice(
    database: Database, campaign_id: uuid.UUID, language: NoticeLanguage, version: int | None = None
) -> NoticeRead:
    return database.read(
        lambda s: consent.get_notice(
            session=s, campaign_id=campaign_id, language=language, version=version
        )
    )


def act(database: Database, clock: FrozenClock, action: str, campaign_id: uuid.UUID) -> None:
    operation = getattr(campaigns, action)
    database.run(lambda s: operation(session=s, campaign_id=campaign_id, actor=ACTOR, clock=clock))


def status(database: Database, campaign_id: uuid.UUID) -> CampaignStatus:
    return database.read(lambda s: campaigns.get(session=s, campaign_id=campaign_id)).status


def consent_entries(database: Database) -> list[audit.StoredEntry]:
    entries = database.read(lambda s: audit.list_entries(session=s, limit=1000))
    return [entry for entry in entries if entry.action == "consent.declared"]


@pytest.fixture
def draft(database: Database, clock: FrozenClock) -> CampaignRead:
    return draft_campaign(database, clock)


def test_each_change_is_a_new_version_and_the_old_one_stays_as_it_was(
    database: Database, clock: FrozenClock, draft: CampaignRead
) -> None:
    first = declare(database, clock, draft.id, DeclarationCreate(items=programme_items()))
    first_notices = {n.language: notice(database, draft.id, n.language) for n in first.notices}
    clock.advance(timedelta(hours=1))

    second = declare(database, clock, draft.id, honest())

    assert (first.version, second.version) == (1, 2)
    assert second.items == honest().items
    assert database.read(lambda s: consent.get_declaration(session=s, campaign_id=draft.id)) == (
        second
    )
    again = database.read(
        lambda s: consent.get_declaration(session=s, campaign_id=draft.id, version=1)
    )
    assert again == first
    for language in (EN, FR):
        old = notice(database, draft.id, language, version=1)
        new = notice(database, draft.id, language)
        assert old == first_notices[language]
        assert new.version == 2
        assert new.sha256 != old.sha256
        assert "Only if you" in new.content or "Seulement si" in new.content
        assert new.rendered_at == clock.now()


def test_a_notice_is_stored_with_the_hash_of_its_bytes_and_renders_again_the_same(
    database: Database, clock: FrozenClock, draft: CampaignRead
) -> None:
    declared = declare(database, clock, draft.id, honest())

    assert [n.language for n in declared.notices] == [EN, FR]
    for summary in declared.notices:
        stored = notice(database, draft.id, summary.language)
        assert stored.sha256 == summary.sha256
        assert stored.sha256 == hashlib.sha256(stored.content.encode("utf-8")).hexdigest()
        rendered = notices.render(
            campaign_name=draft.name,
            market=draft.market,
            version=1,
            items=honest().items,
            language=summary.language,
        )
        assert rendered.content == stored.content
        assert rendered.sha256 == stored.sha256
    formulas = {n.language: (n.readability.formula, n.readability.score) for n in declared.notices}
    assert formulas[EN][0] == "flesch_reading_ease"
    assert formulas[FR][0] == "kandel_moles"
    assert all(score >= 60 for _formula, score in formulas.values())


def test_the_same_declaration_again_records_nothing(
    database: Database, clock: FrozenClock, draft: CampaignRead
) -> None:
    first = declare(database, clock, draft.id, honest())
    again = declare(database, clock, draft.id, honest())
    assert again == first
    assert len(consent_entries(database)) == 1


def test_each_version_is_in_the_audit_chain_with_its_notice_hashes(
    database: Database, clock: FrozenClock, draft: CampaignRead
) -> None:
    declared = declare(database, clock, draft.id, honest())

    [entry] = consent_entries(database)
    assert entry.subject == f"campaign:{draft.id}"
    assert entry.actor == ACTOR
    details = json.loads(entry.details)
    assert details["version"] == 1
    assert details["declaration_id"] == str(declared.id)
    assert details["notices"] == {n.language.value: n.sha256 for n in declared.notices}
    assert details["items"][3] == {
        "data_category": "user.content.self_image",
        "data_use": "marketing.advertising.first_party",
        "legal_basis": "consent",
    }
    assert database.read(lambda s: audit.verify_chain(session=s)).intact


def test_stored_versions_and_notices_cannot_be_changed_through_the_orm(
    database: Database, clock: FrozenClock, draft: CampaignRead
) -> None:
    declare(database, clock, draft.id, honest())

    def edit(session: Session) -> None:
        row = session.scalars(select(ConsentNotice)).first()
        assert row is not None
        row.content = "We may use your data for anything."
        session.flush()

    with pytest.raises(RuntimeError, match="written once"):
        database.run(edit)
    assert "anything" not in notice(database, draft.id, EN).content


def test_unknown_or_deprecated_keys_are_refused_by_name_and_nothing_is_written(
    database: Database, clock: FrozenClock, draft: CampaignRead
) -> None:
    declaration = DeclarationCreate(
        items=[
            *programme_items(),
            photo_in_ads(data_category="user.shoe_size"),
            photo_in_ads(data_use="personalize.profiling"),
        ]
    )
    with pytest.raises(UnknownTaxonomyKey) as refused:
        declare(database, clock, draft.id, declaration)

    assert refused.value.code == "unknown_taxonomy_key"
    assert refused.value.status_code == 422
    assert [(k["item"], k["field"], k["key"]) for k in refused.value.details["keys"]] == [
        (4, "data_category", "user.shoe_size"),
        (5, "data_use", "personalize.profiling"),
    ]
    assert "'user.shoe_size' is not a data category of fideslang" in refused.value.message
    assert "use 'personalize.content.profiling'" in refused.value.message
    assert consent_entries(database) == []
    with pytest.raises(DeclarationNotFound):
        database.read(lambda s: consent.get_declaration(session=s, campaign_id=draft.id))


def test_unknown_campaigns_and_versions_are_not_found(
    database: Database, clock: FrozenClock, draft: CampaignRead
) -> None:
    with pytest.raises(CampaignNotFound):
        declare(database, clock, uuid.uuid4(), honest())
    with pytest.raises(DeclarationNotFound) as missing:
        notice(database, draft.id, EN)
    assert missing.value.code == "declaration_not_found"
    declare(database, clock, draft.id, honest())
    with pytest.raises(DeclarationNotFound, match="no declaration version 2"):
        notice(database, draft.id, EN, version=2)


def test_the_launch_gate_refuses_a_campaign_without_a_declaration(
    database: Database, clock: FrozenClock, draft: CampaignRead
) -> None:
    assert consent.GATE_CHECK in registered_checks()

    with pytest.raises(LaunchGateFailed) as refused:
        act(database, clock, "launch", draft.id)

    assert refused.value.details["findings"] == [
        {
            "check": "consent_declaration.declaration_missing",
            "message": "the campaign has no data-use declaration: declare what data it uses, "
            "why, where, by whom and for how long before it launches (GDPR Art. 13(1)(c))",
        }
    ]
    assert status(database, draft.id) is CampaignStatus.DRAFT


def test_the_launch_gate_names_each_problem_of_a_bad_declaration(
    database: Database, clock: FrozenClock, draft: CampaignRead
) -> None:
    declare(database, clock, draft.id, clause_of_the_case())

    with pytest.raises(LaunchGateFailed) as refused:
        act(database, clock, "launch", draft.id)

    checks = [finding["check"] for finding in refused.value.details["findings"]]
    assert checks == [
        "consent_declaration.consent_bundled",
        "consent_declaration.controller_unnamed",
        "consent_declaration.channel_any_media",
        "consent_declaration.territory_worldwide",
        "consent_declaration.duration_open_ended",
        "consent_declaration.special_category",
        "consent_declaration.special_category",
    ]
    assert "(GDPR Art. 7(4); items 1, 2, 3, 4, 5, 6, 7)" in refused.value.message
    assert status(database, draft.id) is CampaignStatus.DRAFT


def test_a_good_declaration_launches_and_a_resume_runs_the_check_again(
    database: Database, clock: FrozenClock, draft: CampaignRead
) -> None:
    declare(database, clock, draft.id, honest())
    act(database, clock, "launch", draft.id)
    assert status(database, draft.id) is CampaignStatus.LIVE

    act(database, clock, "pause", draft.id)
    declare(database, clock, draft.id, clause_of_the_case())  # a paused campaign may be edited
    with pytest.raises(LaunchGateFailed):
        act(database, clock, "resume", draft.id)
    assert status(database, draft.id) is CampaignStatus.PAUSED
    declare(database, clock, draft.id, honest())  # version 3: as version 1
    act(database, clock, "resume", draft.id)
    assert status(database, draft.id) is CampaignStatus.LIVE
    versions = [json.loads(e.details)["version"] for e in consent_entries(database)]
    assert versions == [1, 2, 3]


def test_a_live_campaign_only_takes_a_declaration_that_passes(
    database: Database, clock: FrozenClock, draft: CampaignRead
) -> None:
    declare(database, clock, draft.id, DeclarationCreate(items=programme_items()))
    act(database, clock, "launch", draft.id)

    with pytest.raises(DeclarationRefused) as refused:
        declare(database, clock, draft.id, clause_of_the_case())
    assert refused.value.status_code == 409
    assert refused.value.details["findings"][0]["code"] == "consent_bundled"
    assert database.read(lambda s: consent.latest_version(session=s, campaign_id=draft.id)) == 1

    assert declare(database, clock, draft.id, honest()).version == 2


def test_an_ended_campaign_keeps_its_declaration(
    database: Database, clock: FrozenClock, draft: CampaignRead
) -> None:
    declare(database, clock, draft.id, honest())
    act(database, clock, "launch", draft.id)
    act(database, clock, "end", draft.id)
    with pytest.raises(DeclarationLocked):
        declare(database, clock, draft.id, DeclarationCreate(items=programme_items()))


def test_the_policy_can_be_checked_without_launching(
    database: Database, clock: FrozenClock, draft: CampaignRead
) -> None:
    def check(limits: PolicyLimits = PolicyLimits()) -> tuple[int | None, bool, list[str]]:
        report = database.read(
            lambda s: consent.check_policy(session=s, campaign_id=draft.id, limits=limits)
        )
        return report.version, report.passes, [f.code for f in report.findings]

    assert check() == (None, False, ["declaration_missing"])
    declare(database, clock, draft.id, honest())
    assert check() == (1, True, [])
    assert check(PolicyLimits(max_advertising_days=30)) == (1, False, ["duration_too_long"])
    assert status(database, draft.id) is CampaignStatus.DRAFT


def test_the_gate_reads_its_limits_from_the_environment(
    database: Database, clock: FrozenClock, draft: CampaignRead, monkeypatch: pytest.MonkeyPatch
) -> None:
    declare(database, clock, draft.id, honest())  # a 183-day advertising consent
    monkeypatch.setenv("PARRAIN_CONSENT_MAX_ADVERTISING_DAYS", "90")

    with pytest.raises(LaunchGateFailed) as refused:
        act(database, clock, "launch", draft.id)

    [finding] = refused.value.details["findings"]
    assert finding["check"] == "consent_declaration.duration_too_long"
    assert "longer than the 90 days allowed" in finding["message"]
    monkeypatch.delenv("PARRAIN_CONSENT_MAX_ADVERTISING_DAYS")
    act(database, clock, "launch", draft.id)
    assert status(database, draft.id) is CampaignStatus.LIVE


def test_the_programme_defaults_are_declared_once(
    database: Database, clock: FrozenClock, draft: CampaignRead
) -> None:
    def defaults() -> DeclarationRead:
        return database.run(
            lambda s: consent.declare_programme_defaults(
                session=s,
                campaign_id=draft.id,
                controller="Example Marketplace Ltd",
                actor=ACTOR,
                clock=clock,
            )
        )

    first = defaults()
    assert defaults() == first
    assert [(i.data_category, i.data_use, i.legal_basis.value) for i in first.items] == [
        ("user.account.username", "essential.service.operations", "programme"),
        ("user.content.self_image", "essential.service.operations", "programme"),
        ("user.contact.email", "essential.service.payment_processing", "programme"),
    ]
    assert {tuple(i.territories) for i in first.items} == {("GB",)}
