"""Request size: bodies over ``server.max_body_bytes`` get 413 before any route runs."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anyio
import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from parrain.config import CryptoSettings, ServerSettings, Settings
from parrain.db.session import Database
from parrain.kit.clock import FrozenClock
from parrain.web.app import create_app
from tests.web.helpers import assert_nothing_written, error_of, uk_campaign_body

LIMIT = 2048


@pytest.fixture
def settings() -> Settings:
    return Settings(
        server=ServerSettings(max_body_bytes=LIMIT),
        crypto=CryptoSettings(allow_development_keys=True),
    )


def padded_campaign(size: int) -> bytes:
    """A valid campaign body padded with trailing spaces to exactly ``size`` bytes."""
    body = json.dumps(uk_campaign_body()).encode()
    assert len(body) <= size
    return body + b" " * (size - len(body))


def post_json(client: TestClient, content: bytes | Iterator[bytes]) -> httpx.Response:
    response: httpx.Response = client.post(
        "/v1/campaigns", content=content, headers={"content-type": "application/json"}
    )
    return response


def assert_too_large(response: httpx.Response) -> None:
    error = error_of(response, 413)
    assert error["code"] == "request_too_large"
    assert error["details"] == {"max_body_bytes": LIMIT}


def test_a_body_at_the_limit_is_accepted(client: TestClient) -> None:
    response = post_json(client, padded_campaign(LIMIT))

    assert response.status_code == 201, response.text


def test_a_declared_body_one_byte_over_the_limit_is_refused(client: TestClient) -> None:
    response = post_json(client, padded_campaign(LIMIT + 1))

    assert_too_large(response)
    assert response.headers["connection"] == "close"
    assert_nothing_written(client)


def test_the_default_limit_is_one_mebibyte(
    database: Database, clock: FrozenClock, operator_token: str
) -> None:
    app = create_app(
        database=database,
        clock=clock,
        settings=Settings(crypto=CryptoSettings(allow_development_keys=True)),
    )
    with TestClient(app, headers={"Authorization": f"Bearer {operator_token}"}) as client:
        accepted = post_json(client, padded_campaign(1_048_576))
        refused = post_json(client, padded_campaign(1_048_577))
    assert accepted.status_code == 201
    assert error_of(refused, 413)["details"] == {"max_body_bytes": 1_048_576}


def test_a_body_streamed_without_content_length_is_counted(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield padded_campaign(LIMIT + 1)

    response = post_json(client, chunks())

    assert "content-length" not in response.request.headers
    assert_too_large(response)
    assert_nothing_written(client)


def test_a_route_without_a_body_also_refuses_a_large_one(client: TestClient) -> None:
    response = client.request("GET", "/v1/campaigns", content=b"x" * (LIMIT + 1))

    assert_too_large(response)


def _send(
    app: FastAPI, chunks: list[bytes], headers: list[tuple[bytes, bytes]]
) -> tuple[int, dict[str, Any]]:
    """:func:`_call` on an event loop of its own thread: the browser tests' Playwright keeps
    one running in the main thread of the process they share with these."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(anyio.run, _call, app, chunks, headers).result(timeout=60)


async def _call(
    app: FastAPI, chunks: list[bytes], headers: list[tuple[bytes, bytes]]
) -> tuple[int, dict[str, Any]]:
    """Send ``chunks`` as separate ASGI messages, as a server does with a chunked body."""
    messages = [
        {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
        for i, chunk in enumerate(chunks)
    ]
    answered = anyio.Event()
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop(0)
        await answered.wait()
        return {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            answered.set()

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/campaigns",
        "raw_path": b"/v1/campaigns",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"testserver"), (b"content-type", b"application/json"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "state": {},
    }
    await app(scope, receive, send)
    status = sent[0]["status"]
    body = b"".join(m.get("body", b"") for m in sent[1:])
    return status, json.loads(body)


def test_chunks_adding_up_past_the_limit_are_refused_before_the_route_runs(
    app: FastAPI, client: TestClient
) -> None:
    body = padded_campaign(LIMIT + 600)
    chunks = [body[i : i + 500] for i in range(0, len(body), 500)]

    status, answer = _send(app, chunks, [])

    assert status == 413
    assert answer["error"]["code"] == "request_too_large"
    assert_nothing_written(client)


def test_chunks_within_the_limit_reach_the_route_whole(
    app: FastAPI, client: TestClient, operator_token: str
) -> None:
    body = padded_campaign(LIMIT)
    chunks = [body[i : i + 300] for i in range(0, len(body), 300)]
    authorization = (b"authorization", f"Bearer {operator_token}".encode())

    status, answer = _send(app, chunks, [authorization])

    assert status == 201
    assert answer["name"] == "Cash Rewards UK"
    assert len(client.get("/v1/campaigns").json()) == 1


@pytest.mark.parametrize("declared", [b"many", b"-5", b"\xb2"])
def test_a_content_length_that_is_not_a_number_is_refused(
    app: FastAPI, client: TestClient, declared: bytes
) -> None:
    status, answer = _send(app, [b"{}"], [(b"content-length", declared)])

    assert status == 400
    assert answer["error"]["code"] == "bad_request"
    assert_nothing_written(client)


@pytest.fixture
def server_url(app: FastAPI) -> Iterator[str]:
    """The app behind a real uvicorn server on a free local port."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


def test_a_real_server_refuses_a_chunked_body_over_the_limit(
    server_url: str, client: TestClient, operator_token: str
) -> None:
    body = padded_campaign(LIMIT + 1)

    def chunks() -> Iterator[bytes]:
        yield body[:1024]
        yield body[1024:]

    with httpx.Client(
        base_url=server_url, headers={"Authorization": f"Bearer {operator_token}"}
    ) as http:
        refused = http.post(
            "/v1/campaigns", content=chunks(), headers={"content-type": "application/json"}
        )
        accepted = http.post(
            "/v1/campaigns",
            content=padded_campaign(LIMIT),
            headers={"content-type": "application/json"},
        )

    assert refused.request.headers["transfer-encoding"] == "chunked"
    assert_too_large(refused)
    assert accepted.status_code == 201, accepted.text
    assert len(client.get("/v1/campaigns").json()) == 1
