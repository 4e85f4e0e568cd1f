"""The benchmarks' load generator (``benchmarks/_load.py``) against a real uvicorn server on
loopback: Content-Length and chunked bodies, closed and open loops, servers that close."""

from __future__ import annotations

import importlib.util
import json
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import uvicorn


def _import_load() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "_load.py"
    spec = importlib.util.spec_from_file_location("_load", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("_load", module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


load = _import_load()
BIG = bytes(range(256)) * 4096  # 1 MiB: many reads, many chunks


async def app(scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
    """A raw ASGI app, so the test controls exactly what uvicorn sends."""
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    path = scope["path"]
    if path == "/length":
        answer = json.dumps({"method": scope["method"], "echo": body.decode()}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(answer))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": answer})
    elif path == "/chunked":
        # No Content-Length and several body messages: uvicorn sends it chunked.
        await send({"type": "http.response.start", "status": 201, "headers": []})
        for part in (b"one,", b"", b"two,", b"three"):
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    elif path in ("/big", "/big-chunked"):
        headers = [] if path == "/big-chunked" else [(b"content-length", b"%d" % len(BIG))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for start in range(0, len(BIG), 100_000):
            part = BIG[start : start + 100_000]
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    elif path == "/empty":
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})
    elif path == "/close":
        headers = [(b"connection", b"close"), (b"content-length", b"3")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"bye"})
    else:
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b"nothing here"})


@contextmanager
def serving(**options: Any) -> Iterator[Any]:
    """uvicorn (httptools) on a free loopback port in a thread; stopped when the block ends,
    and never alive more than a minute."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, http="httptools", log_level="error", access_log=False, lifespan="off", **options
    )
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    killer = threading.Timer(60.0, lambda: setattr(uv, "should_exit", True))
    killer.start()
    deadline = time.monotonic() + 10
    while not uv.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield load.Target("127.0.0.1", port, headers={"X-Test": "yes"})
    finally:
        killer.cancel()
        uv.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture(scope="module")
def server() -> Iterator[Any]:
    with serving() as target:
        yield target


def one(target: Any, request: bytes) -> Any:
    run = load.closed_loop(target, lambda _: request, connections=1, seconds=60, requests=1)
    assert len(run.results) == 1
    return run.results[0]


def test_a_content_length_response(server: Any) -> None:
    result = one(server, server.post_json("/length", {"a": "é"}))

    assert result.error is None
    response = result.response
    assert response.status == 200
    assert response.reason == "OK"
    assert response.header("Content-Type") == "application/json"
    assert response.json() == {"method": "POST", "echo": '{"a":"\\u00e9"}'}
    assert result.latency > 0


def test_a_chunked_response(server: Any) -> None:
    result = one(server, server.get("/chunked"))

    assert result.error is None
    assert result.response.status == 201
    assert result.response.header("transfer-encoding") == "chunked"
    assert result.response.body == b"one,two,three"


@pytest.mark.parametrize("path", ["/big", "/big-chunked"])
def test_a_large_body_in_many_reads(server: Any, path: str) -> None:
    result = one(server, server.get(path))

    assert result.error is None
    assert result.response.body == BIG


def test_no_body_and_unknown_routes(server: Any) -> None:
    assert one(server, server.get("/empty")).response.body == b""
    missing = one(server, server.get("/nope")).response
    assert (missing.status, missing.text) == (404, "nothing here")


def test_keep_alive_connections_carry_many_requests_in_order(server: Any) -> None:
    paths = ["/length", "/chunked", "/empty", "/big-chunked"] * 10
    sent: list[bytes] = []

    def make(index: int) -> bytes:
        if index >= len(paths):
            return server.get("/empty")
        sent.append(paths[index].encode())
        return (
            server.post_json(paths[index], index)
            if paths[index] == "/length"
            else (server.get(paths[index]))
        )

    run = load.closed_loop(server, make, connections=3, seconds=0.3)

    assert run.results
    assert all(r.error is None for r in run.results)
    assert sorted(r.index for r in run.results) == list(range(len(run.results)))
    for result in run.results:
        if result.index < len(paths) and paths[result.index] == "/length":
            assert result.response.json()["echo"] == str(result.index)
        if result.index < len(paths) and paths[result.index] == "/chunked":
            assert result.response.body == b"one,two,three"


def test_a_server_that_closes_after_answering(server: Any) -> None:
    # Each answer says Connection: close; the next request opens a new connection.
    run = load.closed_loop(server, lambda _: server.get("/close"), connections=2, seconds=0.2)

    assert len(run.results) > 2
    assert all(r.error is None and r.response.body == b"bye" for r in run.results)


def test_the_open_loop_keeps_its_schedule(server: Any) -> None:
    run = load.open_loop(
        server, lambda i: server.post_json("/length", i), rate=200, seconds=0.5, max_in_flight=4
    )

    assert run.unsent == 0
    assert sorted(r.index for r in run.results) == list(range(100))
    assert all(r.response.json()["echo"] == str(r.index) for r in run.results)
    assert run.elapsed >= 0.49


def test_connections_the_server_closed_while_idle_are_opened_again() -> None:
    # uvicorn closes a connection idle for a second; each of the two is idle for two.
    with serving(timeout_keep_alive=1) as target:
        run = load.open_loop(
            target, lambda i: target.post_json("/length", i), rate=1, seconds=4, max_in_flight=2
        )

    assert run.unsent == 0
    assert [r.error for r in run.results] == [None] * 4
    assert [r.response.json()["echo"] for r in run.results] == ["0", "1", "2", "3"]


@pytest.fixture
def scripted_server() -> Iterator[Callable[[list[bytes]], Any]]:
    """A bare socket server that answers the n-th connection with the n-th scripted bytes,
    then closes it."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)
    threads: list[threading.Thread] = []

    def serve(answers: list[bytes]) -> Any:
        def run() -> None:
            for answer in answers:
                try:
                    connection, _ = listener.accept()
                except OSError:
                    return
                with connection:
                    connection.recv(65536)
                    connection.sendall(answer)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        threads.append(thread)
        return load.Target("127.0.0.1", listener.getsockname()[1])

    yield serve
    listener.close()
    for thread in threads:
        thread.join(timeout=10)


def test_servers_that_close_the_connection(
    scripted_server: Callable[[list[bytes]], Any],
) -> None:
    answers = [
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end",  # body until close
        b"",  # closes without answering
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",  # closes mid-body
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    ]
    target = scripted_server(answers)

    results = [one(target, target.get("/")) for _ in answers]

    assert results[0].error is None
    assert results[0].response.body == b"until the end"
    assert results[1].response is None
    assert results[1].error.startswith("closed")
    assert results[2].response is None
    assert "middle of a response" in results[2].error
    assert results[3].error is None
    assert results[3].response.body == b"abc"


def test_a_refused_connection_is_an_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = one(load.Target("127.0.0.1", port), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")

    assert result.response is None
    assert result.error.startswith("send:")


def test_the_parser_handles_split_and_informational_responses() -> None:
    parser = load.ResponseParser()
    data = (
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\n\r\n"
        b"4;ext=1\r\nWiki\r\n5\r\npedia\r\n0\r\nTrailer: t\r\n\r\n"
    )
    responses = []
    for byte in range(len(data)):  # one byte at a time
        responses += parser.feed(data[byte : byte + 1])

    assert [(r.status, r.body) for r in responses] == [(200, b"Wikipedia")]
    assert parser.idle
    with pytest.raises(load.ProtocolError):
        load.ResponseParser().feed(b"SSH-2.0-OpenSSH\r\n\r\n")
    with pytest.raises(load.ProtocolError):
        load.ResponseParser().feed(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n")


def test_the_cpu_of_a_process_group_is_split_by_process_busiest_first() -> None:
    """A session of two processes, one spinning and one asleep: the spinning one's share is
    reported (the sleeping one, under 0.01 core, left out), and the group's total is the sum
    of its processes."""
    import os
    import signal
    import subprocess

    spin = "while True: pass"
    leader = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import subprocess, sys, time\n"
            f"subprocess.Popen([sys.executable, '-c', {spin!r}])\n"
            f"time.sleep(30)",
        ],
        start_new_session=True,
    )
    try:
        time.sleep(0.5)  # both started
        before = load.process_group_cpu_by_pid(leader.pid)
        started = time.monotonic()
        time.sleep(1.0)
        after = load.process_group_cpu_by_pid(leader.pid)
        total = load.process_group_cpu(leader.pid)
        seconds = time.monotonic() - started
    finally:
        os.killpg(leader.pid, signal.SIGKILL)
        leader.wait()
    assert before is not None
    assert after is not None
    assert len(after) == 2
    assert total is not None
    assert total >= sum(after.values())
    split = load.cpu_split(before, after, seconds)
    assert split is not None
    assert len(split) == 1
    assert 0.1 <= split[0] <= 1.05
    assert load.cpu_split(None, after, seconds) is None
