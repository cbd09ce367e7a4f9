"""query.Threads: the searches' hop off the event loop (a SimpleQueue and call_soon_threadsafe)."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from aisearch_local import query
from aisearch_local.query import Threads


def test_a_call_returns_its_result_from_another_thread() -> None:
    pool = Threads(1, "t")

    async def main() -> tuple[int, str]:
        return await pool.run(lambda a, b: (a + b, threading.current_thread().name), 2, 3)

    total, name = asyncio.run(main())
    assert total == 5
    assert name == "t_1"


def test_an_exception_reaches_the_awaiting_task_and_the_thread_goes_on() -> None:
    pool = Threads(1, "t")

    def boom() -> None:
        raise ValueError("no such instance")

    async def main() -> int:
        with pytest.raises(ValueError, match="no such instance"):
            await pool.run(boom)
        return await pool.run(int, "7")  # the same thread takes the next call

    assert asyncio.run(main()) == 7
    assert pool._threads == 1


def test_a_stop_iteration_is_an_error_not_a_hang() -> None:
    # an asyncio future refuses StopIteration (TypeError in the loop's callback): the awaiting
    # task would wait forever; it gets a RuntimeError instead
    pool = Threads(1, "t")

    async def main() -> None:
        with pytest.raises(RuntimeError, match="StopIteration") as caught:
            await asyncio.wait_for(pool.run(next, iter(())), 10)
        assert isinstance(caught.value.__cause__, StopIteration)

    asyncio.run(main())


def test_calls_reuse_the_threads_and_never_run_more_than_size_at_once() -> None:
    pool = Threads(2, "t")
    lock = threading.Lock()
    now = most = 0
    names: set[str] = set()

    def work(n: int) -> int:
        nonlocal now, most
        with lock:
            now += 1
            most = max(most, now)
            names.add(threading.current_thread().name)
        time.sleep(0.005)
        with lock:
            now -= 1
        return n * n

    async def main() -> list[int]:
        first = await asyncio.gather(*(pool.run(work, n) for n in range(10)))
        second = [await pool.run(work, n) for n in range(5)]  # one at a time: an idle thread
        return [*first, *second]

    assert asyncio.run(main()) == [n * n for n in range(10)] + [n * n for n in range(5)]
    assert most == 2
    assert names == {"t_1", "t_2"}
    assert pool._threads == 2


def test_a_call_cancelled_before_a_thread_takes_it_does_not_run() -> None:
    pool = Threads(1, "t")
    release = threading.Event()
    ran: list[str] = []

    def first() -> None:
        release.wait(10)
        ran.append("first")

    async def main() -> None:
        busy = asyncio.ensure_future(pool.run(first))
        queued = asyncio.ensure_future(pool.run(ran.append, "second"))
        await asyncio.sleep(0.05)
        queued.cancel()
        await asyncio.sleep(0)
        release.set()
        await busy
        with pytest.raises(asyncio.CancelledError):
            await queued
        await pool.run(ran.append, "third")

    asyncio.run(main())
    assert ran == ["first", "third"]


def test_a_result_for_a_closed_event_loop_is_dropped() -> None:
    pool = Threads(1, "t")
    started, release, done = threading.Event(), threading.Event(), threading.Event()

    def slow() -> int:
        started.set()
        release.wait(10)
        return 1

    loop = asyncio.new_event_loop()
    task = loop.create_task(pool.run(slow))
    loop.run_until_complete(asyncio.sleep(0))  # the call is queued
    assert started.wait(10)
    task.cancel()
    loop.run_until_complete(asyncio.gather(task, return_exceptions=True))
    loop.close()
    release.set()
    # the thread survives the closed loop and takes the next call
    assert asyncio.run(pool.run(done.set)) is None
    assert done.is_set()


def test_the_query_service_pools_are_threads() -> None:
    assert isinstance(query._CPU_THREADS, Threads)
    assert isinstance(query._WAIT_THREADS, Threads)
    assert query._WAIT_THREADS.size == 40
