"""Choosing a query's final hits from its ranking: maximal marginal relevance (varied hits, LangChain's
``search_type="mmr"``, LlamaIndex's MMR query mode) and a least cosine similarity to the query vector
(LangChain's ``similarity_score_threshold``).

Both read the stored vectors of the ranked documents. MMR (Carbonell and Goldstein, 1998) picks, one at a
time, the document that maximises ``lambda_mult * relevance - (1 - lambda_mult) * (its greatest cosine to a
document already picked)``. Relevance is the ranking's own score mapped linearly onto the range of the
candidates' cosines to the query vector: a dense ranking's score is that cosine (so this is LangChain's
``maximal_marginal_relevance``), and a hybrid ranking keeps its fused order at ``lambda_mult = 1`` while the
trade-off means what it means for a dense one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from o1_rag.store import O1Collection, SearchHit

FETCH_K = 20  # candidates MMR chooses from (LangChain's default)
LAMBDA_MULT = 0.5  # MMR's default trade-off (LangChain's and LlamaIndex's)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True)
class Selection:
    """How the ``k`` hits are chosen from the ranking (the default: its first ``k``).

    Args:
        mmr: MMR's ``lambda_mult`` in [0, 1] (1: relevance only, 0: variety only), or None for no MMR.
        fetch_k: with ``mmr``, how many of the ranking's best documents MMR chooses from (at least ``k`` are).
        min_score: drop hits whose cosine similarity to the query vector is below this (in [-1, 1]); a query
            may then get fewer than ``k`` hits. With ``mmr``, applied to the candidates before MMR.

    Raises:
        ValueError: a value out of its range.
    """

    mmr: float | None = None
    fetch_k: int = FETCH_K
    min_score: float | None = None

    def __post_init__(self) -> None:
        if self.mmr is not None and not (_is_number(self.mmr) and 0.0 <= self.mmr <= 1.0):
            raise ValueError(f"the MMR trade-off (lambda_mult) must be a number in [0, 1], got {self.mmr!r}")
        if isinstance(self.fetch_k, bool) or not isinstance(self.fetch_k, int) or self.fetch_k < 1:
            raise ValueError(f"fetch_k must be a whole number >= 1, got {self.fetch_k!r}")
        if self.min_score is not None and not (_is_number(self.min_score) and -1.0 <= self.min_score <= 1.0):
            raise ValueError(
                f"the score threshold must be a cosine similarity in [-1, 1], got {self.min_score!r}"
            )

    @property
    def plain(self) -> bool:
        """True when the hits are simply the ranking's first ``k``."""
        return self.mmr is None and self.min_score is None

    def depth(self, k: int) -> int:
        """How many of the ranking's documents to fetch for ``k`` hits."""
        return max(k, self.fetch_k) if self.mmr is not None else k


def mmr_order(vectors: np.ndarray, relevance: np.ndarray, k: int, lambda_mult: float) -> list[int]:
    """Indices of up to ``k`` rows of ``vectors`` (unit rows) in MMR order, given each row's relevance to
    the query."""
    n = vectors.shape[0]
    if n == 0 or k <= 0:
        return []
    chosen = [int(np.argmax(relevance))]
    closest = vectors @ vectors[chosen[0]]  # each row's greatest cosine to a chosen one
    while len(chosen) < min(k, n):
        gain = lambda_mult * relevance - (1.0 - lambda_mult) * closest
        gain[chosen] = -np.inf
        pick = int(np.argmax(gain))
        chosen.append(pick)
        closest = np.maximum(closest, vectors @ vectors[pick])
    return chosen


def _relevance(scores: np.ndarray, cosines: np.ndarray) -> np.ndarray:
    """``scores`` mapped linearly onto the range of ``cosines`` (order kept); equal scores read as the
    cosines themselves."""
    low, high = float(scores.min()), float(scores.max())
    if high - low <= 1e-12:
        return cosines
    return cosines.min() + (scores - low) / (high - low) * (cosines.max() - cosines.min())


def select_hits(
    collection: O1Collection,
    query_vectors: np.ndarray,
    ranked: Sequence[Sequence[SearchHit]],
    k: int,
    selection: Selection,
) -> list[list[SearchHit]]:
    """Each query's ``k`` hits chosen from its ``ranked`` hits (best first) as ``selection`` says."""
    if selection.plain:
        return [list(row[:k]) for row in ranked]
    stored = collection.vectors(sorted({hit.id for row in ranked for hit in row}))
    results = []
    for query, row in zip(query_vectors, ranked, strict=True):
        row = [hit for hit in row if hit.id in stored]  # a document deleted since the search is left out
        if not row:
            results.append([])
            continue
        vectors = np.stack([stored[hit.id] for hit in row])
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        cosines = vectors @ (query / max(float(np.linalg.norm(query)), 1e-12))
        keep = np.arange(len(row))
        if selection.min_score is not None:
            keep = keep[cosines >= selection.min_score]
        if selection.mmr is None:
            results.append([row[i] for i in keep[:k]])
            continue
        scores = np.array([row[i].score for i in keep], dtype=np.float64)
        relevance = _relevance(scores, cosines[keep].astype(np.float64)) if len(keep) else scores
        order = mmr_order(vectors[keep].astype(np.float64), relevance, k, selection.mmr)
        results.append([row[keep[i]] for i in order])
    return results
