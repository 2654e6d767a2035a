"""The thinker interface: ``Thinker``, ``ThinkParams``, the thought-cache helper and ``CallableThinker``."""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from o1_rag.errors import O1RagError
from o1_rag.prompts import INSTRUCTION_DIGEST, THINK_INSTRUCTION

#: Thinking budget when neither the call nor the model's config sets it.
DEFAULT_NUM_THOUGHTS = 3
DEFAULT_MAX_NEW_TOKENS = 64
#: Sampling temperature when neither the call nor the model's config sets it (the paper's).
DEFAULT_TEMPERATURE = 0.1


Messages = list[dict[str, str]]


class ThinkerError(O1RagError):
    """A thinker could not produce thoughts (an endpoint down or answering nonsense)."""


@dataclass(frozen=True)
class ThinkParams:
    """Generation settings of one ``think`` call; they are part of the thought-cache key.

    Fields left None take the model's defaults (its ``o1_config.json``), else 3 thoughts of at most 64 new
    tokens (the paper samples 3 of up to 128 tokens; 64 keeps CPU latency reasonable) at temperature 0.1
    (the paper's; a model may set its own ``temperature`` there). Top-p 0.9 follows the paper.
    ``repetition_penalty`` (the ``generate`` option; 1 = none) defaults to the thinker's own default when
    None. ``agree`` (a cosine in (0, 1]; None: off) is early stopping, done by an ``O1Embedder`` (it needs
    the encoder): a query's thoughts are sampled two at first, then one at a time, until two of them embed
    within that cosine of each other or ``num_thoughts`` are written. A thinker alone ignores it.
    """

    num_thoughts: int | None = None
    max_new_tokens: int | None = None
    temperature: float | None = None
    top_p: float = 0.9
    seed: int | None = None
    repetition_penalty: float | None = None
    agree: float | None = None

    @property
    def stops_early(self) -> bool:
        """Whether ``agree`` can stop sampling before ``num_thoughts`` (it needs more than two)."""
        return self.agree is not None and (self.num_thoughts or 0) > 2

    def __post_init__(self) -> None:
        if self.num_thoughts is not None and self.num_thoughts < 1:
            raise ValueError(f"num_thoughts must be >= 1, got {self.num_thoughts}")
        if self.max_new_tokens is not None and self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.temperature is not None and self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.repetition_penalty is not None:
            check_penalty(self.repetition_penalty)
        if self.agree is not None and not 0 < self.agree <= 1:
            raise ValueError(f"agree must be a cosine in (0, 1], got {self.agree}")


def check_penalty(penalty: float) -> float:
    """A repetition penalty must be > 0 (1 = none)."""
    if not penalty > 0:
        raise ValueError(f"repetition_penalty must be > 0, got {penalty}")
    return float(penalty)


def think_prompt(query: str) -> str:
    """The user turn that asks a general model for a thought about ``query`` (the paper's prompt)."""
    return f"{THINK_INSTRUCTION}\n\nQuery: {query}"


class Thinker(ABC):
    """Writes thoughts for queries. Subclasses implement ``_think`` and ``identity``."""

    #: Default repetition penalty, used when ``ThinkParams`` leaves it unset.
    repetition_penalty: float = 1.0

    def __init__(self) -> None:
        self.generate_calls = 0  # counts batched generation calls (benchmarks, tests)

    @property
    @abstractmethod
    def identity(self) -> dict[str, Any]:
        """What decides this thinker's thoughts (model, adapter, prompt); JSON-serialisable."""

    def _cache_identity(self) -> dict[str, Any]:
        return self.identity

    @property
    def cache_id(self) -> str:
        """Short hash of what decides the thoughts: the thinker's part of a thought-cache key."""
        raw = json.dumps(self._cache_identity(), sort_keys=True, default=str).encode()
        return "thinker:" + hashlib.sha256(raw).hexdigest()[:16]

    def describe(self) -> str:
        """Human-readable name."""
        return str(self.identity.get("name", type(self).__name__))

    def resolve(self, params: ThinkParams) -> ThinkParams:
        """``params`` with what it leaves unset filled from this thinker's defaults."""
        return replace(
            params,
            num_thoughts=params.num_thoughts or DEFAULT_NUM_THOUGHTS,
            max_new_tokens=params.max_new_tokens or DEFAULT_MAX_NEW_TOKENS,
            temperature=DEFAULT_TEMPERATURE if params.temperature is None else params.temperature,
            repetition_penalty=(
                self.repetition_penalty if params.repetition_penalty is None else params.repetition_penalty
            ),
        )

    def cache_params(self, params: ThinkParams) -> dict[str, Any]:
        """The generation settings as they enter the cache key (a penalty of 1 is left out, and so is
        ``agree``: a thinker alone always writes ``num_thoughts``)."""
        fields = asdict(self.resolve(params))
        del fields["agree"]
        if fields["repetition_penalty"] == 1.0:
            del fields["repetition_penalty"]
        return fields

    def think(self, queries: Sequence[str], params: ThinkParams | None = None) -> list[list[str]]:
        """``params.num_thoughts`` thoughts per query, in input order (duplicates generated once)."""
        params = self.resolve(params or ThinkParams())
        queries = list(queries)
        unique = list(dict.fromkeys(queries))
        if not unique:
            return []
        owners = [q for q in unique for _ in range(params.num_thoughts)]
        texts = self._think(owners, params)
        if len(texts) != len(owners):
            raise ThinkerError(f"{self.describe()} returned {len(texts)} thoughts for {len(owners)} prompts")
        by_query: dict[str, list[str]] = {q: [] for q in unique}
        for query, text in zip(owners, texts, strict=True):
            by_query[query].append(text if isinstance(text, str) else str(text))
        return [list(by_query[q]) for q in queries]

    @abstractmethod
    def _think(self, queries: list[str], params: ThinkParams) -> list[str]:
        """One thought per entry of ``queries`` (a query repeated ``num_thoughts`` times)."""


def think_cached(
    thinker: Thinker,
    queries: list[str],
    params: ThinkParams,
    cache: Any = None,
    progress: Callable[[int, int], None] | None = None,
    chunk: int = 64,
) -> list[list[str]]:
    """``thinker.think`` through a ``ThoughtCache`` (None: no cache): cached queries are looked up, the
    others generated and stored, keyed by the thinker's identity and the resolved settings.

    Missing queries are generated ``chunk`` at a time, each chunk stored as soon as it is written (an
    interrupted run keeps what it wrote); ``progress(done, to_generate)`` is told after each chunk."""
    params = thinker.resolve(params)
    key = thinker.cache_params(params)
    unique = list(dict.fromkeys(queries))
    found = cache.get_many(thinker.cache_id, key, unique) if cache is not None else {}
    missing = [q for q in unique if q not in found]
    if progress is not None and missing:
        progress(0, len(missing))
    for start in range(0, len(missing), chunk):
        part = missing[start : start + chunk]
        generated = dict(zip(part, thinker.think(part, params), strict=True))
        if cache is not None:
            cache.put_many(thinker.cache_id, key, generated)
        found.update(generated)
        if progress is not None:
            progress(start + len(part), len(missing))
    return [list(found[q]) for q in queries]


class CallableThinker(Thinker):
    """Thoughts from a function ``prompts -> texts`` (one text per prompt, in order).

    The integrations use it to let a LangChain chat model or a LlamaIndex ``LLM`` think. ``name``
    identifies the writer in cache keys: give each different LLM its own name.
    """

    def __init__(self, generate: Callable[[list[str], ThinkParams], Sequence[str]], name: str) -> None:
        super().__init__()
        if not name:
            raise ValueError("a CallableThinker needs a name (it keys the thought cache)")
        self._generate = generate
        self.name = name

    @property
    def identity(self) -> dict[str, Any]:
        return {"kind": "callable", "name": self.name, "instruction": INSTRUCTION_DIGEST}

    def _think(self, queries: list[str], params: ThinkParams) -> list[str]:
        self.generate_calls += 1
        return [str(t).strip() for t in self._generate([think_prompt(q) for q in queries], params)]
