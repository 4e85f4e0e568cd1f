"""The auditor's view: the chain verified (and a break shown), notices with their hashes
(and a changed text caught), a member's consent record, the investigation bundle — each
look at personal data written to the chain — and who may see any of it."""

from __future__ import annotations

import json
from uuid import UUID

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from parrain.audit import service as audit
from parrain.db.session import Database
from parrain.kit.clock import FrozenClock
from parrain.operators.roles import Role
from tests.consent import consents
from tests.referrals.programme import Programme
from tests.web.console.helpers import csrf_of, signed_in_as

HTML = {"accept": "text/html"}


@pytest.fixture
def programme(database: Database, clock: FrozenClock) -> Programme:
    return consents.launch(database, clock)


@pytest.fixture
def member_id(database: Database, clock: FrozenClock, programme: Programme) -> UUID:
    member = programme.enrol("ann").member_id
    campaign_id = programme.campaign.id
    consents.show(database, clock, member, campaign_id)
    consents.grant(database, clock, member, campaign_id)
    consents.withdraw(database, clock, member, campaign_id)
    return member


def _entries(database: Database, action: str) -> list[audit.StoredEntry]:
    return [
        entry
        for entry in database.read(lambda s: audit.list_entries(session=s, limit=10_000))
        if entry.action == action
    ]


def test_the_auditor_sees_the_chain_verified(
    client: TestClient, database: Database, clock: FrozenClock, programme: Programme
) -> None:
    signed_in_as(client, database, clock, Role.AUDITOR)
    page = client.get("/console/audit", headers=HTML)
    assert page.status_code == 200
    assert "The chain is intact." in page.text
    assert '<a href="/console/audit" aria-current="page">Audit</a>' in page.text
    total = database.read(lambda s: audit.verify_chain(session=s)).entries
    assert f"{total} entries were verified just now" in page.text
    assert "campaign.launched" in page.text or "campaign.launch" in page.text


def test_an_edited_entry_is_named_on_the_page(
    client: TestClient, database: Database, clock: FrozenClock, programme: Programme
) -> None:
    signed_in_as(client, database, clock, Role.AUDITOR)
    database.run(
        lambda s: s.execute(text("UPDATE audit_entries SET actor = 'someone:else' WHERE seq = 2"))
    )
    page = client.get("/console/audit", headers=HTML)
    assert "The chain is broken." in page.text
    assert "Entry 2" in page.text


def test_the_notice_register_lists_hashes_and_catches_a_changed_text(
    client: TestClient, database: Database, clock: FrozenClock, programme: Programme
) -> None:
    signed_in_as(client, database, clock, Role.AUDITOR)
    register = client.get("/console/audit/notices", headers=HTML)
    assert register.status_code == 200
    rows = database.read(
        lambda s: s.execute(
            text("SELECT declaration_id, language, sha256 FROM consent_notices")
        ).all()
    )
    assert rows
    for _declaration, _language, sha256 in rows:
        assert sha256 in register.text
    declaration_id, language, sha256 = rows[0]
    address = f"/console/audit/notices/{UUID(str(declaration_id))}/{language}"
    notice = client.get(address, headers=HTML)
    assert notice.status_code == 200
    assert "still has the hash recorded" in notice.text
    assert notice.text.count(sha256) == 2  # recorded, and recomputed now
    database.run(
        lambda s: s.execute(
            text("UPDATE consent_notices SET content = content || ' (edited)' WHERE sha256 = :h"),
            {"h": sha256},
        )
    )
    changed = client.get(address, headers=HTML)
    assert "does not match the hash recorded" in changed.text


def test_a_consent_record_is_shown_and_the_look_is_audited(
    client: TestClient, database: Database, clock: FrozenClock, member_id: UUID
) -> None:
    username = signed_in_as(client, database, clock, Role.AUDITOR)
    form = client.get("/console/audit/consent", headers=HTML)
    assert form.status_code == 200
    assert _entries(database, "investigation.consent_record_viewed") == []
    page = client.get(f"/console/audit/consent?member={member_id}", headers=HTML)
    assert page.status_code == 200
    for action in ("shown", "granted", "withdrawn"):
        assert f"<strong>{action}</strong>" in page.text
    assert "2 receipts" in page.text
    [looked] = _entries(database, "investigation.consent_record_viewed")
    assert looked.subject == f"member:{member_id}"
    assert username in looked.actor
    assert "consent.granted" in page.text  # the audit entries about the member


def test_a_bad_or_unknown_pseudonym_is_explained(
    client: TestClient, database: Database, clock: FrozenClock
) -> None:
    signed_in_as(client, database, clock, Role.AUDITOR)
    bad = client.get("/console/audit/consent?member=ann@example.org", headers=HTML)
    assert bad.status_code == 422
    assert "invalid_member_pseudonym" in bad.text
    unknown = client.get(
        "/console/audit/consent?member=0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", headers=HTML
    )
    assert unknown.status_code == 404
    assert _entries(database, "investigation.consent_record_viewed") == []


def test_the_bundle_holds_the_evidence_and_is_audited(
    client: TestClient, database: Database, clock: FrozenClock, member_id: UUID
) -> None:
    signed_in_as(client, database, clock, Role.AUDITOR)
    token = csrf_of(client.get("/console/audit", headers=HTML))
    answer = client.post(
        "/console/audit/bundle", data={"csrf_token": token, "member": str(member_id)}
    )
    assert answer.status_code == 200
    assert answer.headers["content-disposition"].startswith("attachment; filename=")
    bundle = json.loads(answer.text)
    assert bundle["format"] == "parrain.investigation/1"
    assert bundle["audit_chain"]["intact"] is True
    assert bundle["request_entry"]["action"] == "investigation.bundle_exported"
    assert bundle["notices"]
    assert all(notice["sha256_matches"] for notice in bundle["notices"])
    actions = [event["action"] for event in bundle["member"]["events"]]
    assert actions[0] == "shown"  # the notice, for each optional item and channel
    assert [action for action in actions if action != "shown"] == ["granted", "withdrawn"]
    assert len(bundle["member"]["receipts"]) == 2
    assert bundle["receipt_public_key"]
    assert len(_entries(database, "investigation.bundle_exported")) == 1
    # Without a member: the chain and the notices only.
    general = client.post("/console/audit/bundle", data={"csrf_token": token})
    assert json.loads(general.text)["member"] is None


def test_the_bundle_needs_the_form_token(
    client: TestClient, database: Database, clock: FrozenClock
) -> None:
    signed_in_as(client, database, clock, Role.AUDITOR)
    refused = client.post("/console/audit/bundle", data={}, headers=HTML)
    assert refused.status_code == 403
    assert _entries(database, "investigation.bundle_exported") == []


@pytest.mark.parametrize("role", [Role.MARKETER, Role.FINANCE, Role.REVIEWER])
def test_other_roles_cannot_open_the_audit_view(
    client: TestClient, database: Database, clock: FrozenClock, role: Role
) -> None:
    signed_in_as(client, database, clock, role)
    assert 'href="/console/audit"' not in client.get("/console", headers=HTML).text
    for address in ("/console/audit", "/console/audit/notices", "/console/audit/consent"):
        assert client.get(address, headers=HTML).status_code == 403


def test_without_a_session_the_audit_view_asks_to_sign_in(client: TestClient) -> None:
    answer = client.get("/console/audit", headers=HTML)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/console/sign-in")


def test_the_audit_view_speaks_french(
    client: TestClient, database: Database, clock: FrozenClock, member_id: UUID
) -> None:
    signed_in_as(client, database, clock, Role.AUDITOR)
    chain = client.get("/console/audit?lang=fr", headers=HTML)
    assert "La chaîne est intacte." in chain.text
    assert "entrées viennent d" in chain.text
    record = client.get(f"/console/audit/consent?member={member_id}", headers=HTML)
    assert "2 reçus (accords et retraits)" in record.text
