"""Query pipeline: (cache ->) think -> embed -> Chroma. Shared by the CLI and the integrations."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from o1_rag.embedder import O1Embedder, ThinkParams
from o1_rag.lexical import FUSION_DEPTH, LexicalIndex, fuse
from o1_rag.store import O1Collection, SearchHit


@dataclass
class QueryResult:
    """Hits for one query and the thoughts that produced its embedding (empty without thinking)."""

    query: str
    hits: list[SearchHit]
    thoughts: list[str] = field(default_factory=list)


def check_query(query: str) -> str:
    """Reject empty or whitespace-only queries with a clear message."""
    if not isinstance(query, str) or not query.strip():
        raise ValueError("query is empty: give some text to search for")
    return query


def search(
    embedder: O1Embedder,
    collection: O1Collection,
    queries: Sequence[str],
    k: int = 10,
    think: bool = True,
    params: ThinkParams | None = None,
    where: dict[str, Any] | None = None,
    use_cache: bool = True,
    query_weight: float | None = None,
    lexical: LexicalIndex | None = None,
) -> list[QueryResult]:
    """Think (unless ``think=False``), embed and search ``collection`` for each query.

    ``query_weight`` overrides the embedder's share of the query-only vector for this call. With
    ``lexical`` (the collection's ``o1_rag.lexical.lexical_index``), the dense hits are fused with BM25's
    (hybrid search; ``where`` filters both sides).

    Raises:
        ValueError: an empty query or ``k <= 0``.
        FingerprintMismatchError: the collection was built by another embedder.
    """
    queries = [check_query(q) for q in queries]
    if k <= 0:
        raise ValueError(f"k must be > 0, got {k}")
    collection.check(embedder.fingerprint)
    thoughts: list[list[str]] = [[] for _ in queries]
    if think:
        vectors, thoughts = embedder.think_and_embed(
            queries, params, use_cache=use_cache, query_weight=query_weight
        )
    else:
        vectors = embedder.embed_queries(queries, think=False)
    if lexical is None:
        hits = collection.search(vectors, k=k, where=where)
    else:
        hits = hybrid_hits(collection, lexical, queries, vectors, k, where)
    return [QueryResult(q, h, t) for q, h, t in zip(queries, hits, thoughts, strict=True)]


def hybrid_hits(
    collection: O1Collection,
    lexical: LexicalIndex,
    queries: Sequence[str],
    vectors: Any,
    k: int,
    where: dict[str, Any] | None = None,
) -> list[list[SearchHit]]:
    """The dense hits of ``vectors`` fused with the lexical hits of ``queries`` (``o1_rag.lexical.fuse``)."""
    depth = max(k, FUSION_DEPTH)
    dense = collection.search(vectors, k=depth, where=where)
    lexical_hits = lexical.search(queries, depth)
    known = {hit.id: hit for row in dense for hit in row}
    wanted = sorted({doc_id for hits in lexical_hits for doc_id in hits.ids} - set(known))
    if wanted:  # lexical-only documents: their text and metadata, and the filter applied to them
        got = collection.collection.get(ids=wanted, where=where, include=["documents", "metadatas"])
        metadatas = got.get("metadatas") or [None] * len(got["ids"])
        for doc_id, text, meta in zip(got["ids"], got["documents"], metadatas, strict=True):
            known[doc_id] = SearchHit(doc_id, 0.0, text or "", dict(meta or {}))
    results = []
    for row, hits in zip(dense, lexical_hits, strict=True):
        kept = [(i, s) for i, s in zip(hits.ids, hits.scores, strict=True) if i in known]
        filtered = type(hits)([i for i, _ in kept], [s for _, s in kept], hits.coverage)
        fused = fuse([(h.id, h.score) for h in row], filtered, k, depth)
        results.append(
            [
                SearchHit(
                    f.id, f.score, known[f.id].text, known[f.id].metadata, f.dense_score, f.lexical_score
                )
                for f in fused
            ]
        )
    return results
