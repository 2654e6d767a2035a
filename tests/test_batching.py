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
