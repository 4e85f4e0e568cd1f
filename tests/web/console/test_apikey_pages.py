"""The console's API keys page: an administrator creates a key (its secret shown once, on
the page that answers), sees the keys, and revokes one; the key then opens, or no longer
opens, the integration API."""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import select

from parrain.access import service as access
from parrain.access.models import ApiKey
from parrain.access.schemas import ApiKeyCreate, ApiKeyScope
from parrain.audit import service as audit
from parrain.db.session import Database
from parrain.kit.clock import FrozenClock
from parrain.kit.ids import new_id
from parrain.operators.roles import Role
from tests.consent.consents import ADS, PHOTO
from tests.web.console.helpers import csrf_of, signed_in_as

PAGE = "/console/api-keys"
_KEY = re.compile(r"prn_[0-9a-z]{8}_[A-Za-z0-9_-]{43}")


def _check_body() -> dict[str, Any]:
    return {
        "member_id": str(new_id()),
        "data_category": PHOTO,
        "data_use": ADS,
        "channel": "social",
        "territory": "GB",
    }


def _check(client: TestClient, key: str) -> Response:
    return client.post(
        "/v1/consent/check", json=_check_body(), headers={"Authorization": f"Bearer {key}"}
    )


def _create(client: TestClient, name: str, scopes: list[str], **extra: str) -> Response:
    token = csrf_of(client.get(PAGE))
    return client.post(PAGE, data={"csrf_token": token, "name": name, "scopes": scopes, **extra})


def _rows(database: Database) -> list[ApiKey]:
    def load(session: Any) -> list[ApiKey]:
        rows = list(session.scalars(select(ApiKey)))
        session.expunge_all()
        return rows

    return database.read(load)


def test_an_admin_creates_a_key_sees_it_once_and_it_opens_the_api(
    client: TestClient, database: Database, clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    signed_in_as(client, database, clock, Role.ADMIN)
    listed = client.get(PAGE)
    assert listed.status_code == 200
    assert "There are no API keys yet." in listed.text
    assert '<a href="/console/api-keys" aria-current="page">API keys</a>' in listed.text
    assert "<fieldset>" in listed.text
    assert "<legend>What the key may call</legend>" in listed.text
    for scope in ("events", "consent", "privacy"):
        assert f'<label for="scope-{scope}">' in listed.text

    answer = _create(client, "Order service", ["consent", "events"])
    assert answer.status_code == 201, answer.text
    assert "location" not in answer.headers
    assert answer.headers["cache-control"] == "no-store"
    assert "set-cookie" not in answer.headers
    shown = _KEY.findall(answer.text)
    assert len(shown) == 1
    secret = shown[0]
    assert "it will not be shown again" in answer.text
    assert caplog.records  # the requests and their addresses were logged, never the key
    assert secret not in caplog.text

    (row,) = _rows(database)
    assert row.name == "Order service"
    assert sorted(row.scopes) == ["consent", "events"]
    _tag, prefix, plain = secret.split("_", 2)
    assert row.prefix == prefix
    assert row.secret_hash == access.hash_secret(plain)
    assert plain not in row.secret_hash

    decided = _check(client, secret)
    assert decided.status_code == 200, decided.text
    assert decided.json()["decision"] == "deny"  # an unknown member, but the key was let in

    again = client.get(PAGE)
    assert again.status_code == 200
    assert not _KEY.search(again.text)
    assert plain not in again.text
    assert "Order service" in again.text
    assert f"prn_{prefix}_" in again.text
    assert "Revoke Order service for good" in again.text

    entries = database.read(lambda s: audit.list_entries(session=s, subject=f"api_key:{row.id}"))
    assert [entry.action for entry in entries] == ["access.api_key_created"]
    assert entries[0].actor.startswith("operator:")


def test_the_list_is_newest_first_with_revoked_keys_marked(
    client: TestClient, database: Database, clock: FrozenClock
) -> None:
    signed_in_as(client, database, clock, Role.ADMIN)
    for name in ("Oldest key", "Middle key", "Newest key"):
        assert _create(client, name, ["events"]).status_code == 201
    (middle,) = [row for row in _rows(database) if row.name == "Middle key"]
    database.run(
        lambda s: access.revoke_api_key(session=s, key_id=middle.id, actor="test", clock=clock)
    )
    text = client.get(PAGE).text
    assert text.index("Newest key") < text.index("Middle key") < text.index("Oldest key")
    assert "Revoke Middle key for good" not in text
    assert "Revoke Newest key for good" in text
    assert "Revoked on" in text


def test_revoking_a_key_refuses_it_and_says_so(
    app: FastAPI, client: TestClient, database: Database, clock: FrozenClock
) -> None:
    signed_in_as(client, database, clock, Role.ADMIN)
    secret = _KEY.findall(_create(client, "Ads service", ["consent"]).text)[0]
    assert _check(client, secret).status_code == 200
    (row,) = _rows(database)

    token = csrf_of(client.get(PAGE))
    revoked = client.post(f"{PAGE}/{row.id}/revoke", data={"csrf_token": token})
    assert revoked.status_code == 303
    assert revoked.headers["location"] == PAGE
    assert secret not in revoked.headers["location"]
    after = client.get(PAGE)
    assert "The key is revoked" in after.text
    assert "Revoke Ads service for good" not in after.text
    (stored,) = _rows(database)
    assert stored.revoked_at == clock.now()

    app.state.api_key_cache.clear()  # this process trusted the key for a few seconds
    refused = _check(client, secret)
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "invalid_api_key"

    twice = client.post(f"{PAGE}/{row.id}/revoke", data={"csrf_token": token})
    assert twice.status_code == 303
    assert "already revoked" in client.get(PAGE).text
    actions = [
        entry.action
        for entry in database.read(
            lambda s: audit.list_entries(session=s, subject=f"api_key:{row.id}")
        )
    ]
    assert actions == ["access.api_key_created", "access.api_key_revoked"]


def test_an_unknown_key_is_a_404_page(
    client: TestClient, database: Database, clock: FrozenClock
) -> None:
    signed_in_as(client, database, clock, Role.ADMIN)
    token = csrf_of(client.get(PAGE))
    answer = client.post(
        f"{PAGE}/{new_id()}/revoke", data={"csrf_token": token}, headers={"Accept": "text/html"}
    )
    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("text/html")
    assert "There is no such API key" in answer.text


def test_bad_input_shows_the_form_again_and_writes_nothing(
    client: TestClient, database: Database, clock: FrozenClock
) -> None:
    signed_in_as(client, database, clock, Role.ADMIN)
    no_name = _create(client, "   ", ["events"])
    assert no_name.status_code == 422
    assert 'id="key-name-error"' in no_name.text
    assert "Give the key a name that says who holds it." in no_name.text
    assert 'aria-invalid="true"' in no_name.text

    no_scope = _create(client, "Order service", [])
    assert no_scope.status_code == 422
    assert 'id="scopes-error"' in no_scope.text
    assert 'value="Order service"' in no_scope.text  # what was typed stays

    unknown_scope = _create(client, "Order service", ["payouts"])
    assert unknown_scope.status_code == 422
    assert "Choose among the scopes listed." in unknown_scope.text

    too_long = _create(client, "x" * 81, ["events"])
    assert too_long.status_code == 422
    assert "at most 80 characters" in too_long.text
    assert _rows(database) == []

    assert _create(client, "Order service", ["events"]).status_code == 201
    taken = _create(client, "Order service", ["consent"])
    assert taken.status_code == 409
    assert "A key with this name already exists" in taken.text
    assert not _KEY.search(taken.text)
    assert len(_rows(database)) == 1


def test_a_form_without_its_csrf_token_is_refused(
    client: TestClient, database: Database, clock: FrozenClock
) -> None:
    signed_in_as(client, database, clock, Role.ADMIN)
    for data in ({}, {"csrf_token": "forged"}):
        answer = client.post(PAGE, data={"name": "Order service", "scopes": ["events"], **data})
        assert answer.status_code == 403
        assert answer.json()["error"]["code"] == "csrf_failed"
    assert _rows(database) == []

    created = database.run(
        lambda s: access.create_api_key(
            session=s,
            key_in=ApiKeyCreate(name="Kept", scopes=[ApiKeyScope.EVENTS]),
            actor="test",
            clock=clock,
        )
    )
    refused = client.post(f"{PAGE}/{created.api_key.id}/revoke", data={})
    assert refused.status_code == 403
    (row,) = _rows(database)
    assert row.revoked_at is None


def test_a_marketer_may_not_manage_keys_nor_see_the_link(
    client: TestClient, database: Database, clock: FrozenClock
) -> None:
    signed_in_as(client, database, clock, Role.MARKETER)
    token = csrf_of(client.get("/console"))
    assert 'href="/console/api-keys"' not in client.get("/console").text
    assert client.get(PAGE).status_code == 403
    answer = client.post(PAGE, data={"csrf_token": token, "name": "Mine", "scopes": ["events"]})
    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "permission_denied"
    assert _rows(database) == []


def test_the_page_in_french(client: TestClient, database: Database, clock: FrozenClock) -> None:
    signed_in_as(client, database, clock, Role.ADMIN)
    listed = client.get(f"{PAGE}?lang=fr")
    assert listed.status_code == 200
    assert '<html lang="fr"' in listed.text
    assert "Clés d'API" in listed.text or "Clés d&#39;API" in listed.text
    assert "Ce que la clé peut appeler" in listed.text
    created = _create(client, "Service des commandes", ["events"])
    assert created.status_code == 201
    assert "elle ne sera plus jamais affichée" in created.text
    assert "Révoquer Service des commandes définitivement" in created.text
    refused = _create(client, "", [])
    assert "Choisissez au moins une portée." in refused.text
