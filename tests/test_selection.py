"""Choosing the final hits (``o1_rag.selection``): maximal marginal relevance and a least cosine, over dense
and hybrid rankings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from o1_rag.lexical import LexicalIndex
from o1_rag.search import hybrid_hits
from o1_rag.selection import FETCH_K, Selection, mmr_order, select_hits
from o1_rag.store import O1Collection, open_client


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


RNG = np.random.default_rng(11)
BASE = unit(RNG.normal(size=(6, 16)))
# d0, d1 and d2 are near copies of one vector; d3..d8 are the rest, all somewhat close to the query.
DOC_VECTORS = unit(
    np.vstack([BASE[0], BASE[0] + 0.02 * RNG.normal(size=16), BASE[0] + 0.03 * RNG.normal(size=16), BASE[1:]])
)
IDS = [f"d{i}" for i in range(len(DOC_VECTORS))]
TEXTS = [
    "brown fat burns energy in the cold",
    "brown fat burns energy in cold weather",
    "brown adipose tissue burns energy in the cold",
    "aircraft wings and lift",
    "library subject headings",
    "insulin resistance in mice",
    "rowing on a winter river",
    "heat from brown fat",
    "the cold and the body",
][: len(IDS)]
QUERY = unit((BASE[0] * 1.2 + BASE[1:].sum(0) * 0.4)[None, :])


@pytest.fixture
def collection(tmp_path: Path) -> O1Collection:
    col = O1Collection.create_or_open(open_client(tmp_path / "db"), "sel", "fp", DOC_VECTORS.shape[1])
    col.upsert(IDS, DOC_VECTORS, TEXTS, [{"n": i} for i in range(len(IDS))])
    return col


def ids(rows) -> list[list[str]]:
    return [[hit.id for hit in row] for row in rows]


def test_plain_selection_is_the_ranking_head(collection: O1Collection) -> None:
    ranked = collection.search(QUERY, k=5)
    assert ids(select_hits(collection, QUERY, ranked, 3, Selection())) == [ids(ranked)[0][:3]]
    assert Selection().depth(3) == 3 and Selection(mmr=0.5).depth(3) == FETCH_K
    assert Selection(mmr=0.5, fetch_k=2).depth(3) == 3  # never fewer candidates than hits


def test_mmr_leaves_out_near_copies(collection: O1Collection) -> None:
    ranked = collection.search(QUERY, k=len(IDS))
    plain = ids(ranked)[0][:3]
    assert sorted(plain) == ["d0", "d1", "d2"]  # the three near copies lead the ranking
    [varied] = ids(select_hits(collection, QUERY, ranked, 3, Selection(mmr=0.5)))
    assert varied[0] == plain[0]  # the most relevant comes first
    assert len(set(varied) & {"d0", "d1", "d2"}) == 1  # then no second copy
    [same] = ids(select_hits(collection, QUERY, ranked, 3, Selection(mmr=1.0)))
    assert same == plain  # relevance only: the ranking's order


def test_mmr_matches_langchains_on_a_dense_ranking(collection: O1Collection) -> None:
    utils = pytest.importorskip("langchain_core.vectorstores.utils")
    ranked = collection.search(QUERY, k=len(IDS))
    order = [IDS.index(hit.id) for hit in ranked[0]]
    for lam in (0.0, 0.3, 0.5, 0.8):
        theirs = utils.maximal_marginal_relevance(QUERY[0], list(DOC_VECTORS[order]), lambda_mult=lam, k=5)
        [ours] = ids(select_hits(collection, QUERY, ranked, 5, Selection(mmr=lam)))
        assert ours == [ranked[0][i].id for i in theirs], lam


def test_mmr_on_a_hybrid_ranking_weighs_fused_scores_on_the_cosine_scale(collection: O1Collection) -> None:
    lexical = LexicalIndex.build(IDS, TEXTS)
    fused = hybrid_hits(collection, lexical, ["brown fat cold"], QUERY, k=len(IDS))
    dense_order = ids(collection.search(QUERY, k=len(IDS)))
    assert ids(fused) != dense_order  # the test can tell the fused order from the dense one
    assert ids(select_hits(collection, QUERY, fused, 4, Selection(mmr=1.0))) == [ids(fused)[0][:4]]
    [varied] = ids(select_hits(collection, QUERY, fused, 3, Selection(mmr=0.3)))
    assert varied[0] == ids(fused)[0][0]
    assert len(set(varied) & {"d0", "d1", "d2"}) == 1


def test_min_score_drops_hits_below_the_cosine(collection: O1Collection) -> None:
    ranked = collection.search(QUERY, k=len(IDS))
    cosines = {IDS[i]: float(DOC_VECTORS[i] @ QUERY[0]) for i in range(len(IDS))}
    bar = sorted(cosines.values())[-4]  # four documents reach it
    [kept] = ids(select_hits(collection, QUERY, ranked, 10, Selection(min_score=bar - 1e-6)))
    assert kept == [hit.id for hit in ranked[0] if cosines[hit.id] >= bar - 1e-6] and len(kept) == 4
    assert select_hits(collection, QUERY, ranked, 10, Selection(min_score=1.0)) == [[]]
    [both] = ids(select_hits(collection, QUERY, ranked, 2, Selection(mmr=0.5, min_score=bar - 1e-6)))
    assert set(both) <= set(kept) and len(both) == 2


def test_a_document_deleted_after_the_search_is_left_out(collection: O1Collection) -> None:
    ranked = collection.search(QUERY, k=4)
    collection.delete([ranked[0][0].id])
    [row] = ids(select_hits(collection, QUERY, ranked, 4, Selection(mmr=0.5)))
    assert ranked[0][0].id not in row and len(row) == 3


def test_mmr_order_on_its_own() -> None:
    vectors = unit(np.array([[1.0, 0.0], [0.99, 0.1], [0.0, 1.0]]))
    relevance = np.array([0.9, 0.89, 0.5])
    assert mmr_order(vectors, relevance, 2, 1.0) == [0, 1]
    assert mmr_order(vectors, relevance, 2, 0.5) == [0, 2]
    assert mmr_order(vectors, relevance, 5, 0.5) == [0, 2, 1]
    assert mmr_order(vectors[:0], relevance[:0], 3, 0.5) == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mmr": 1.5}, "lambda_mult"),
        ({"mmr": -0.1}, "lambda_mult"),
        ({"fetch_k": 0}, "fetch_k"),
        ({"fetch_k": 2.5}, "fetch_k"),
        ({"fetch_k": True}, "fetch_k"),
        ({"mmr": "0.5"}, "lambda_mult"),
        ({"min_score": 1.5}, "score threshold"),
        ({"min_score": True}, "score threshold"),
    ],
)
def test_selection_rejects_values_out_of_range(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Selection(**kwargs)
