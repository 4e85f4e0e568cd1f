"""A lean HTTP/1.1 load generator for the benchmarks: keep-alive sockets on loopback, one
thread, one ``selectors`` loop.

A general HTTP client (httpx) costs about 1 ms of CPU per request, as much as the server
spends on a trivial endpoint, so it was what a benchmark measured. Here a request is bytes
encoded once by the caller (:func:`encode`), sent on a non-blocking socket; the answer is
parsed just enough to be correct (status line, headers, a ``Content-Length`` or
``chunked`` body, or a body that ends when the server closes). That costs tens of µs of
CPU per request. (Threads with blocking sockets, one per connection, cost more: each
answer wakes a thread and passes the GIL around.)

Two ways to drive a server:

* :func:`closed_loop`: ``connections`` connections, each sending its next request as soon
  as the last one is answered, for ``seconds``; latency from each request's send;
* :func:`open_loop`: request ``i`` is due at ``start + i / rate`` whatever happened to the
  others; at most ``max_in_flight`` are outstanding (one per connection) and a due request
  waits for a free connection. Its latency is measured from the time it was *due*, so a
  stall counts against every request it delayed (no coordinated omission). Requests still
  unsent ``grace`` seconds after the schedule's end are not sent: :attr:`Run.unsent`.

Requests come from ``make(index)``, called when request ``index`` is sent (so it may carry
the current time), and every answer comes back as a :class:`Result` with that index, its
latency, and its :class:`Response` (status, headers, body) or an error. Nothing is retried:
a request whose connection broke is an error, and the next request opens a new connection.

    target = Target("127.0.0.1", port, headers={"Authorization": "Bearer ..."})
    run = open_loop(target, lambda i: target.post_json("/v1/consent/check", checks[i]),
                    rate=1000, seconds=10, max_in_flight=64)
    for result in run.results:
        assert result.response is not None and result.response.status == 200
        answer = result.response.json()
"""

from __future__ import annotations

import gc
import json
import selectors
import socket
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: The longest a request may wait for its answer before it counts as an error.
DEFAULT_TIMEOUT = 300.0
_RECV = 262_144


class ProtocolError(Exception):
    """The server's bytes are not an HTTP/1.1 response this parser understands."""


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    reason: str
    #: ``(name, value)`` in the order sent; names lower-cased.
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        """The first value of the header ``name`` (any case), or None."""
        name = name.lower()
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


@dataclass(slots=True)
class Result:
    """One request: ``index`` as given to ``make``; ``latency`` in seconds from its send
    (closed loop) or from when it was due (open loop); ``lag`` how late its send was
    (open loop; about 0 in a closed loop); ``response`` or else ``error``."""

    index: int
    latency: float
    lag: float
    response: Response | None
    error: str | None = None


@dataclass(slots=True)
class Run:
    results: list[Result] = field(default_factory=list)
    #: Seconds from the first send (or the schedule's start) to the last answer.
    elapsed: float = 0.0
    #: Open loop: requests due but never sent (the server could not keep up).
    unsent: int = 0

    @property
    def ok(self) -> list[Result]:
        return [result for result in self.results if result.response is not None]


# --------------------------------------------------------------------------- requests


def encode(
    method: str,
    path: str,
    *,
    host: str,
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
) -> bytes:
    """An HTTP/1.1 request as bytes, with ``Host`` and (with a body, or for a method that
    normally carries one) ``Content-Length``."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if body is not None or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body or b'')}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")


@dataclass(frozen=True)
class Target:
    """A server and the headers every request to it carries."""

    host: str
    port: int
    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_url(cls, base_url: str, headers: Mapping[str, str] | None = None) -> Target:
        """``http://host:port`` (no path; plain HTTP only)."""
        scheme, _, rest = base_url.partition("://")
        if scheme != "http" or not rest:
            raise ValueError(f"not an http://host:port URL: {base_url!r}")
        host, _, port = rest.rstrip("/").rpartition(":")
        return cls(host, int(port), dict(headers or {}))

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    def request(self, method: str, path: str, body: bytes | None = None, **headers: str) -> bytes:
        merged = {**self.headers, **{k.replace("_", "-"): v for k, v in headers.items()}}
        return encode(method, path, host=f"{self.host}:{self.port}", headers=merged, body=body)

    def get(self, path: str) -> bytes:
        return self.request("GET", path)

    def post_json(self, path: str, value: Any) -> bytes:
        body = json.dumps(value, separators=(",", ":")).encode()
        return self.request("POST", path, body, Content_Type="application/json")


# --------------------------------------------------------------------------- responses


class ResponseParser:
    """Parses the responses on one connection, fed the bytes as they come.

    :meth:`feed` returns the responses completed so far (one, with no pipelining);
    :meth:`eof` is called when the server closed: it completes a response whose body ends
    with the connection and raises :class:`ProtocolError` if one was cut short.
    ``head_request`` tells that the response answers a HEAD (no body whatever the headers).
    """

    __slots__ = ("_buffer", "_chunked", "_head", "_length", "_state", "head_request")

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._state = 0  # 0: head; 1: body by length; 2: chunked; 3: until close
        self._head: tuple[int, str, list[tuple[str, str]]] | None = None
        self._length = 0
        self._chunked = bytearray()
        self.head_request = False

    @property
    def idle(self) -> bool:
        """No response begun."""
        return self._state == 0 and not self._buffer

    def feed(self, data: bytes) -> list[Response]:
        self._buffer += data
        out: list[Response] = []
        while True:
            response = self._step()
            if response is None:
                return out
            out.append(response)

    def eof(self) -> Response | None:
        if self._state == 3:
            assert self._head is not None
            status, reason, headers = self._head
            body = bytes(self._buffer)
            self._reset()
            return Response(status, reason, headers, body)
        if self._state == 0 and not self._buffer:
            return None
        raise ProtocolError("the server closed the connection in the middle of a response")

    def _reset(self) -> None:
        self._buffer.clear()
        self._state = 0
        self._head = None
        self._chunked = bytearray()

    def _step(self) -> Response | None:
        buffer = self._buffer
        if self._state == 0:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(buffer) > 65_536:
                    raise ProtocolError("response head over 64 KiB")
                return None
            head = bytes(buffer[:end]).decode("latin-1")
            del buffer[: end + 4]
            lines = head.split("\r\n")
            version, _, rest = lines[0].partition(" ")
            code, _, reason = rest.partition(" ")
            if not version.startswith("HTTP/1.") or len(code) != 3 or not code.isdigit():
                raise ProtocolError(f"not an HTTP/1.x status line: {lines[0][:100]!r}")
            status = int(code)
            headers: list[tuple[str, str]] = []
            length: int | None = None
            chunked = False
            for line in lines[1:]:
                name, colon, value = line.partition(":")
                if not colon:
                    raise ProtocolError(f"malformed header line: {line[:100]!r}")
                name = name.strip().lower()
                value = value.strip()
                headers.append((name, value))
                if name == "content-length":
                    if not value.isdigit() or (length is not None and int(value) != length):
                        raise ProtocolError(f"bad Content-Length: {value[:40]!r}")
                    length = int(value)
                elif name == "transfer-encoding":
                    chunked = value.lower().rsplit(",", 1)[-1].strip() == "chunked"
            if 100 <= status < 200:
                return self._step() if buffer else None  # informational: the real one follows
            if self.head_request or status in (204, 304):
                return Response(status, reason, headers, b"")
            self._head = (status, reason, headers)
            if chunked:
                self._state = 2
            elif length is not None:
                self._state = 1
                self._length = length
            else:
                self._state = 3
        if self._state == 1:
            if len(buffer) < self._length:
                return None
            body = bytes(buffer[: self._length])
            del buffer[: self._length]
            return self._done(body)
        if self._state == 2:
            return self._chunk()
        return None  # 3: the body ends when the connection does

    def _done(self, body: bytes) -> Response:
        assert self._head is not None
        status, reason, headers = self._head
        self._state = 0
        self._head = None
        return Response(status, reason, headers, body)

    def _chunk(self) -> Response | None:
        buffer = self._buffer
        while True:
            end = buffer.find(b"\r\n")
            if end < 0:
                return None
            size_text = bytes(buffer[:end]).split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise ProtocolError(f"bad chunk size: {size_text[:20]!r}") from None
            if size == 0:
                # The last chunk, then trailers (ignored) up to an empty line.
                trailer_end = buffer.find(b"\r\n\r\n", end)
                if trailer_end == end:
                    del buffer[: end + 4]
                elif trailer_end < 0:
                    return None
                else:
                    del buffer[: trailer_end + 4]
                body = bytes(self._chunked)
                self._chunked = bytearray()
                return self._done(body)
            if len(buffer) < end + 2 + size + 2:
                return None
            if buffer[end + 2 + size : end + 4 + size] != b"\r\n":
                raise ProtocolError("a chunk does not end with CRLF")
            self._chunked += buffer[end + 2 : end + 2 + size]
            del buffer[: end + 4 + size]


# --------------------------------------------------------------------------- the loop


class _Connection:
    __slots__ = ("due", "index", "parser", "sent_at", "sock", "unsent")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.parser = ResponseParser()
        self.index = -1  # -1: idle
        self.due = 0.0  # latency is measured from here
        self.sent_at = 0.0
        self.unsent = b""


class _Loop:
    def __init__(self, target: Target, make: Callable[[int], bytes], timeout: float) -> None:
        self.address = target.address
        self.make = make
        self.timeout = timeout
        self.selector = selectors.DefaultSelector()
        self.connections: list[_Connection | None] = []
        # Slots of connections ready for a request, oldest first: every connection is used in
        # turn, so none sits idle long enough for the server to close it (keep-alive timeout).
        self.idle: deque[int] = deque()
        self.failed = False  # the last send failed (cannot connect): back off a little
        self.busy = 0
        self.results: list[Result] = []
        self.next_index = 0

    def open(self, count: int) -> None:
        for _ in range(count):
            self.connections.append(None)
            self.idle.append(len(self.connections) - 1)

    def _connect(self, slot: int) -> _Connection:
        sock = socket.create_connection(self.address, timeout=self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        connection = _Connection(sock)
        self.connections[slot] = connection
        self.selector.register(sock, selectors.EVENT_READ, slot)
        return connection

    def _drop(self, slot: int) -> None:
        connection = self.connections[slot]
        if connection is None:
            return
        self.connections[slot] = None
        self.selector.unregister(connection.sock)
        connection.sock.close()

    def send(self, due: float) -> None:
        """Send the next request on an idle connection (there must be one)."""
        slot = self.idle.popleft()
        index = self.next_index
        self.next_index += 1
        data = self.make(index)
        connection = self.connections[slot]
        try:
            if connection is None:
                connection = self._connect(slot)
            connection.index = index
            connection.due = due
            connection.sent_at = time.perf_counter()
            connection.parser.head_request = data.startswith(b"HEAD ")
            sent = connection.sock.send(data)
        except OSError as error:
            self._drop(slot)
            now = time.perf_counter()
            self.results.append(Result(index, now - due, now - due, None, f"send: {error!r}"))
            self.idle.append(slot)
            self.failed = True
            return
        self.failed = False
        self.busy += 1
        if sent < len(data):
            connection.unsent = data[sent:]
            self.selector.modify(
                connection.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, slot
            )

    def _finish(
        self, slot: int, connection: _Connection, response: Response | None, error: str | None
    ) -> None:
        now = time.perf_counter()
        lag = connection.sent_at - connection.due
        self.results.append(
            Result(connection.index, now - connection.due, max(lag, 0.0), response, error)
        )
        connection.index = -1
        self.busy -= 1
        self.idle.append(slot)

    def poll(self, timeout: float) -> None:
        for key, mask in self.selector.select(timeout):
            slot: int = key.data
            connection = self.connections[slot]
            if connection is None:
                continue
            if mask & selectors.EVENT_WRITE:
                try:
                    sent = connection.sock.send(connection.unsent)
                except OSError as error:
                    self._fail(slot, connection, f"send: {error!r}")
                    continue
                connection.unsent = connection.unsent[sent:]
                if not connection.unsent:
                    self.selector.modify(connection.sock, selectors.EVENT_READ, slot)
            if not mask & selectors.EVENT_READ:
                continue
            try:
                data = connection.sock.recv(_RECV)
            except BlockingIOError:
                continue
            except OSError as error:
                self._fail(slot, connection, f"recv: {error!r}")
                continue
            if not data:
                self._closed(slot, connection)
                continue
            if connection.index < 0:
                self._drop(slot)  # bytes nobody asked for: the connection is unusable
                continue
            try:
                responses = connection.parser.feed(data)
            except ProtocolError as error:
                self._fail(slot, connection, f"protocol: {error}")
                continue
            if responses:
                response = responses[-1]
                self._finish(slot, connection, response, None)
                if len(responses) > 1 or not connection.parser.idle or _closes(response):
                    self._drop(slot)

    def _closed(self, slot: int, connection: _Connection) -> None:
        if connection.index < 0:
            self._drop(slot)  # an idle keep-alive connection the server closed
            return
        try:
            response = connection.parser.eof()
        except ProtocolError as error:
            self._fail(slot, connection, f"closed: {error}")
            return
        if response is None:
            self._fail(
                slot, connection, "closed: the server closed the connection before answering"
            )
            return
        self._drop(slot)
        self._finish(slot, connection, response, None)

    def _fail(self, slot: int, connection: _Connection, error: str) -> None:
        self._drop(slot)
        if connection.index >= 0:
            self._finish(slot, connection, None, error)

    def expire(self, now: float) -> None:
        for slot, connection in enumerate(self.connections):
            expired = connection is not None and now - connection.sent_at > self.timeout
            if connection is not None and connection.index >= 0 and expired:
                self._fail(slot, connection, f"timeout: no answer in {self.timeout:.0f}s")

    def close(self) -> None:
        for slot in range(len(self.connections)):
            self._drop(slot)
        self.selector.close()


def _closes(response: Response) -> bool:
    value = response.header("connection")
    return value is not None and "close" in value.lower()


def _closed_loop(
    target: Target,
    make: Callable[[int], bytes],
    *,
    connections: int,
    seconds: float,
    requests: int | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> Run:
    """``connections`` connections, each sending ``make(i)`` as soon as its last request is
    answered, until ``seconds`` have passed (or ``requests`` were sent, if given); then the
    outstanding requests are awaited."""
    loop = _Loop(target, make, timeout)
    loop.open(connections)
    start = time.perf_counter()
    until = start + seconds
    limit = sys.maxsize if requests is None else requests
    next_expiry = start + 1.0
    try:
        while True:
            now = time.perf_counter()
            if now < until and loop.next_index < limit:
                while loop.idle and loop.next_index < limit and not loop.failed:
                    loop.send(time.perf_counter())
                if loop.failed:  # the server refuses connections: do not spin
                    loop.failed = False
                    loop.poll(0.05)
                    continue
            elif not loop.busy:
                break
            loop.poll(1.0)
            if now > next_expiry:
                loop.expire(now)
                next_expiry = now + 1.0
    finally:
        loop.close()
    return Run(loop.results, time.perf_counter() - start)


def _open_loop(
    target: Target,
    make: Callable[[int], bytes],
    *,
    rate: float,
    seconds: float,
    max_in_flight: int,
    grace: float = 5.0,
    timeout: float = DEFAULT_TIMEOUT,
) -> Run:
    """``int(seconds * rate)`` requests, request ``i`` due at ``start + i / rate``, on at most
    ``max_in_flight`` connections. Latency is measured from when a request was due. What is
    still unsent ``grace`` seconds after the schedule's end is counted in ``unsent``."""
    total = int(seconds * rate)
    loop = _Loop(target, make, timeout)
    loop.open(max_in_flight)
    # Connections are opened before the schedule starts, so connecting is not measured.
    for slot in range(max_in_flight):
        try:
            loop._connect(slot)
        except OSError:
            break  # the first request on that slot will report the error
    start = time.perf_counter() + 0.05
    stop_sending = start + seconds + grace
    next_expiry = start + 1.0
    unsent = 0
    try:
        while True:
            now = time.perf_counter()
            index = loop.next_index
            if index < total and now > stop_sending:
                unsent = total - index
                total = index
            while index < total and loop.idle:
                due = start + index / rate
                if due > now:
                    break
                loop.send(due)
                index = loop.next_index
            if index >= total and not loop.busy:
                break
            wait = 1.0
            if index < total and loop.idle:
                wait = max(0.0, start + index / rate - time.perf_counter())
            loop.poll(wait)
            if now > next_expiry:
                loop.expire(now)
                next_expiry = now + 1.0
    finally:
        loop.close()
    return Run(loop.results, time.perf_counter() - start, unsent)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """The garbage collector off while requests are in flight: a full collection of a
    client that imported the application to seed its database walks hundreds of thousands
    of objects and stalled the sending loop for up to 0.15 s, which an open loop then
    charged to the server. What a run allocates is freed by reference counting; cycles
    wait for the end of the run. (One run at a time: the pause is not meant for loops
    running on several threads at once.)"""
    enabled = gc.isenabled()
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        gc.unfreeze()
        if enabled:
            gc.enable()


def closed_loop(
    target: Target,
    make: Callable[[int], bytes],
    *,
    connections: int,
    seconds: float,
    requests: int | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> Run:
    """``connections`` connections, each sending ``make(i)`` as soon as its last request is
    answered, until ``seconds`` have passed (or ``requests`` were sent, if given); then the
    outstanding requests are awaited. The client's garbage collector is paused meanwhile."""
    with _collector_paused():
        return _closed_loop(
            target,
            make,
            connections=connections,
            seconds=seconds,
            requests=requests,
            timeout=timeout,
        )


def open_loop(
    target: Target,
    make: Callable[[int], bytes],
    *,
    rate: float,
    seconds: float,
    max_in_flight: int,
    grace: float = 5.0,
    timeout: float = DEFAULT_TIMEOUT,
) -> Run:
    """``int(seconds * rate)`` requests, request ``i`` due at ``start + i / rate``, on at most
    ``max_in_flight`` connections. Latency is measured from when a request was due. What is
    still unsent ``grace`` seconds after the schedule's end is counted in ``unsent``. The
    client's garbage collector is paused meanwhile."""
    with _collector_paused():
        return _open_loop(
            target,
            make,
            rate=rate,
            seconds=seconds,
            max_in_flight=max_in_flight,
            grace=grace,
            timeout=timeout,
        )


# --------------------------------------------------------------------------- server CPU


def process_group_cpu(pgid: int) -> float | None:
    """User + system CPU seconds used so far by the live processes of the process group
    ``pgid`` (a server started with ``start_new_session=True``: its pid). Linux only (reads
    ``/proc``); None elsewhere. Processes that already exited are not counted."""
    by_process = process_group_cpu_by_pid(pgid)
    return None if by_process is None else sum(by_process.values())


def process_group_cpu_by_pid(pgid: int) -> dict[int, float] | None:
    """:func:`process_group_cpu`, process by process: CPU seconds by pid."""
    import os

    proc = Path("/proc")
    if not proc.is_dir():
        return None
    tick = os.sysconf("SC_CLK_TCK")
    found: dict[int, float] = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rpartition(")")[2].split()
        if int(fields[2]) == pgid:  # fields after the name: state ppid pgrp ...
            found[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick  # utime stime
    return found


def cpu_split(
    before: dict[int, float] | None, after: dict[int, float] | None, seconds: float
) -> list[float] | None:
    """The CPU each process used between two :func:`process_group_cpu_by_pid` readings, in
    cores over ``seconds``, busiest first, leaving out processes under 0.01 core (a server's
    supervisor): how evenly a server's workers shared the load."""
    if before is None or after is None or seconds <= 0:
        return None
    used = [(cpu - before.get(pid, 0.0)) / seconds for pid, cpu in after.items()]
    return sorted((round(cores, 2) for cores in used if cores >= 0.01), reverse=True)
