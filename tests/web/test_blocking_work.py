"""Blocking work handed from coroutines to threads: ``run_blocking`` (a pool, for any
database work) and ``run_quick_read`` (one thread per process, for short reads such as a
consent check; ADR 27). Both return the work's value, raise its error, and run it in a copy
of the caller's context variables."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import pytest

from parrain.web.deps import run_blocking, run_quick_read

_who: contextvars.ContextVar[str] = contextvars.ContextVar("who", default="nobody")
T = TypeVar("T")


def _run(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """``asyncio.run(main())`` on a thread of its own (the test's thread may already run an
    event loop, left by another test of the same worker)."""
    out: list[T] = []
    failure: list[BaseException] = []

    def target() -> None:
        try:
            out.append(asyncio.run(main()))
        except BaseException as error:  # handed to the test's thread
            failure.append(error)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(30)
    if failure:
        raise failure[0]
    return out[0]


@pytest.mark.parametrize("runner", [run_blocking, run_quick_read])
def test_the_value_the_error_and_the_context_come_through(runner: object) -> None:
    async def main() -> tuple[str, str]:
        _who.set("caller")
        name = await runner(lambda: threading.current_thread().name)  # type: ignore[operator]
        seen = await runner(_who.get)  # type: ignore[operator]
        with pytest.raises(ZeroDivisionError):
            await runner(lambda: 1 / 0)  # type: ignore[operator]
        return name, seen

    name, seen = _run(main)
    assert seen == "caller"
    assert name != threading.current_thread().name  # not on the event loop's thread


def test_quick_reads_share_one_thread_and_queue_behind_each_other() -> None:
    started = threading.Event()
    release = threading.Event()
    order: list[str] = []

    def slow() -> str:
        started.set()
        release.wait(5)
        order.append("slow")
        return threading.current_thread().name

    def quick() -> str:
        order.append("quick")
        return threading.current_thread().name

    async def main() -> list[str]:
        first = asyncio.ensure_future(run_quick_read(slow))
        await asyncio.get_running_loop().run_in_executor(None, started.wait, 5)
        second = asyncio.ensure_future(run_quick_read(quick))
        await asyncio.sleep(0.05)
        assert order == []  # the quick one waits for the thread
        release.set()
        return list(await asyncio.gather(first, second))

    names = _run(main)
    assert order == ["slow", "quick"]
    assert names[0] == names[1]
    assert names[0].startswith("parrain-quick-read")
