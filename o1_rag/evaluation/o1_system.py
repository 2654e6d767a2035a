"""The O1 systems of an evaluation: the O1 embedder never, always or automatically thinking, searched
through the same Chroma store (and query pipeline pieces) users get."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from o1_rag.data import Document
from o1_rag.evaluation.context import EvalContext, EvalSettings
from o1_rag.retrievers import DenseRun, Ranking, corpus_digest


class O1System:
    """The O1 embedder, with (``o1``, ``o1-mix``) or without (``o1-nothink``) thinking, through the Chroma
    store."""

    def __init__(
        self,
        think: bool | str,
        context: EvalContext | EvalSettings,
        query_weight: float | None = None,
        think_mode: str | None = None,
    ) -> None:
        self.name = {"auto": "o1-auto", False: "o1-nothink"}.get(think, "o1")
        if query_weight is not None:
            self.name = "o1-mix" if query_weight == 0.5 else f"o1-mix:{query_weight:g}"
        if think_mode is not None:
            self.name = f"o1-{think_mode}"
        self.think = think
        self.think_mode = think_mode
        self.query_weight = query_weight
        self.context = EvalContext.of(context)
        self.thoughts: dict[str, list[str]] = {}
        self.decisions: dict[str, Any] = {}  # query id -> GateDecision (auto)
        self.sampling = ""  # the thinking settings used, resolved against the model's defaults

    @property
    def note(self) -> str:
        """The thinking settings used (the model's defaults filled in, so a report says what its command
        line leaves to the model); how often ``o1-auto`` thought; with early stopping, how many thoughts
        were written."""
        parts = [self.sampling] if self.sampling else []
        if self.think == "auto" and self.decisions:
            thought = sum(d.think for d in self.decisions.values())
            parts.append(f"thought on {thought} of {len(self.decisions)} queries")
        agree = self.context.settings.agree
        if agree is not None and self.thoughts:
            written = sum(len(t) for t in self.thoughts.values())
            queries = len(self.thoughts)
            parts.append(f"{written} thoughts for {queries} queries (early stop at agree {agree:g})")
        return "; ".join(parts)

    def client(self) -> Any:
        """The Chroma client of the evaluation store."""
        from o1_rag.store import open_client

        return open_client(self.context.settings.db_path())

    def index(self, embedder: Any, corpus: list[Document]) -> Any:
        """The collection holding ``corpus`` for ``embedder``, indexed (resumably) when needed."""
        from o1_rag.indexing import index_documents
        from o1_rag.store import O1Collection

        name = f"eval-{corpus_digest(corpus)}-{embedder.fingerprint}"
        collection = O1Collection.create_or_open(
            self.client(), name, embedder.fingerprint, embedder.dim, embedder.describe()
        )
        index_documents(embedder, collection, corpus, progress=self.context.sink(f"{self.name}: index"))
        return collection

    def retrieve(self, corpus: list[Document], queries: dict[str, str], k: int) -> Ranking:
        return self.dense_run(corpus, queries, k).ranking

    def dense_run(self, corpus: list[Document], queries: dict[str, str], k: int) -> DenseRun:
        """The ranking of ``queries`` with their vectors, for a hybrid's feedback."""
        s, models = self.context.settings, self.context.models
        embedder = models.embedder(s.model, s.adapter)
        collection = self.index(embedder, corpus)  # the think mode changes queries only, not documents
        if self.think_mode is not None:
            embedder = models.embedder(s.model, s.adapter, self.think_mode)
        embedder.progress = self.context.sink(f"{self.name}: thinking")
        try:
            return self._retrieve(embedder, collection, queries, k)
        finally:
            embedder.progress = None

    def _retrieve(self, embedder: Any, collection: Any, queries: dict[str, str], k: int) -> DenseRun:
        s = self.context.settings
        qids = list(queries)
        texts = [queries[q] for q in qids]
        if s.exact:
            stored = collection.collection.get(include=["embeddings"], limit=collection.count())
            matrix = np.asarray(stored["embeddings"], dtype=np.float32)

            def run(vectors: np.ndarray, depth: int) -> DenseRun:
                return DenseRun.exact(vectors, matrix, list(stored["ids"]), qids, depth)

        else:

            def search(vectors: np.ndarray, depth: int) -> Ranking:
                hits = collection.search(vectors, k=depth)
                return {qid: {h.id: h.score for h in row} for qid, row in zip(qids, hits, strict=True)}

            def run(vectors: np.ndarray, depth: int) -> DenseRun:
                return DenseRun(qids, vectors, search(vectors, depth), search, collection.vectors)

        if self.think:
            self.sampling = self._sampling(embedder)
        if self.think == "auto":
            return self._auto(embedder, texts, qids, run, k)
        if self.think:
            vectors, thoughts = embedder.think_and_embed(
                texts, s.think_params(), query_weight=self.query_weight
            )
            self.thoughts.update(zip(qids, thoughts, strict=True))
        else:
            vectors = embedder.embed_queries(texts, think=False)
        return run(vectors, k)

    def _sampling(self, embedder: Any) -> str:
        params = embedder.resolve(self.context.settings.think_params())
        weight = embedder.query_weight if self.query_weight is None else self.query_weight
        dtype = getattr(getattr(embedder.thinker, "model", None), "dtype", None)  # a local LM thinker's
        weights = f", thinker weights {str(dtype).removeprefix('torch.')}" if dtype is not None else ""
        return (
            f"{params.num_thoughts} thoughts of at most {params.max_new_tokens} tokens at temperature "
            f"{params.temperature:g} (top-p {params.top_p:g}, seed {params.seed}), query weight {weight:g}"
            f"{weights}"
        )

    def _auto(
        self, embedder: Any, texts: list[str], qids: list[str], run: Callable[..., DenseRun], k: int
    ) -> DenseRun:
        """``think="auto"``: the gate decides from the query-only hits which queries think."""
        from o1_rag.gate import TOP
        from o1_rag.search import think_where_gated

        vectors = embedder.embed_queries(texts, think=False)
        probe = run(vectors, max(TOP, k))
        tops = [sorted(probe.ranking[qid].values(), reverse=True) for qid in qids]
        vectors, thoughts, decisions = think_where_gated(
            embedder,
            texts,
            vectors,
            tops,
            self.context.settings.think_params(),
            query_weight=self.query_weight,
        )
        self.decisions.update(zip(qids, decisions, strict=True))
        self.thoughts.update((qid, t) for qid, t in zip(qids, thoughts, strict=True) if t)
        if not any(d.think for d in decisions):
            return probe
        return run(vectors, k)
