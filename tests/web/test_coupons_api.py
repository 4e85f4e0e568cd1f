"""``/v1/coupons/{code}``, ``/v1/coupons/{code}/redeem`` and ``/v1/members/{id}/coupons``:
the checkout's side of prize coupons, with stable error codes."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient

from parrain.db.session import Database
from parrain.kit.clock import FrozenClock
from tests.referrals.programme import Programme, friend_names
from tests.web.helpers import api_key_headers, error_of


def test_the_checkout_reads_and_redeems_a_prize_coupon(
    client: TestClient, database: Database, clock: FrozenClock
) -> None:
    programme = Programme.launch(database, clock, coupon_min_spend_minor=3500)
    ann = programme.enrol("ann")
    programme.invite_many(ann, friend_names("f", 5))
    clock.advance(timedelta(days=8))
    assert programme.release_due() == 1
    key = api_key_headers(database, clock, "events")

    listed = client.get(f"/v1/members/{ann.member_id}/coupons", headers=key)
    assert listed.status_code == 200, listed.text
    [coupon] = listed.json()
    assert (coupon["amount_minor"], coupon["status"], coupon["value_display"]) == (
        3000,
        "issued",
        "£30.00",
    )
    code = coupon["code"]
    assert client.get(f"/v1/coupons/{code.lower()}", headers=key).json()["code"] == code

    path = f"/v1/coupons/{code}/redeem"
    small = client.post(
        path, json={"order_id": "o-1", "order_amount_minor": 3000, "currency": "GBP"}, headers=key
    )
    assert error_of(small, 422)["code"] == "coupon_minimum_spend_not_met"
    body = {"order_id": "o-1", "order_amount_minor": 4000, "currency": "GBP"}
    first = client.post(path, json=body, headers=key)
    assert first.status_code == 200, first.text
    assert (first.json()["discount_minor"], first.json()["replayed"]) == (3000, False)
    again = client.post(path, json=body, headers=key)
    assert again.json()["replayed"] is True
    other = client.post(path, json={**body, "order_id": "o-2"}, headers=key)
    assert error_of(other, 409)["code"] == "coupon_already_redeemed"
    assert error_of(client.get("/v1/coupons/0000-0000-0000-0", headers=key), 404)["code"] == (
        "coupon_not_found"
    )
    assert client.post(path, json={**body, "order_amount_minor": 1.5}, headers=key).status_code == (
        422
    )
    assert client.post(path, json=body).status_code == 401
    assert programme.discrepancies() == []
