"""A thinker loaded on first use.

With ``think="auto"`` most queries of a thinker + encoder model never think, and ``--think never`` none do;
loading the causal LM (seconds on a CPU, hundreds of MB) only pays for queries that think. ``LazyThinker``
wraps how to load a thinker and loads it, once and thread-safely, the first time anything of it is used:
its identity, its settings or a ``think`` call. Until then an embedder built with it searches, indexes and
gates without it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from o1_rag.thinkers.base import Thinker, ThinkParams

_OWN = frozenset({"_load", "_loaded", "_lock", "name"})


class LazyThinker(Thinker):
    """Stands for the thinker ``load()`` returns and loads it on first use; ``name`` says what it will be.

    Every attribute not defined here (``mode``, ``generation_batch_size``, ``model``, ...) is read from and
    written to the loaded thinker.
    """

    def __init__(self, load: Callable[[], Thinker], name: str) -> None:  # no Thinker.__init__: no own state
        object.__setattr__(self, "_load", load)
        object.__setattr__(self, "_loaded", None)
        object.__setattr__(self, "_lock", threading.Lock())
        object.__setattr__(self, "name", name)

    @property
    def is_loaded(self) -> bool:
        """Whether the thinker has been loaded yet."""
        return self._loaded is not None

    def load(self) -> Thinker:
        """The thinker, loaded now if it was not yet."""
        if self._loaded is None:
            with self._lock:
                if self._loaded is None:
                    object.__setattr__(self, "_loaded", self._load())
        assert self._loaded is not None
        return self._loaded

    @property
    def identity(self) -> dict[str, Any]:
        return self.load().identity

    @property
    def cache_id(self) -> str:
        return self.load().cache_id

    @property
    def repetition_penalty(self) -> float:  # type: ignore[override]
        return self.load().repetition_penalty

    @repetition_penalty.setter
    def repetition_penalty(self, value: float) -> None:
        self.load().repetition_penalty = value

    @property
    def generate_calls(self) -> int:  # type: ignore[override]
        return self._loaded.generate_calls if self._loaded is not None else 0

    @generate_calls.setter
    def generate_calls(self, value: int) -> None:
        self.load().generate_calls = value

    def _cache_identity(self) -> dict[str, Any]:
        return self.load()._cache_identity()

    def describe(self) -> str:
        return self.load().describe() if self._loaded is not None else f"{self.name} (not loaded yet)"

    def resolve(self, params: ThinkParams) -> ThinkParams:
        return self.load().resolve(params)

    def cache_params(self, params: ThinkParams) -> dict[str, Any]:
        return self.load().cache_params(params)

    def think(self, queries: Sequence[str], params: ThinkParams | None = None) -> list[list[str]]:
        return self.load().think(queries, params)

    def _think(self, queries: list[str], params: ThinkParams) -> list[str]:
        return self.load()._think(queries, params)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.load(), name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _OWN:
            object.__setattr__(self, name, value)
        elif isinstance(getattr(type(self), name, None), property):
            object.__setattr__(self, name, value)  # goes through the property's setter
        else:
            setattr(self.load(), name, value)
