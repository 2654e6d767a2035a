"""Pseudo-relevance feedback for hybrid retrieval: the dense query vector moves towards the documents the
first fused ranking put on top (Rocchio in embedding space), and the dense side searches again.

    v' = normalise(v + weight * mean(top documents' vectors))

It is opt-in (``feedback=3`` in ``o1_rag.search.search`` and ``O1Retriever``, ``--feedback 3`` in the
CLI). The feedback documents come from the *fused* ranking, where BM25 and the dense side agree, so the
moved vector carries what the lexical side knew into the dense search (feedback from the dense ranking
alone repeats its own mistakes). The lexical hits are not searched again. It costs one more dense search
and no generation.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

FEEDBACK_DOCS = 0
"""Off by default: feedback raised nDCG@10 where queries have many relevant documents and lowered it on
single-answer claims when BM25 is weak (README, "Pseudo-relevance feedback"); 3 is the count measured."""
FEEDBACK_WEIGHT = 1.0
"""The weight of their mean vector against the query's own (both unit length)."""


def check_feedback(docs: int) -> int:
    """``docs`` when it is a whole number >= 0, else a ValueError."""
    if isinstance(docs, bool) or not isinstance(docs, int) or docs < 0:
        raise ValueError(f"feedback must be a whole number of documents >= 0, got {docs!r}")
    return docs


def feedback_vectors(
    vectors: np.ndarray,
    top_ids: Sequence[Sequence[str]],
    stored: Callable[[Sequence[str]], Mapping[str, np.ndarray]],
    weight: float = FEEDBACK_WEIGHT,
) -> np.ndarray:
    """Each query vector (a row of ``vectors``) moved towards the mean vector of its feedback documents
    (``top_ids[i]``; ``stored`` gives the stored vectors of a list of ids, once for all queries), normalised.
    A query none of whose documents is stored keeps its vector."""
    found = stored(sorted({doc_id for ids in top_ids for doc_id in ids}))
    moved = np.array(vectors, dtype=np.float32, copy=True)
    for i, ids in enumerate(top_ids):
        docs = [found[doc_id] for doc_id in ids if doc_id in found]
        if docs:
            moved[i] += weight * np.mean(np.asarray(docs, dtype=np.float32), axis=0)
    norms = np.linalg.norm(moved, axis=1, keepdims=True)
    return moved / np.where(norms > 0, norms, 1.0)
