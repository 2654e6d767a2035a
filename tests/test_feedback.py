"""Pseudo-relevance feedback of hybrid retrieval (``o1_rag.feedback``): the vector arithmetic, the query
pipeline's use of it, and the evaluation's, which must rank as the pipeline does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from o1_rag.data import Document
from o1_rag.evaluation.baselines import HybridSystem
from o1_rag.feedback import FEEDBACK_DOCS, check_feedback, feedback_vectors
from o1_rag.lexical import FUSION_DEPTH, LexicalIndex, fuse
from o1_rag.retrievers import DenseRun
from o1_rag.search import hybrid_hits
from o1_rag.store import O1Collection, open_client

DOCS = {
    "d1": "Brown adipose tissue burns fat when the body is exposed to cold.",
    "d2": "Insulin resistance develops in obese mice fed a high fat diet.",
    "d3": "The wing of an aircraft produces lift from the pressure difference.",
    "d4": "Library catalogues index books by subject headings.",
    "d5": "Cold water swimming and the heat that brown fat makes.",
    "d6": "Rowing boats on a river in winter.",
}
QUERIES = ["brown fat in the cold", "aircraft lift", "insulin and diet"]


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


RNG = np.random.default_rng(7)
DOC_VECTORS = unit(RNG.normal(size=(len(DOCS), 8)))
# Each query's vector points near a document its words do not match, so the two sides disagree.
QUERY_VECTORS = unit(DOC_VECTORS[[3, 5, 0]] + 0.3 * RNG.normal(size=(len(QUERIES), 8)))


def test_feedback_vectors_move_each_query_towards_its_documents() -> None:
    stored = {"a": np.array([0.0, 1.0, 0.0]), "b": np.array([0.0, 0.0, 1.0])}
    asked: list[list[str]] = []

    def lookup(ids: list[str]) -> dict[str, np.ndarray]:
        asked.append(list(ids))
        return {i: stored[i] for i in ids if i in stored}

    vectors = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype=np.float32)
    moved = feedback_vectors(vectors, [["b", "a"], ["missing"]], lookup)
    assert asked == [["a", "b", "missing"]]  # one lookup for all queries
    np.testing.assert_allclose(moved[0], np.array([1.0, 0.5, 0.5]) / np.sqrt(1.5), rtol=1e-6)
    np.testing.assert_allclose(moved[1], vectors[1])  # nothing stored: the query keeps its vector
    np.testing.assert_allclose(feedback_vectors(vectors, [["a"], ["b"]], lookup, weight=0.0), vectors)
    assert vectors[0, 1] == 0.0  # the input is not changed


@pytest.mark.parametrize("bad", [-1, 1.5, True, "3", None])
def test_check_feedback_rejects_what_is_not_a_count(bad: object) -> None:
    with pytest.raises(ValueError, match="feedback must be a whole number of documents >= 0"):
        check_feedback(bad)  # type: ignore[arg-type]
    assert check_feedback(0) == 0 and check_feedback(3) == 3
    assert FEEDBACK_DOCS == 0  # opt-in (see the README)


@pytest.fixture
def store(tmp_path: Path) -> tuple[O1Collection, LexicalIndex]:
    col = O1Collection.create_or_open(open_client(tmp_path / "db"), "feedback", "fp", DOC_VECTORS.shape[1])
    col.upsert(list(DOCS), DOC_VECTORS, list(DOCS.values()), [{"n": i} for i in range(len(DOCS))])
    return col, LexicalIndex.build(list(DOCS), list(DOCS.values()))


def expected(col: O1Collection, lexical: LexicalIndex, vectors: np.ndarray, k: int) -> list[list[str]]:
    """Plain fusion of the dense hits of ``vectors`` with the lexical hits of QUERIES."""
    dense = col.search(vectors, k=FUSION_DEPTH)
    lex = lexical.search(QUERIES, FUSION_DEPTH)
    return [
        [f.id for f in fuse([(h.id, h.score) for h in row], hits, k, FUSION_DEPTH)]
        for row, hits in zip(dense, lex, strict=True)
    ]


def test_pipeline_feedback_moves_towards_the_best_fused_documents(store) -> None:
    col, lexical = store
    plain = hybrid_hits(col, lexical, QUERIES, QUERY_VECTORS, k=6, feedback=0)
    assert [[h.id for h in row] for row in plain] == expected(col, lexical, QUERY_VECTORS, 6)
    top = [[h.id for h in row[:2]] for row in plain]
    dense_top = [[h.id for h in row[:2]] for row in col.search(QUERY_VECTORS, k=2)]
    assert (
        top != dense_top
    )  # the fused ranking's top differs from the dense one's: the test can tell them apart
    moved = feedback_vectors(QUERY_VECTORS, top, col.vectors)
    with_feedback = hybrid_hits(col, lexical, QUERIES, QUERY_VECTORS, k=6, feedback=2)
    assert [[h.id for h in row] for row in with_feedback] == expected(col, lexical, moved, 6)
    for row, vector in zip(with_feedback, moved, strict=True):
        for hit in row:  # the dense scores are those of the moved vector
            assert hit.dense_score == pytest.approx(
                float(vector @ DOC_VECTORS[list(DOCS).index(hit.id)]), abs=1e-5
            )
        assert all(hit.text == DOCS[hit.id] for hit in row)


def test_pipeline_feedback_keeps_to_the_filter(store) -> None:
    col, lexical = store
    where = {"n": {"$in": [0, 2, 4]}}
    for row in hybrid_hits(col, lexical, QUERIES, QUERY_VECTORS, k=6, where=where, feedback=3):
        assert {h.id for h in row} <= {"d1", "d3", "d5"}


class ExactDense:
    """A dense system over fixed vectors (the evaluation's interface)."""

    name = "fixed"

    def dense_run(self, corpus: list[Document], queries: dict[str, str], k: int) -> DenseRun:
        qids = list(queries)
        return DenseRun.exact(QUERY_VECTORS, DOC_VECTORS, [d.id for d in corpus], qids, k)


@pytest.mark.parametrize("feedback", [0, 2, 3])
def test_evaluation_hybrid_ranks_as_the_pipeline_does(store, feedback: int) -> None:
    col, lexical = store
    corpus = [Document(doc_id, "", text) for doc_id, text in DOCS.items()]
    queries = {f"q{i}": q for i, q in enumerate(QUERIES)}
    system = HybridSystem("fixed-hybrid", ExactDense(), feedback)
    ranking = system.retrieve(corpus, queries, k=5)
    pipeline = hybrid_hits(col, lexical, QUERIES, QUERY_VECTORS, k=5, feedback=feedback)
    assert [list(ranking[q]) for q in queries] == [[h.id for h in row] for row in pipeline]
    assert ("no feedback" in system.note) == (feedback == 0)
