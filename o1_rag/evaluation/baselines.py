"""The baseline systems of an evaluation: BM25, a dense bi-encoder, HyDE, and any dense system fused with
BM25 (the hybrids)."""

from __future__ import annotations

from typing import Any

import numpy as np

from o1_rag.data import Document
from o1_rag.encoders import BUNDLED_ENCODER
from o1_rag.evaluation.context import EvalContext, EvalSettings, UnknownSystemError
from o1_rag.feedback import FEEDBACK_DOCS, check_feedback, feedback_vectors
from o1_rag.retrievers import BM25Retriever, DenseRetriever, DenseRun, Ranking, corpus_digest

DEFAULT_DENSE = BUNDLED_ENCODER


class BM25System:
    """bm25s (Lucene variant), English stop words, Snowball stemming (``o1_rag.retrievers.BM25Retriever``)."""

    name = "bm25"

    def __init__(self) -> None:
        self._retriever: BM25Retriever | None = None

    def lexical(self, corpus: list[Document]) -> BM25Retriever:
        """The BM25 retriever of ``corpus`` (built once per corpus)."""
        if self._retriever is None or self._retriever.digest != corpus_digest(corpus):
            self._retriever = BM25Retriever(corpus)
        return self._retriever

    def search(self, corpus: list[Document], queries: dict[str, str], k: int) -> dict[str, Any]:
        """Each query's ``LexicalHits``."""
        qids = list(queries)
        hits = self.lexical(corpus).search([queries[q] for q in qids], k)
        return dict(zip(qids, hits, strict=True))

    def retrieve(self, corpus: list[Document], queries: dict[str, str], k: int) -> Ranking:
        return {
            qid: dict(zip(hits.ids, hits.scores, strict=True))
            for qid, hits in self.search(corpus, queries, k).items()
        }


class HybridSystem:
    """A dense system's ranking fused with BM25's (``o1_rag.lexical.fuse``): ``bm25+dense``,
    ``o1-hybrid``, ``o1-nothink-hybrid``."""

    def __init__(self, name: str, dense: Any, feedback: int = FEEDBACK_DOCS) -> None:
        self.name = name
        self.dense = dense
        self.lexical = BM25System()
        self.feedback = check_feedback(feedback)

    @property
    def thoughts(self) -> dict[str, list[str]]:
        return getattr(self.dense, "thoughts", {})

    @property
    def note(self) -> str:
        """The dense side's note, and the feedback setting."""
        parts = [getattr(self.dense, "note", "")]
        parts.append(
            f"feedback from the {self.feedback} best fused documents" if self.feedback else "no feedback"
        )
        return "; ".join(p for p in parts if p)

    def retrieve(self, corpus: list[Document], queries: dict[str, str], k: int) -> Ranking:
        from o1_rag.lexical import FUSION_DEPTH, fuse

        depth = max(k, FUSION_DEPTH)
        run = self.dense.dense_run(corpus, queries, depth)
        lexical = self.lexical.search(corpus, queries, depth)

        def fused(dense: Ranking, qid: str, top: int) -> list[Any]:
            ordered = sorted(dense.get(qid, {}).items(), key=lambda item: -item[1])
            return fuse(ordered, lexical[qid], top, depth)

        dense = run.ranking
        if self.feedback:
            top = [[hit.id for hit in fused(dense, qid, self.feedback)] for qid in run.qids]
            dense = run.search(feedback_vectors(run.vectors, top, run.documents), depth)
        return {qid: {hit.id: hit.score for hit in fused(dense, qid, k)} for qid in queries}


class DenseSystem:
    """A sentence-transformers bi-encoder (default: the bundled all-MiniLM-L6-v2), corpus vectors cached."""

    def __init__(self, model: str, context: EvalContext | EvalSettings) -> None:
        from o1_rag.errors import ModelNotFoundError

        self.name = "dense" if model == DEFAULT_DENSE else f"dense:{model}"
        s = EvalContext.of(context).settings
        try:
            self.encoder = DenseRetriever(
                model, device=s.device, cache_dir=s.cache_dir(), precision=s.precision
            )
        except ModelNotFoundError as exc:
            raise UnknownSystemError(f"cannot load dense model '{model}': {exc}") from None

    def query_vectors(self, queries: list[str]) -> np.ndarray:
        return self.encoder.encode(queries)

    def retrieve(self, corpus: list[Document], queries: dict[str, str], k: int) -> Ranking:
        return self.dense_run(corpus, queries, k).ranking

    def dense_run(self, corpus: list[Document], queries: dict[str, str], k: int) -> DenseRun:
        """The ranking of ``queries`` with their vectors, for a hybrid's feedback."""
        qids = list(queries)
        docs = self.encoder.corpus_vectors(corpus)
        vectors = self.query_vectors([queries[q] for q in qids])
        return DenseRun.exact(vectors, docs, [d.id for d in corpus], qids, k)


class HydeSystem(DenseSystem):
    """HyDE: the generator writes one hypothetical passage per query; the dense embeddings of the query and
    the passage are averaged (as LangChain's and LlamaIndex's HyDE do).

    The generator is ``--generator`` (a causal LM, prompted through its chat template) or, by default, the
    thinker of the evaluated O1 model: then HyDE and O1 differ only in how the text becomes a vector.
    """

    def __init__(self, model: str, context: EvalContext | EvalSettings) -> None:
        self.context = EvalContext.of(context)
        super().__init__(model, self.context)
        self.name = "hyde" if model == DEFAULT_DENSE else f"hyde:{model}"
        self.passages: dict[str, str] = {}

    def writer(self) -> Any:
        """An ``O1Embedder`` whose thinker writes the passages (its cache keeps them)."""
        from o1_rag.embedder import O1Embedder

        s, models = self.context.settings, self.context.models
        if s.generator is None:
            own = models.embedder(s.model, s.adapter)
            return O1Embedder(self.encoder.encoder, own.thinker, cache=own.cache)
        return models.writer(s.generator, self.encoder.encoder)

    def query_vectors(self, queries: list[str]) -> np.ndarray:
        from o1_rag.encoders import normalise_rows

        passages = self.writer().think(queries, params=self.context.settings.think_params(num_thoughts=1))
        self.passages.update({q: p[0] for q, p in zip(queries, passages, strict=True)})
        both = self.encoder.encode(list(queries)) + self.encoder.encode(
            [p[0] or q for q, p in zip(queries, passages, strict=True)]
        )
        return normalise_rows(both)
