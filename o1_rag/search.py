"""Query pipeline: (cache ->) think -> embed -> Chroma. Shared by the CLI and the integrations."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from o1_rag.embedder import O1Embedder, ThinkParams
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
) -> list[QueryResult]:
    """Think (unless ``think=False``), embed and search ``collection`` for each query.

    ``query_weight`` overrides the embedder's share of the query-only vector for this call.

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
    hits = collection.search(vectors, k=k, where=where)
    return [QueryResult(q, h, t) for q, h, t in zip(queries, hits, thoughts, strict=True)]
