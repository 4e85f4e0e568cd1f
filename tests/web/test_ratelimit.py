"""Rate limits of the public endpoints: the GCRA meter, and the link answering 429."""

from __future__ import annotations

import threading

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from parrain.config import CryptoSettings, Settings, WebSettings
from parrain.db.session import Database
from parrain.kit.clock import FrozenClock
from parrain.web.app import create_app
from parrain.web.ratelimit import RateLimited, RateLimiter


class Ticker:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_then_one_request_per_interval() -> None:
    time = Ticker()
    limiter = RateLimiter(per_minute=60, burst=3, now=time)
    client = limiter.client("198.51.100.7")
    assert [limiter.wait(client) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.wait(client) == pytest.approx(1.0)
    time.now += 0.5
    assert limiter.wait(client) == pytest.approx(0.5)  # refused requests do not count
    time.now += 0.5
    assert limiter.wait(client) == 0.0
    assert limiter.wait(client) == pytest.approx(1.0)
    time.now += 60  # a quiet minute gives the whole burst back, not more
    assert [limiter.wait(client) for _ in range(4)][:3] == [0.0, 0.0, 0.0]
    assert limiter.wait(client) > 0


def test_clients_are_counted_apart_and_not_by_their_address() -> None:
    limiter = RateLimiter(per_minute=1, burst=1, now=Ticker())
    limiter.check("198.51.100.7")
    with pytest.raises(RateLimited) as raised:
        limiter.check("198.51.100.7")
    assert raised.value.retry_after == 60
    assert raised.value.code == "rate_limited"
    limiter.check("203.0.113.9")
    assert all(b"198.51" not in key for key in limiter._next)  # an HMAC, not the address


def test_the_table_forgets_the_least_recent_clients_first() -> None:
    limiter = RateLimiter(per_minute=1, burst=1, max_clients=2, now=Ticker())
    for address in ("a", "b", "c"):
        limiter.check(address)
    assert len(limiter._next) == 2
    limiter.check("a")  # forgotten: counted afresh
    with pytest.raises(RateLimited):
        limiter.check("c")


def test_concurrent_requests_never_exceed_the_burst() -> None:
    limiter = RateLimiter(per_minute=1, burst=25, now=Ticker())
    client = limiter.client("198.51.100.7")
    allowed: list[bool] = []
    lock = threading.Lock()

    def hammer() -> None:
        for _ in range(20):
            ok = limiter.wait(client) == 0.0
            with lock:
                allowed.append(ok)

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert allowed.count(True) == 25


def test_bad_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="per_minute"):
        RateLimiter(per_minute=0, burst=1)


@pytest.fixture
def limited_app(database: Database, clock: FrozenClock) -> FastAPI:
    settings = Settings(
        crypto=CryptoSettings(allow_development_keys=True),
        web=WebSettings(link_rate_per_minute=1, link_burst=3),
    )
    return create_app(database=database, clock=clock, settings=settings)


def test_the_link_answers_429_past_the_limit(limited_app: FastAPI) -> None:
    with TestClient(limited_app, client=("198.51.100.7", 5000)) as one:
        statuses = [one.get("/r/ABCD-EFGH-JK").status_code for _ in range(4)]
        assert statuses == [404, 404, 404, 429]
        refused = one.get("/r/ABCD-EFGH-JK")
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "rate_limited"
        assert int(refused.headers["retry-after"]) >= 1
        page = one.get("/r/ABCD-EFGH-JK", headers={"accept": "text/html"})
        assert page.status_code == 429
        assert "Too many attempts" in page.text
        assert int(page.headers["retry-after"]) >= 1
    with TestClient(limited_app, client=("203.0.113.9", 5000)) as other:
        assert other.get("/r/ABCD-EFGH-JK").status_code == 404


def test_sign_in_attempts_are_limited_per_address(database: Database, clock: FrozenClock) -> None:
    settings = Settings(
        crypto=CryptoSettings(allow_development_keys=True),
        web=WebSettings(cookie_secure=False, sign_in_rate_per_minute=1, sign_in_burst=2),
    )
    app = create_app(database=database, clock=clock, settings=settings)
    with TestClient(app, client=("198.51.100.7", 5000), follow_redirects=False) as one:
        attempt = {"username": "nobody", "password": "x" * 12, "csrf_token": "forged"}
        statuses = [one.post("/console/sign-in", data=attempt).status_code for _ in range(3)]
        # Two attempts reach the form's checks (a forged token: 403); the third is refused
        # before anything is checked.
        assert statuses == [403, 403, 429]
        page = one.post("/console/sign-in", data=attempt, headers={"accept": "text/html"})
        assert page.status_code == 429
        assert "Too many attempts" in page.text


def test_the_members_way_in_is_limited_per_address(database: Database, clock: FrozenClock) -> None:
    """Someone trying member tokens from one address is stopped; others still come in."""
    settings = Settings(
        crypto=CryptoSettings(allow_development_keys=True),
        web=WebSettings(cookie_secure=False, member_enter_rate_per_minute=1, member_enter_burst=2),
    )
    app = create_app(database=database, clock=clock, settings=settings)
    with TestClient(app, client=("198.51.100.7", 5000), follow_redirects=False) as one:
        statuses = [one.get("/m/enter?token=not-a-token").status_code for _ in range(3)]
        assert statuses == [303, 303, 429]  # refused tokens go to the refusal page, then 429
        assert int(one.get("/m/enter?token=x").headers["retry-after"]) >= 1
    with TestClient(app, client=("203.0.113.9", 5000), follow_redirects=False) as other:
        assert other.get("/m/enter?token=not-a-token").status_code == 303
