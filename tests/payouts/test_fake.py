"""The fake itself, spoken to as raw HTTP: what a client of PayPal's published API sees."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from parrain.payouts.providers.fake import Endpoint, FakePayPal, Fault, OutcomeRule
from parrain.payouts.providers.paypal_wire import ItemStatus
from tests.payouts.spec_check import SpecRecorder

AUTH = ("fake-client-id", "fake-client-secret")
_ITEM_IDS = itertools.count()


@pytest.fixture
def http(fake: FakePayPal) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fake.base_url, timeout=5) as raw:
        token = raw.post("/v1/oauth2/token", data={"grant_type": "client_credentials"}, auth=AUTH)
        raw.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        yield raw


def _item(
    receiver: str = "ann@example.com", value: str = "20.00", currency: str = "GBP", **more: Any
) -> dict[str, Any]:
    return {
        "recipient_type": "EMAIL",
        "receiver": receiver,
        "amount": {"currency": currency, "value": value},
        "sender_item_id": f"i-{next(_ITEM_IDS)}",
        **more,
    }


def _create(http: httpx.Client, sender_batch_id: str, *items: dict[str, Any]) -> httpx.Response:
    return http.post(
        "/v1/payments/payouts",
        json={"sender_batch_header": {"sender_batch_id": sender_batch_id}, "items": list(items)},
    )


def test_the_token_endpoint_checks_the_client_credentials_and_the_grant(fake: FakePayPal) -> None:
    with httpx.Client(base_url=fake.base_url, timeout=5) as raw:
        good = raw.post("/v1/oauth2/token", data={"grant_type": "client_credentials"}, auth=AUTH)
        assert good.status_code == 200
        assert good.json()["token_type"] == "Bearer"
        assert good.json()["expires_in"] == 9 * 3600
        wrong = raw.post(
            "/v1/oauth2/token",
            data={"grant_type": "client_credentials"},
            auth=("fake-client-id", "x"),
        )
        assert (wrong.status_code, wrong.json()["error"]) == (401, "invalid_client")
        grant = raw.post("/v1/oauth2/token", data={"grant_type": "password"}, auth=AUTH)
        assert (grant.status_code, grant.json()["error"]) == (400, "unsupported_grant_type")
        anonymous = raw.get("/v1/payments/payouts/ANY")
        assert (anonymous.status_code, anonymous.json()["name"]) == (401, "AUTHENTICATION_FAILURE")


def test_tokens_expire_on_the_fakes_clock(fake: FakePayPal, http: httpx.Client) -> None:
    assert http.get("/v1/payments/payouts-item/NONE").status_code == 404
    fake.advance(fake.token_lifetime)
    assert http.get("/v1/payments/payouts-item/NONE").status_code == 401


def test_every_invalid_item_is_named_and_nothing_is_accepted(
    fake: FakePayPal, http: httpx.Client
) -> None:
    answer = _create(
        http,
        "b-bad",
        _item(),
        _item(value="500.50", currency="JPY"),
        _item(currency="XXY"),
        _item(value="20.001"),
        _item(value="0.00"),
        _item(value="1e3"),
        {"recipient_type": "EMAIL", "amount": {"currency": "GBP", "value": "1.00"}},
        _item(recipient_type="FAX"),
    )
    assert answer.status_code == 400
    body = answer.json()
    assert (body["name"], body["message"]) == ("VALIDATION_ERROR", "Invalid request - see details")
    assert [(d["field"], d["location"]) for d in body["details"]] == [
        ("items[1].amount.value", "body"),
        ("items[2].amount.currency", "body"),
        ("items[3].amount.value", "body"),
        ("items[4].amount.value", "body"),
        ("items[5].amount.value", "body"),
        ("items[6].receiver", "body"),
        ("items[7].recipient_type", "body"),
    ]
    assert body["details"][0]["issue"] == "Currency does not support decimals"
    assert fake.batch_count == 0
    assert fake.payments_to("ann@example.com") == []


def test_a_batch_over_15000_items_or_without_items_is_refused(http: httpx.Client) -> None:
    too_many = _create(http, "b-big", *[_item(f"m{n}@example.com") for n in range(15_001)])
    assert too_many.status_code == 400
    assert [d["field"] for d in too_many.json()["details"]] == ["items"]
    assert _create(http, "b-none").json()["details"][0]["field"] == "items"


def test_a_duplicate_names_the_sender_batch_id_and_links_the_original(
    fake: FakePayPal, http: httpx.Client
) -> None:
    first = _create(http, "b-same", _item()).json()["batch_header"]["payout_batch_id"]
    again = _create(http, "b-same", _item("other@example.com"))
    body = again.json()
    assert again.status_code == 400
    assert (body["name"], body["message"]) == ("USER_BUSINESS_ERROR", "Duplicate batch request")
    assert body["details"][0]["value"] == "b-same"
    assert body["links"][0]["href"] == f"{fake.base_url}/v1/payments/payouts/{first}"
    assert fake.payments_to("other@example.com") == []


def test_paging_parameters_are_checked_and_pages_past_the_end_are_empty(http: httpx.Client) -> None:
    batch_id = _create(http, "b-page", _item("a@example.com"), _item("b@example.com")).json()[
        "batch_header"
    ]["payout_batch_id"]
    one = http.get(
        f"/v1/payments/payouts/{batch_id}", params={"page_size": 1, "total_required": "true"}
    )
    assert (one.json()["total_items"], one.json()["total_pages"]) == (2, 2)
    assert [link["rel"] for link in one.json()["links"]] == ["self", "next"]
    past = http.get(f"/v1/payments/payouts/{batch_id}", params={"page": 9, "page_size": 1})
    assert past.json()["items"] == []
    assert "total_items" not in past.json()
    for bad in ({"page_size": 1001}, {"page": 0}, {"page": "x"}, {"total_required": "maybe"}):
        refused = http.get(f"/v1/payments/payouts/{batch_id}", params=bad)
        assert (refused.status_code, refused.json()["name"]) == (400, "INVALID_REQUEST")


def test_faults_hit_the_next_n_requests_of_one_endpoint_only(
    fake: FakePayPal, http: httpx.Client
) -> None:
    fake.inject(Endpoint.GET_ITEM, Fault.SERVER_ERROR, times=2)
    fake.inject(Endpoint.GET_ITEM, Fault.RATE_LIMIT, retry_after=4)
    assert http.get("/v1/payments/payouts/NONE").status_code == 404
    assert [http.get("/v1/payments/payouts-item/NONE").status_code for _ in range(2)] == [500, 500]
    limited = http.get("/v1/payments/payouts-item/NONE")
    assert (limited.status_code, limited.headers["Retry-After"]) == (429, "4")
    assert limited.json()["name"] == "RATE_LIMIT_REACHED"
    assert http.get("/v1/payments/payouts-item/NONE").status_code == 404
    assert fake.requests(Endpoint.GET_ITEM) == 4


def test_a_dropped_answer_after_accepting_leaves_the_batch_in_place(
    fake: FakePayPal, http: httpx.Client
) -> None:
    fake.inject(Endpoint.CREATE_BATCH, Fault.DROP_RESPONSE)
    with pytest.raises(httpx.RemoteProtocolError):
        _create(http, "b-drop", _item())
    assert fake.batch_count == 1
    assert len(fake.payments_to("ann@example.com")) == 1


def test_on_hold_stays_on_hold_and_payments_are_counted_per_receiver(
    fake: FakePayPal, http: httpx.Client
) -> None:
    fake.outcomes = [OutcomeRule("^held", ItemStatus.ONHOLD)]
    held_batch = _create(http, "b-held", _item("held@example.com")).json()
    _create(http, "b-twice-1", _item())
    _create(http, "b-twice-2", _item(value="5.00"))
    fake.advance(timedelta(hours=1))
    batch_id = held_batch["batch_header"]["payout_batch_id"]
    (held,) = http.get(f"/v1/payments/payouts/{batch_id}").json()["items"]
    assert held["transaction_status"] == "ONHOLD"
    assert held["errors"]["name"] == "TRANSACTION_ONHOLD"
    assert len(fake.payments_to("ann@example.com")) == 2
    assert fake.paid_total("ann@example.com") == {"GBP": 2500}
    assert fake.paid_total("held@example.com") == {}


def test_the_item_answer_carries_its_sender_batch_id(http: httpx.Client) -> None:
    batch_id = _create(http, "b-item", _item()).json()["batch_header"]["payout_batch_id"]
    (listed,) = http.get(f"/v1/payments/payouts/{batch_id}").json()["items"]
    one = http.get(f"/v1/payments/payouts-item/{listed['payout_item_id']}").json()
    assert one["sender_batch_id"] == "b-item"
    assert one["transaction_status"] == "PENDING"
    assert "transaction_id" not in one


def test_on_the_wall_clock_items_settle_by_themselves() -> None:
    recorder = SpecRecorder()
    with (
        FakePayPal(settle_after=timedelta(0), on_response=recorder) as wall,
        httpx.Client(base_url=wall.base_url, timeout=5) as raw,
    ):
        token = raw.post("/v1/oauth2/token", data={"grant_type": "client_credentials"}, auth=AUTH)
        raw.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        batch_id = _create(raw, "b-wall", _item()).json()["batch_header"]["payout_batch_id"]
        body = raw.get(f"/v1/payments/payouts/{batch_id}").json()
        assert body["batch_header"]["batch_status"] == "SUCCESS"
        assert body["items"][0]["transaction_status"] == "SUCCESS"
        with pytest.raises(TypeError):
            wall.advance(timedelta(seconds=1))
    assert recorder.problems == []
    assert recorder.count == 3
