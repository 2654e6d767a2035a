"""The lexical side of hybrid retrieval: bm25s index, its sync with Chroma, and the fusion."""

import json
from pathlib import Path

import numpy as np
import pytest

from o1_rag.errors import StoreError
from o1_rag.lexical import (
    INFO_FILE,
    LexicalHits,
    LexicalIndex,
    fuse,
    ids_digest,
    lexical_folder,
    lexical_index,
    lexical_weight,
    sync_lexical,
)
from o1_rag.store import O1Collection, open_client

DOCS = {
    "d1": "Brown adipose tissue burns fat when the body is exposed to cold.",
    "d2": "Insulin resistance develops in obese mice fed a high fat diet.",
    "d3": "The wing of an aircraft produces lift from the pressure difference.",
    "d4": "Library catalogues index books by subject headings.",
}


def build() -> LexicalIndex:
    return LexicalIndex.build(list(DOCS), list(DOCS.values()))


def test_search_ranks_by_bm25_and_reports_coverage() -> None:
    index = build()
    [cold, wing, nothing] = index.search(["cold exposure of brown fat", "aircraft wing lift", "zebra"], k=3)
    assert cold.ids[0] == "d1" and cold.scores == sorted(cold.scores, reverse=True)
    assert "d3" not in cold.ids  # no shared term: not returned
    assert 0.0 < cold.coverage <= 1.0
    assert wing.ids == ["d3"] and wing.coverage == pytest.approx(1.0)  # the best hit holds every term
    assert nothing == LexicalHits([], [], 0.0)
    with pytest.raises(ValueError, match="k must be > 0"):
        index.search(["x"], k=0)


def test_empty_and_wordless_corpora_return_nothing() -> None:
    assert LexicalIndex.build([], []).search(["cold"], k=5) == [LexicalHits([], [], 0.0)]
    assert LexicalIndex.build(["a"], ["the of and"]).search(["the"], k=5) == [LexicalHits([], [], 0.0)]
    with pytest.raises(ValueError, match="unique"):
        LexicalIndex.build(["a", "a"], ["x", "y"])


def test_save_load_round_trip(tmp_path: Path) -> None:
    index = build()
    index.save(tmp_path / "lex", {"collection": "demo"})
    loaded = LexicalIndex.load(tmp_path / "lex")
    assert loaded.ids == index.ids and loaded.digest == ids_digest(list(DOCS))
    queries = ["insulin and obese mice", "subject headings"]
    assert loaded.search(queries, 4) == index.search(queries, 4)
    assert not list((tmp_path / "lex" / "bm25").glob("*.pkl"))


def test_failed_save_keeps_the_old_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    build().save(tmp_path / "lex", {"collection": "demo"})
    bigger = LexicalIndex.build([*DOCS, "d5"], [*DOCS.values(), "A fifth document about cold."])

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("o1_rag.files.replace_directory", killed)
    with pytest.raises(KeyboardInterrupt):
        bigger.save(tmp_path / "lex", {"collection": "demo"})
    assert LexicalIndex.load(tmp_path / "lex").ids == list(DOCS)
    assert [p.name for p in tmp_path.iterdir()] == ["lex"]  # no temporary folder left behind


def collection(tmp_path: Path, name: str = "demo", fingerprint: str = "fp-a") -> O1Collection:
    client = open_client(tmp_path / "db")
    col = O1Collection.create_or_open(client, name, fingerprint, 3)
    ids = list(DOCS)
    col.upsert(ids, np.eye(4, 3, dtype=np.float32) + 0.1, list(DOCS.values()), [{"title": ""}] * len(ids))
    return col


def test_sync_matches_the_collection_and_follows_it(tmp_path: Path) -> None:
    col = collection(tmp_path)
    folder = lexical_folder(col, db=tmp_path / "db")
    assert folder == tmp_path / "db" / "o1rag-lexical" / "demo"
    index = sync_lexical(col, folder)
    assert sorted(index.ids) == sorted(col.stored_ids())
    info = json.loads((folder / INFO_FILE).read_text())
    assert info["fingerprint"] == "fp-a" and info["count"] == 4
    mtime = (folder / INFO_FILE).stat().st_mtime_ns
    assert sync_lexical(col, folder).ids == index.ids
    assert (folder / INFO_FILE).stat().st_mtime_ns == mtime  # in step: loaded, not rebuilt
    col.upsert(["d5"], np.ones((1, 3), dtype=np.float32), ["Cold water swimming"], [{"title": ""}])
    grown = sync_lexical(col, folder)
    assert sorted(grown.ids) == sorted(col.stored_ids()) and grown.search(["swimming"], 1)[0].ids == ["d5"]


def test_sync_rebuilds_a_damaged_or_foreign_index(tmp_path: Path) -> None:
    col = collection(tmp_path)
    folder = lexical_folder(col, db=tmp_path / "db")
    sync_lexical(col, folder)
    (folder / "ids.json").write_text('["d1"]')  # damaged: ids disagree with the record
    assert sorted(sync_lexical(col, folder).ids) == sorted(DOCS)
    # An index saved for another collection (other fingerprint) is never used for this one.
    other = collection(tmp_path / "other", name="demo", fingerprint="fp-b")
    other.upsert(["x9"], np.ones((1, 3), dtype=np.float32), ["unrelated words"], [{"title": ""}])
    rebuilt = sync_lexical(other, folder)
    assert "x9" in rebuilt.ids
    assert json.loads((folder / INFO_FILE).read_text())["fingerprint"] == "fp-b"


def test_open_index_follows_the_collection(tmp_path: Path) -> None:
    col = collection(tmp_path)
    folder = lexical_folder(col)  # no folder known (a server or a client): under the home, by collection id
    assert folder.parts[-2:] == ("lexical", str(col.collection.id))
    first = lexical_index(col)
    assert lexical_index(col) is first  # kept open while the collection is unchanged
    col.upsert(["d6"], np.ones((1, 3), dtype=np.float32), ["Rowing boats"], [{"title": ""}])
    again = lexical_index(col)
    assert again is not first and again.search(["rowing"], 1)[0].ids == ["d6"]
    assert again.fingerprint == "fp-a"


def test_replaced_texts_and_removed_documents_reach_the_bm25_side(tmp_path: Path) -> None:
    """Same count, same ids, a new text: the revision, not the ids, tells the BM25 copy to rebuild, both
    the one kept open in this process and the one saved beside the database."""
    col = collection(tmp_path)
    folder = lexical_folder(col, db=tmp_path / "db")
    saved = sync_lexical(col, folder)
    opened = lexical_index(col, tmp_path / "db")
    assert opened.search(["aircraft"], 1)[0].ids == ["d3"]
    col.bump_revision()  # what index_documents does before it replaces a changed text
    col.upsert(["d3"], np.ones((1, 3), dtype=np.float32), ["Gliders soar on thermals."], [{"title": ""}])
    fresh = lexical_index(col, tmp_path / "db")
    assert fresh is not opened and fresh.search(["gliders"], 1)[0].ids == ["d3"]
    assert fresh.search(["aircraft"], 1)[0].ids == []
    assert json.loads((folder / INFO_FILE).read_text())["revision"] == 1
    reopened = O1Collection.open(open_client(tmp_path / "db"), "demo")
    assert sync_lexical(reopened, folder).search(["gliders"], 1)[0].ids == ["d3"]
    col.delete(["d1"])
    assert sorted(lexical_index(col, tmp_path / "db").ids) == ["d2", "d3", "d4"] and col.revision == 2
    assert len(saved) == 4


def test_a_text_replaced_by_another_process_reaches_an_open_bm25_side(tmp_path: Path) -> None:
    """A search process keeps the collection and its BM25 copy open while an indexing process replaces a
    text in place (same ids, same count): the revision the indexer raised is read from the store at the
    next search, where the searcher's own record of the collection still holds the old one."""
    searcher = collection(tmp_path)
    db = tmp_path / "db"
    opened = lexical_index(searcher, db)
    assert opened.search(["aircraft"], 1)[0].ids == ["d3"]
    indexer = O1Collection.open(open_client(db), "demo")  # another process's view of the same collection
    indexer.bump_revision()
    indexer.upsert(["d3"], np.ones((1, 3), dtype=np.float32), ["Gliders soar on thermals."], [{"title": ""}])
    fresh = lexical_index(searcher, db)
    assert fresh is not opened and fresh.search(["gliders"], 1)[0].ids == ["d3"]
    assert fresh.search(["aircraft"], 1)[0].ids == [] and searcher.revision == 1
    open_client(db).delete_collection("demo")  # and a collection deleted meanwhile is said to be gone
    with pytest.raises(StoreError, match="collection 'demo' does not exist"):
        lexical_index(searcher, db)


def test_an_index_saved_before_revisions_is_still_in_step(tmp_path: Path) -> None:
    col = collection(tmp_path)
    folder = lexical_folder(col, db=tmp_path / "db")
    sync_lexical(col, folder)
    info = json.loads((folder / INFO_FILE).read_text())
    del info["revision"]  # as saved by an older o1-rag
    (folder / INFO_FILE).write_text(json.dumps(info))
    mtime = (folder / INFO_FILE).stat().st_mtime_ns
    assert sorted(sync_lexical(col, folder).ids) == sorted(DOCS)
    assert (folder / INFO_FILE).stat().st_mtime_ns == mtime  # loaded, not rebuilt


def test_a_rebuild_tokenizes_only_texts_it_has_not_seen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a change, the rebuild reuses the saved tokens of unchanged texts and gives the index a full
    build gives; a changed text is tokenized again; unreadable saved tokens mean a full tokenization."""
    import o1_rag.lexical as lexical
    from o1_rag.lexical_tokens import TOKENS_FILE

    tokenized: list[str] = []
    real = lexical._tokenize

    def counting(texts):  # type: ignore[no-untyped-def]
        tokenized.extend(texts)
        return real(texts)

    monkeypatch.setattr(lexical, "_tokenize", counting)
    col = collection(tmp_path)
    folder = lexical_folder(col, db=tmp_path / "db")
    sync_lexical(col, folder)
    assert sorted(tokenized) == sorted(DOCS.values())

    def same_as_a_full_build(index: LexicalIndex) -> None:
        texts = col.collection.get(include=["documents"])
        full = LexicalIndex.build(texts["ids"], texts["documents"])
        queries = ["cold fat", "aircraft wing", "swimming in cold water", "insulin", "books subject"]
        for ours, theirs in zip(index.search(queries, 5), full.search(queries, 5), strict=True):
            assert ours.ids == theirs.ids and ours.coverage == pytest.approx(theirs.coverage)
            assert ours.scores == pytest.approx(theirs.scores)

    tokenized.clear()
    col.upsert(["d5"], np.ones((1, 3), dtype=np.float32), ["Cold water swimming"], [{"title": ""}])
    grown = sync_lexical(col, folder)
    assert tokenized == ["Cold water swimming"]
    same_as_a_full_build(grown)
    tokenized.clear()
    col.bump_revision()
    col.upsert(["d3"], np.ones((1, 3), dtype=np.float32), ["Gliders soar on thermals."], [{"title": ""}])
    col.delete(["d1"])
    changed = sync_lexical(col, folder)
    assert tokenized == ["Gliders soar on thermals."]
    same_as_a_full_build(changed)
    (folder / TOKENS_FILE).write_bytes(b"not numpy")
    tokenized.clear()
    col.upsert(["d7"], np.ones((1, 3), dtype=np.float32), ["Rowing boats"], [{"title": ""}])
    again = sync_lexical(col, folder)
    assert sorted(tokenized) == sorted(col.collection.get(include=["documents"])["documents"])
    same_as_a_full_build(again)


def test_fusion() -> None:
    dense = [("a", 0.9), ("b", 0.8), ("c", 0.7), ("d", 0.1)]
    # No lexical evidence: the dense order is kept.
    assert [h.id for h in fuse(dense, LexicalHits([], [], 0.0), k=4)] == ["a", "b", "c", "d"]
    # Full coverage: a document both sides rank high wins, a lexical-only document can enter.
    lexical = LexicalHits(["c", "e", "a"], [12.0, 11.0, 1.0], coverage=1.0)
    fused = fuse(dense, lexical, k=5)
    assert fused[0].id == "c" and {h.id for h in fused} == {"a", "b", "c", "d", "e"}
    by_id = {h.id: h for h in fused}
    assert by_id["e"].dense_score is None and by_id["e"].lexical_score == 11.0
    assert by_id["b"].lexical_score is None and by_id["b"].dense_score == 0.8
    assert [h.score for h in fused] == sorted((h.score for h in fused), reverse=True)
    # Low coverage weighs the lexical side less.
    assert lexical_weight(0.04) == pytest.approx(0.2) and lexical_weight(2.0) == 1.0
    weak = fuse(dense, LexicalHits(["c", "e", "a"], [12.0, 11.0, 1.0], coverage=0.01), k=5)
    assert weak[0].id == "a"
    assert len(fuse(dense, lexical, k=2)) == 2
