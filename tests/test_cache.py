import multiprocessing as mp
from pathlib import Path

from o1_rag.cache import ThoughtCache

PARAMS = {"num_thoughts": 2, "temperature": 0.1}


def test_round_trip_and_key_sensitivity(tmp_path: Path) -> None:
    cache = ThoughtCache(tmp_path / "t.sqlite")
    cache.put_many("fp1", PARAMS, {"q": ["a", "b"]})
    assert cache.get_many("fp1", PARAMS, ["q", "other"]) == {"q": ["a", "b"]}
    assert cache.get_many("fp2", PARAMS, ["q"]) == {}
    assert cache.get_many("fp1", {**PARAMS, "temperature": 0.7}, ["q"]) == {}
    assert cache.get_many("fp1", dict(reversed(PARAMS.items())), ["q"]) == {"q": ["a", "b"]}  # order-free
    reopened = ThoughtCache(tmp_path / "t.sqlite")
    assert reopened.get_many("fp1", PARAMS, ["q"]) == {"q": ["a", "b"]}
    assert len(reopened) == 1 and reopened.clear("fp1") == 1 and len(reopened) == 0


def _writer(path: str, worker: int) -> None:
    cache = ThoughtCache(path)
    for i in range(40):
        cache.put_many("fp", PARAMS, {f"w{worker}-q{i}": [f"t{i}"]})


def test_several_processes_write_safely(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.sqlite")
    ThoughtCache(path)
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, w)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    cache = ThoughtCache(path)
    assert len(cache) == 160
    assert cache.get_many("fp", PARAMS, ["w3-q39"]) == {"w3-q39": ["t39"]}


def test_an_empty_cache_given_to_a_loader_is_used(tmp_path: Path) -> None:
    """An empty ``ThoughtCache`` has length 0; the loader keeps it rather than treating it as "no cache"."""
    from o1_rag.loading import open_cache

    empty = ThoughtCache(tmp_path / "t.sqlite")
    assert len(empty) == 0 and open_cache(empty) is empty
    assert open_cache(False) is None and open_cache(None) is None
