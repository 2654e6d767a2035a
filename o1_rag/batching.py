"""Micro-batching: concurrent requests share one batched call.

Used by the integrations so that, say, 16 concurrent ``ainvoke`` calls become one batched ``think`` call
run off the event loop instead of 16 sequential generations (``submit``: the first request waits a short
window for others), and so that threads calling at once (LangChain's ``batch``, a threaded web server)
share batched calls too (``call``: nobody waits for a window; requests that arrive while a call runs go
together into the next one).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


@dataclass(eq=False)
class _Ticket:
    """One synchronous request: its item, then its result or error; ``leads`` when its thread must run
    the next call."""

    item: Any
    done: bool = False
    result: Any = None
    error: BaseException | None = None
    leads: bool = False


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
        self._cond = threading.Condition()  # the synchronous path (``call``)
        self._queues: dict[Hashable, list[_Ticket]] = {}  # per group: waiting tickets, a call running

    def call(self, item: T, group: Hashable = None) -> R:
        """Process ``item`` from a thread and return its result (or raise its call's error).

        A lone caller runs at once, alone. Items of the same ``group`` submitted by other threads while a
        call runs wait for it, then run together (up to ``max_batch``) in one call, made by the first of
        them; so N threads that arrive while the first runs make two calls (it alone, then the rest, split by
        ``max_batch``) instead of N, and no one waits for a window.
        """
        ticket = _Ticket(item)
        with self._cond:
            queue = self._queues.get(group)
            if queue is None:  # nothing of this group running: this thread runs now
                queue = self._queues[group] = []
                ticket.leads = True
            queue.append(ticket)
            self._cond.wait_for(lambda: ticket.done or ticket.leads)
            if not ticket.done:
                batch = queue[: self.max_batch]
                del queue[: self.max_batch]
        if not ticket.done:
            self._run_tickets(group, batch)
        if ticket.error is not None:
            raise ticket.error
        return ticket.result  # type: ignore[no-any-return]

    def _run_tickets(self, group: Hashable, batch: list[_Ticket]) -> None:
        self.calls += 1
        try:
            results = self.fn([t.item for t in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"batched call returned {len(results)} results for {len(batch)} items")
        except BaseException as exc:  # every ticket of the call gets the failure
            results, error = [None] * len(batch), exc
        else:
            error = None
        with self._cond:
            for ticket, result in zip(batch, results, strict=True):
                ticket.result, ticket.error, ticket.done = result, error, True
            queue = self._queues[group]
            if queue:
                queue[0].leads = True  # the longest waiter runs the next call
            else:
                del self._queues[group]
            self._cond.notify_all()

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
