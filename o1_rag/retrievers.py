"""The two plain retrievers over an in-memory corpus: BM25 (``o1_rag.lexical.LexicalIndex``) and a dense
sentence-transformers encoder, shared by the synthesis committee (scores of a known positive, hard
negatives) and the evaluation systems (rankings). Hybrid search over a Chroma collection uses the same
``LexicalIndex``, kept in step with the collection (``o1_rag.lexical.sync_lexical``)."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from o1_rag.data import Document
from o1_rag.files import atomic_write

Ranking = dict[str, dict[str, float]]  # query id -> {doc id: score}


def corpus_digest(corpus: Sequence[Document]) -> str:
    """Stable hash of a corpus (ids and texts): the key of cached document embeddings."""
    digest = hashlib.sha256()
    for doc in corpus:
        digest.update(f"{doc.id}\0{doc.full_text()}\0".encode())
    return digest.hexdigest()[:16]


def save_npy_atomic(path: Path, array: np.ndarray) -> None:
    """Write ``array`` to ``path`` atomically (``.npy`` format, no pickle)."""
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    atomic_write(path, buffer.getvalue())


def top_k(scores: np.ndarray, ids: Sequence[str], k: int) -> dict[str, float]:
    """The ``k`` best ids of one score row, best first."""
    k = min(k, len(ids))
    best = np.argpartition(-scores, k - 1)[:k]
    best = best[np.argsort(-scores[best])]
    return {ids[i]: float(scores[i]) for i in best}


def exact_search(
    query_vectors: np.ndarray, doc_vectors: np.ndarray, doc_ids: Sequence[str], qids: Sequence[str], k: int
) -> Ranking:
    """Exact inner-product search (cosine for normalised vectors)."""
    scores = query_vectors @ doc_vectors.T  # (n_queries, n_docs)
    return {qid: top_k(scores[row], doc_ids, k) for row, qid in enumerate(qids)}


@dataclass
class DenseRun:
    """One dense retrieval of a set of queries, with what pseudo-relevance feedback needs to search again:
    the query vectors (rows in ``qids`` order), a search of new vectors for the same queries, and the
    stored vectors of given documents."""

    qids: list[str]
    vectors: np.ndarray
    ranking: Ranking
    search: Callable[[np.ndarray, int], Ranking]
    documents: Callable[[Sequence[str]], dict[str, np.ndarray]]

    @classmethod
    def exact(
        cls, vectors: np.ndarray, doc_vectors: np.ndarray, doc_ids: Sequence[str], qids: Sequence[str], k: int
    ) -> DenseRun:
        """Exact search of ``vectors`` over a matrix of document vectors."""
        qids, doc_ids = list(qids), list(doc_ids)
        row = {doc_id: i for i, doc_id in enumerate(doc_ids)}

        def search(new: np.ndarray, depth: int) -> Ranking:
            return exact_search(new, doc_vectors, doc_ids, qids, depth)

        def documents(ids: Sequence[str]) -> dict[str, np.ndarray]:
            return {doc_id: doc_vectors[row[doc_id]] for doc_id in ids if doc_id in row}

        return cls(qids, vectors, search(vectors, k), search, documents)


class BM25Retriever:
    """BM25 over one corpus: every document's score for a query, the score of one document, the top ``k``."""

    def __init__(self, corpus: Sequence[Document]) -> None:
        from o1_rag.lexical import LexicalIndex

        self.ids = [d.id for d in corpus]
        self.row = {doc_id: i for i, doc_id in enumerate(self.ids)}
        self.digest = corpus_digest(corpus)
        self.index = LexicalIndex.build(self.ids, [d.full_text() for d in corpus])

    def scores(self, query: str) -> np.ndarray:
        """``(n_docs,)`` BM25 scores of ``query`` in corpus order."""
        return self.index.scores(query)

    def score_of(self, queries: Sequence[str], doc_id: str) -> np.ndarray:
        """The score document ``doc_id`` gets for each query."""
        row = self.row[doc_id]
        return np.array([float(self.scores(query)[row]) for query in queries])

    def search(self, queries: Sequence[str], k: int) -> list[Any]:
        """Each query's ``LexicalHits`` (ids and scores, best first)."""
        return self.index.search(list(queries), k)

    def top_k(self, query: str, k: int, exclude: set[str]) -> list[str]:
        """Ids of the ``k`` best documents for ``query``, skipping ``exclude``."""
        order = np.argsort(-self.scores(query))
        return [self.ids[i] for i in order[: k + len(exclude)] if self.ids[i] not in exclude][:k]


class DenseRetriever:
    """A sentence-transformers encoder (an alias, folder, hub id or encoder adapter folder), with the corpus
    vectors cached on disk under ``cache_dir`` when one is given; ``precision`` as in ``Encoder``."""

    def __init__(
        self, model: str, device: str = "auto", cache_dir: Path | None = None, precision: str = "auto"
    ) -> None:
        from o1_rag.encoders import SentenceTransformerEncoder

        self.model_name = model
        self.encoder = SentenceTransformerEncoder(model, device=device, precision=precision)
        self.cache_dir = cache_dir

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """``(n, dim)`` L2-normalised embeddings."""
        return self.encoder.embed_documents(list(texts))

    def corpus_vectors(self, corpus: Sequence[Document]) -> np.ndarray:
        """The corpus's embeddings, read from the cache when this encoder already embedded this corpus."""
        if self.cache_dir is None:
            return self.encode([d.full_text() for d in corpus])
        key = hashlib.sha256(self.encoder.identity.encode()).hexdigest()[:12]
        path = self.cache_dir / f"dense-{key}-{corpus_digest(corpus)}.npy"
        if path.is_file():
            return np.load(path, allow_pickle=False)
        vectors = self.encode([d.full_text() for d in corpus])
        save_npy_atomic(path, vectors)
        return vectors
