import asyncio
import threading

import pytest

from o1_rag.batching import MicroBatcher


def test_concurrent_submissions_share_one_call() -> None:
    seen: list[list[int]] = []
    threads: set[int] = set()

    def double(items: list[int]) -> list[int]:
        seen.append(items)
        threads.add(threading.get_ident())
        return [2 * i for i in items]

    batcher = MicroBatcher(double, window_s=0.05, max_batch=32)

    async def main() -> list[int]:
        return await asyncio.gather(*(batcher.submit(i) for i in range(16)))

    assert asyncio.run(main()) == [2 * i for i in range(16)]
    assert batcher.calls == 1 and sorted(seen[0]) == list(range(16))
    assert threading.get_ident() not in threads  # ran off the event loop thread


def test_max_batch_and_groups_split_calls() -> None:
    batcher = MicroBatcher(lambda items: [(len(items), i) for i in items], window_s=0.05, max_batch=4)

    async def main():
        plain = [batcher.submit(i) for i in range(10)]
        other = [batcher.submit(i, group="k=1") for i in range(2)]
        return await asyncio.gather(*plain, *other)

    results = asyncio.run(main())
    assert [size for size, _ in results[:10]] == [4] * 8 + [2] * 2
    assert [size for size, _ in results[10:]] == [2, 2]
    assert batcher.calls == 4


def test_errors_reach_every_waiter() -> None:
    def fail(items: list[int]) -> list[int]:
        raise ValueError("bad batch")

    batcher = MicroBatcher(fail, window_s=0.01)

    async def main():
        return await asyncio.gather(batcher.submit(1), batcher.submit(2), return_exceptions=True)

    assert [str(r) for r in asyncio.run(main())] == ["bad batch", "bad batch"]
    with pytest.raises(ValueError):
        MicroBatcher(fail, max_batch=0)


def _wait_until(predicate, timeout: float = 10.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


class _Gated:
    """A batched function whose first call blocks until released; records each call's items."""

    def __init__(self) -> None:
        self.seen: list[list[int]] = []
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, items: list[int]) -> list[int]:
        self.seen.append(list(items))
        if len(self.seen) == 1:
            self.entered.set()
            assert self.release.wait(10)
        if 99 in items:
            raise ValueError("bad item 99")
        return [2 * i for i in items]


def _threads(batcher: MicroBatcher, items: list[int], group=None) -> tuple[list[threading.Thread], dict]:
    out: dict[int, object] = {}

    def run(i: int) -> None:
        try:
            out[i] = batcher.call(i, group=group)
        except ValueError as exc:
            out[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in items]
    for t in threads:
        t.start()
    return threads, out


def _queued(batcher: MicroBatcher, group=None) -> int:
    with batcher._cond:
        return len(batcher._queues.get(group, []))


def test_a_lone_synchronous_call_runs_at_once() -> None:
    fn = _Gated()
    fn.release.set()
    batcher = MicroBatcher(fn, window_s=5.0)  # the window is for submit; call never waits for it
    assert batcher.call(3) == 6 and batcher.call(4) == 8
    assert fn.seen == [[3], [4]] and batcher.calls == 2


def test_threads_arriving_during_a_call_share_the_next_one() -> None:
    fn = _Gated()
    batcher = MicroBatcher(fn, max_batch=3)
    first, out = _threads(batcher, [0])
    assert fn.entered.wait(10)
    rest, out_rest = _threads(batcher, [1, 2, 3, 4, 5])
    _wait_until(lambda: _queued(batcher) == 5)
    other, out_other = _threads(batcher, [7], group="k=1")  # another group does not wait for this one
    for t in other:
        t.join(10)
    assert out_other == {7: 14}
    fn.release.set()
    for t in first + rest:
        t.join(10)
    assert out == {0: 0} and out_rest == {i: 2 * i for i in range(1, 6)}
    sizes = [len(items) for items in fn.seen if 7 not in items]
    assert sizes == [1, 3, 2]  # the five waiters in calls of at most max_batch, longest waiting first
    assert batcher.calls == 4 and batcher._queues == {}


def test_a_failed_call_fails_its_items_and_the_next_call_still_runs() -> None:
    fn = _Gated()
    batcher = MicroBatcher(fn, max_batch=2)
    first, out = _threads(batcher, [0])
    assert fn.entered.wait(10)
    failing, out_failing = _threads(batcher, [99])
    _wait_until(lambda: _queued(batcher) == 1)
    partner, out_partner = _threads(batcher, [5])
    _wait_until(lambda: _queued(batcher) == 2)
    later, out_later = _threads(batcher, [6])
    _wait_until(lambda: _queued(batcher) == 3)
    fn.release.set()
    for t in first + failing + partner + later:
        t.join(10)
    assert out == {0: 0} and out_later == {6: 12}
    assert isinstance(out_failing[99], ValueError) and isinstance(out_partner[5], ValueError)
    assert batcher._queues == {}
