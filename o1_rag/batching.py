"""Micro-batching for async callers: concurrent requests within a short window share one batched call.

Used by the integrations so that, say, 16 concurrent ``ainvoke`` calls become one batched ``think`` call
run off the event loop instead of 16 sequential generations.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Hashable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class MicroBatcher(Generic[T, R]):
    """Gather items submitted concurrently and process them with one call of ``fn``.

    Args:
        fn: takes a list of items and returns one result per item, in order; runs in a worker thread.
        window_s: how long the first request of a batch waits for others to join.
        max_batch: a batch is dispatched at once when it reaches this size.

    One batcher serves any number of event loops (each loop keeps its own pending batch). Items whose
    ``group`` keys differ (e.g. different ``k``) are never put in the same call.
    """

    def __init__(
        self, fn: Callable[[list[T]], Sequence[R]], window_s: float = 0.02, max_batch: int = 32
    ) -> None:
        if window_s < 0:
            raise ValueError(f"window_s must be >= 0, got {window_s}")
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        self.fn = fn
        self.window_s = window_s
        self.max_batch = max_batch
        self.calls = 0  # batched calls made so far
        self._pending: dict[tuple[int, Hashable], list[tuple[T, asyncio.Future[R]]]] = {}
        self._lock = threading.Lock()
        self._tasks: set[asyncio.Task[None]] = set()  # strong references until each batch finishes

    async def submit(self, item: T, group: Hashable = None) -> R:
        """Queue ``item`` and wait for its result."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        key = (id(loop), group)
        with self._lock:
            batch = self._pending.setdefault(key, [])
            batch.append((item, future))
            first, full = len(batch) == 1, len(batch) >= self.max_batch
            if full:
                del self._pending[key]
        if full:
            self._start(loop, batch)
        elif first:
            loop.call_later(self.window_s, self._flush, key, batch)
        return await future

    def _flush(self, key: tuple[int, Hashable], batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        with self._lock:
            if self._pending.get(key) is not batch:
                return  # already dispatched because it filled up
            del self._pending[key]
        self._start(asyncio.get_running_loop(), batch)

    def _start(self, loop: asyncio.AbstractEventLoop, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        task = loop.create_task(self._run(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        self.calls += 1
        items = [item for item, _ in batch]
        try:
            results = await asyncio.to_thread(self.fn, items)
            if len(results) != len(items):
                raise RuntimeError(f"batched call returned {len(results)} results for {len(items)} items")
        except BaseException as exc:  # hand the failure to every waiter
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)
