"""Query pipeline: (cache ->) think -> embed -> Chroma. Shared by the CLI and the integrations."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from o1_rag.embedder import O1Embedder, ThinkParams
from o1_rag.feedback import FEEDBACK_DOCS, check_feedback, feedback_vectors
from o1_rag.gate import TOP, GateDecision, think_choice
from o1_rag.lexical import FUSION_DEPTH, FusedHit, LexicalHits, LexicalIndex, fuse
from o1_rag.selection import Selection, select_hits
from o1_rag.store import O1Collection, SearchHit


@dataclass
class QueryResult:
    """Hits for one query, the thoughts that produced its embedding (empty without thinking), and whether and
    why it thought."""

    query: str
    hits: list[SearchHit]
    thoughts: list[str] = field(default_factory=list)
    decision: GateDecision | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (``o1rag search --json``): the query, the thoughts, the thinking decision and
        the ranked hits with their fused, dense and lexical scores."""
        return {
            "query": self.query,
            "thoughts": list(self.thoughts),
            "thinking": self.decision.describe() if self.decision else "",
            "hits": [
                {
                    "rank": rank,
                    "id": hit.id,
                    "score": hit.score,
                    "dense_score": hit.dense_score,
                    "lexical_score": hit.lexical_score,
                    "title": hit.metadata.get("title", ""),
                    "text": hit.text,
                }
                for rank, hit in enumerate(self.hits, start=1)
            ],
        }


def check_query(query: str) -> str:
    """Reject non-text, empty or whitespace-only queries with a clear message."""
    if not isinstance(query, str):
        raise ValueError(f"the query must be text (a str), got {type(query).__name__}")
    if not query.strip():
        raise ValueError("query is empty: give some text to search for")
    return query


def search(
    embedder: O1Embedder,
    collection: O1Collection,
    queries: Sequence[str],
    k: int = 10,
    think: bool | str = "auto",
    params: ThinkParams | None = None,
    where: dict[str, Any] | None = None,
    use_cache: bool = True,
    query_weight: float | None = None,
    lexical: LexicalIndex | None = None,
    feedback: int = FEEDBACK_DOCS,
    selection: Selection | None = None,
) -> list[QueryResult]:
    """Think, embed and search ``collection`` for each query.

    ``think``: ``"always"`` (or True), ``"never"`` (or False) or ``"auto"`` (default): the query-only
    embedding searches first, and the embedder's gate decides from those hits which queries think (every
    query, when the embedder has no gate). Each result records the decision.

    ``query_weight`` overrides the embedder's share of the query-only vector for this call. With
    ``lexical`` (the collection's ``o1_rag.lexical.lexical_index``), the dense hits are fused with BM25's
    (hybrid search; ``where`` filters both sides); ``feedback`` > 0 (default 0, off) names how many of the
    first fused ranking's best documents the dense side's query vector moves towards before it searches
    again (``o1_rag.feedback``). ``selection`` chooses the ``k`` hits from the ranking by maximal marginal
    relevance or a least cosine similarity (``o1_rag.selection``; default: the ranking's first ``k``).

    Raises:
        ValueError: an empty query, ``k <= 0`` or ``feedback < 0``.
        FingerprintMismatchError: the collection was built by another embedder.
    """
    queries = [check_query(q) for q in queries]
    if k <= 0:
        raise ValueError(f"k must be > 0, got {k}")
    check_feedback(feedback)
    collection.check(embedder.fingerprint)
    mode = think_choice(think)
    thoughts: list[list[str]] = [[] for _ in queries]
    if mode == "never":
        vectors = embedder.embed_queries(queries, think=False)
        decisions = [GateDecision(False, "never")] * len(queries)
    elif mode == "always" or embedder.gate is None:
        vectors, thoughts = embedder.think_and_embed(
            queries, params, use_cache=use_cache, query_weight=query_weight
        )
        decisions = [GateDecision(True, mode)] * len(queries)
    else:
        vectors = embedder.embed_queries(queries, think=False)
        probe = collection.search(vectors, k=TOP, where=where)
        tops = [[h.score for h in row] for row in probe]
        vectors, thoughts, decisions = think_where_gated(
            embedder, queries, vectors, tops, params, use_cache, query_weight
        )
    selection = selection or Selection()
    depth = selection.depth(k)
    if lexical is None:
        hits = collection.search(vectors, k=depth, where=where)
    else:
        hits = hybrid_hits(collection, lexical, queries, vectors, depth, where, feedback)
    hits = select_hits(collection, vectors, hits, k, selection)
    return [QueryResult(q, h, t, d) for q, h, t, d in zip(queries, hits, thoughts, decisions, strict=True)]


def think_where_gated(
    embedder: O1Embedder,
    queries: Sequence[str],
    vectors: Any,
    top_scores: Sequence[Sequence[float]],
    params: ThinkParams | None = None,
    use_cache: bool = True,
    query_weight: float | None = None,
) -> tuple[Any, list[list[str]], list[GateDecision]]:
    """``think="auto"``: given the query-only ``vectors`` and each query's query-only top scores (best
    first), the embedder's gate picks the queries that think (all of them without a gate); their vectors
    are replaced by the thinking ones. Returns the vectors, the thoughts (empty where none) and the
    decisions."""
    gate = embedder.gate
    decisions = [
        gate.decide(q, list(top)[:TOP]) if gate is not None else GateDecision(True, "auto")
        for q, top in zip(queries, top_scores, strict=True)
    ]
    thoughts: list[list[str]] = [[] for _ in queries]
    chosen = [i for i, d in enumerate(decisions) if d.think]
    if chosen:
        thought_vectors, chosen_thoughts = embedder.think_and_embed(
            [queries[i] for i in chosen], params, use_cache=use_cache, query_weight=query_weight
        )
        vectors = vectors.copy()
        for row, i in enumerate(chosen):
            vectors[i] = thought_vectors[row]
            thoughts[i] = chosen_thoughts[row]
    return vectors, thoughts, decisions


def hybrid_hits(
    collection: O1Collection,
    lexical: LexicalIndex,
    queries: Sequence[str],
    vectors: Any,
    k: int,
    where: dict[str, Any] | None = None,
    feedback: int = FEEDBACK_DOCS,
) -> list[list[SearchHit]]:
    """The dense hits of ``vectors`` fused with the lexical hits of ``queries`` (``o1_rag.lexical.fuse``);
    with ``feedback`` > 0, each query vector then moves towards its ``feedback`` best fused documents and
    the dense side searches again before the final fusion (``o1_rag.feedback``)."""
    check_feedback(feedback)
    depth = max(k, FUSION_DEPTH)
    dense = collection.search(vectors, k=depth, where=where)
    lexical_hits = lexical.search(queries, depth)
    known = {hit.id: hit for row in dense for hit in row}
    _add_lexical_only(collection, known, lexical_hits, where)
    if feedback:
        top = [
            [f.id for f in _fuse_row(row, hits, known, feedback, depth)]
            for row, hits in zip(dense, lexical_hits, strict=True)
        ]
        moved = feedback_vectors(vectors, top, collection.vectors)
        dense = collection.search(moved, k=depth, where=where)
        known.update((hit.id, hit) for row in dense for hit in row)
    results = []
    for row, hits in zip(dense, lexical_hits, strict=True):
        fused = _fuse_row(row, hits, known, k, depth)
        results.append(
            [
                SearchHit(
                    f.id, f.score, known[f.id].text, known[f.id].metadata, f.dense_score, f.lexical_score
                )
                for f in fused
            ]
        )
    return results


def _add_lexical_only(
    collection: O1Collection,
    known: dict[str, SearchHit],
    lexical_hits: Sequence[LexicalHits],
    where: dict[str, Any] | None,
) -> None:
    """Add to ``known`` the text and metadata of the lexical hits the dense side did not return, where the
    filter ``where`` admits them."""
    wanted = sorted({doc_id for hits in lexical_hits for doc_id in hits.ids} - set(known))
    if wanted:
        got = collection.collection.get(ids=wanted, where=where, include=["documents", "metadatas"])
        metadatas = got.get("metadatas") or [None] * len(got["ids"])
        for doc_id, text, meta in zip(got["ids"], got["documents"], metadatas, strict=True):
            known[doc_id] = SearchHit(doc_id, 0.0, text or "", dict(meta or {}))


def _fuse_row(
    dense: Sequence[SearchHit], lexical: LexicalHits, known: dict[str, SearchHit], k: int, depth: int
) -> list[FusedHit]:
    """One query's fusion, over the lexical hits the filter admitted (those in ``known``)."""
    kept = [(i, s) for i, s in zip(lexical.ids, lexical.scores, strict=True) if i in known]
    admitted = LexicalHits([i for i, _ in kept], [s for _, s in kept], lexical.coverage)
    return fuse([(h.id, h.score) for h in dense], admitted, k, depth)
