"""``GET /v1/members/{id}/export`` and ``POST /v1/members/{id}/erasure``: an integration key
with the ``privacy`` scope, the person's data for them, erasure that keeps the books."""

from __future__ import annotations

from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from parrain.audit import service as audit
from parrain.db.session import Database
from parrain.kit.clock import FrozenClock
from tests.referrals.programme import Programme, friend_names
from tests.web.helpers import api_key_headers, error_of


@pytest.fixture
def member_id(database: Database, clock: FrozenClock) -> UUID:
    programme = Programme.launch(database, clock)
    enrolment = programme.enrol("ann")
    programme.invite_many(enrolment, friend_names("friend", 5))
    return enrolment.member_id


def test_a_member_exports_then_is_erased_and_the_export_says_so(
    client: TestClient, database: Database, clock: FrozenClock, member_id: UUID
) -> None:
    key = api_key_headers(database, clock, "privacy")
    response = client.get(f"/v1/members/{member_id}/export", headers=key)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["format"] == "parrain.member-export/1"
    assert body["personal_data"]["email"] == "ann@example.org"
    assert body["enrolments"][0]["prizes"][0]["status"] == "held"

    erased = client.post(f"/v1/members/{member_id}/erasure", headers=key)
    assert erased.status_code == 200, erased.text
    assert erased.json()["already_erased"] is False
    again = client.post(f"/v1/members/{member_id}/erasure", headers=key)
    assert again.json()["already_erased"] is True
    assert again.json()["erased_at"] == erased.json()["erased_at"]

    after = client.get(f"/v1/members/{member_id}/export", headers=key).json()
    assert after["erased"] is True
    assert after["personal_data"] is None
    assert "ann@example.org" not in str(after)
    assert after["enrolments"][0]["prizes"][0]["status"] == "held"  # the prize is kept

    actions = database.read(
        lambda s: [
            (e.actor.startswith("api_key:"), e.action)
            for e in audit.list_entries(session=s, subject=f"member:{member_id}")
        ]
    )
    assert actions == [
        (True, "member.exported"),
        (True, "member.erased"),
        (True, "member.exported"),
    ]


def test_privacy_needs_a_privacy_key_and_a_known_member(
    client: TestClient, database: Database, clock: FrozenClock, member_id: UUID
) -> None:
    path = f"/v1/members/{member_id}/export"
    assert error_of(client.get(path), 401)["code"] == "invalid_api_key"
    events_only = api_key_headers(database, clock, "events")
    assert error_of(client.get(path, headers=events_only), 403)["code"] == "api_key_scope_denied"
    assert (
        error_of(client.post(f"/v1/members/{member_id}/erasure", headers=events_only), 403)["code"]
        == "api_key_scope_denied"
    )
    key = api_key_headers(database, clock, "privacy")
    unknown = client.get(f"/v1/members/{UUID(int=5)}/export", headers=key)
    assert error_of(unknown, 404)["code"] == "member_not_found"
    bad = client.post("/v1/members/not-a-uuid/erasure", headers=key)
    assert bad.status_code == 422
