from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from lc_tiny import FAST, indexed_db

import langchain_o1rag
from langchain_o1rag import O1Embeddings, O1Retriever
from o1_rag.embedder import O1Embedder
from o1_rag.errors import FingerprintMismatchError, StoreError
from o1_rag.testing import shared_tiny_model


def test_all_exports() -> None:
    assert sorted(langchain_o1rag.__all__) == ["O1Embeddings", "O1Retriever"]
    for name in langchain_o1rag.__all__:
        assert getattr(langchain_o1rag, name).__doc__


@pytest.fixture(scope="module")
def embedder() -> O1Embedder:
    return O1Embedder.from_pretrained(str(shared_tiny_model()), device="cpu", cache=False)


def _retriever(embedder: O1Embedder, **kw: Any) -> O1Retriever:
    params = {"collection_name": "lc-tiny", "persist_directory": indexed_db(), **FAST, **kw}
    params.pop("device")
    return O1Retriever(embedder=embedder, **params)


class Recorder(BaseCallbackHandler):
    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    def on_custom_event(self, name: str, data: Any, **kwargs: Any) -> None:
        self.events.append((name, data))


def test_documents_carry_id_score_and_thoughts(embedder: O1Embedder) -> None:
    recorder = Recorder()
    docs = _retriever(embedder, k=3).invoke("does coffee help?", config={"callbacks": [recorder]})
    assert len(docs) == 3
    for doc in docs:
        assert doc.metadata["id"].startswith("d") and doc.id == doc.metadata["id"]
        dense = doc.metadata["dense_score"]
        assert dense is None or -1.0 <= dense <= 1.0 + 1e-6
        assert doc.metadata["lexical_score"] is None or doc.metadata["lexical_score"] > 0
        assert len(doc.metadata["o1_thoughts"]) == 2
    assert [d.metadata["score"] for d in docs] == sorted((d.metadata["score"] for d in docs), reverse=True)
    assert recorder.events and recorder.events[0][0] == "o1_thoughts"
    assert recorder.events[0][1]["thoughts"] == docs[0].metadata["o1_thoughts"]


def test_hybrid_is_a_setting_and_a_per_call_option(embedder: O1Embedder) -> None:
    dense = _retriever(embedder, k=4, think=False, hybrid=False).invoke("aspirin study")
    assert all(d.metadata["score"] == d.metadata["dense_score"] for d in dense)
    assert all(d.metadata["lexical_score"] is None for d in dense)
    fused = _retriever(embedder, k=4, think=False).invoke("aspirin study")
    assert any(d.metadata["lexical_score"] for d in fused)
    per_call = _retriever(embedder, k=4, think=False).invoke("aspirin study", hybrid=False)
    assert [d.id for d in per_call] == [d.id for d in dense]
    # The filter holds on the lexical side too: BM25's coffee documents are not let in.
    filtered = _retriever(embedder, k=5, think=False).invoke("coffee", filter={"title": "aspirin"})
    assert filtered and all(d.metadata["title"] == "aspirin" for d in filtered)


def test_search_types_as_langchains_vector_store_retrievers(embedder: O1Embedder) -> None:
    """``search_type="mmr"`` and ``"similarity_score_threshold"`` with LangChain's search_kwargs names,
    each giving what the core's selection gives."""
    from o1_rag.search import search
    from o1_rag.selection import Selection

    plain = _retriever(embedder, k=5, think=False, hybrid=False)
    ranked = [d.id for d in plain.invoke("aspirin study")]
    core = plain._collection  # the retriever's own collection, to compare with the core pipeline

    def core_ids(selection: Selection, k: int = 5) -> list[str]:
        [result] = search(embedder, core, ["aspirin study"], k=k, think="never", selection=selection)
        return [hit.id for hit in result.hits]

    mmr = _retriever(
        embedder, k=5, think=False, hybrid=False, search_type="mmr", search_kwargs={"fetch_k": 12}
    )
    varied = [d.id for d in mmr.invoke("aspirin study")]
    assert varied == core_ids(Selection(mmr=0.5, fetch_k=12)) and varied[0] == ranked[0]
    per_call = [d.id for d in mmr.invoke("aspirin study", search_kwargs={"lambda_mult": 0.0})]
    assert per_call == core_ids(Selection(mmr=0.0, fetch_k=12)) and per_call != ranked
    assert [d.id for d in mmr.invoke("aspirin study", search_kwargs={"lambda_mult": 1.0})] == ranked
    assert [d.id for d in mmr.invoke("aspirin study", lambda_mult=0.0)] == per_call  # a keyword per call
    with pytest.raises(ValueError, match="unknown argument 'lambda'"):
        mmr.invoke("aspirin study", **{"lambda": 0.0})
    scores = [d.metadata["score"] for d in plain.invoke("aspirin study")]
    bar = scores[1] - 1e-5
    above = _retriever(
        embedder,
        k=5,
        think=False,
        hybrid=False,
        search_type="similarity_score_threshold",
        score_threshold=bar,
    )
    assert [d.id for d in above.invoke("aspirin study")] == ranked[: sum(s >= bar for s in scores)]
    with pytest.raises(ValueError, match="needs a score_threshold"):
        _retriever(embedder, search_type="similarity_score_threshold")
    with pytest.raises(ValueError, match="unknown search_type 'mmr2'"):
        _retriever(embedder, search_type="mmr2")
    with pytest.raises(ValueError, match="lambda_mult"):
        mmr.invoke("aspirin", search_kwargs={"lambda_mult": 2})


def test_filter_and_no_think(embedder: O1Embedder) -> None:
    docs = _retriever(embedder, k=5, think=False).invoke("anything", filter={"title": "coffee"})
    assert docs and all(d.metadata["title"] == "coffee" for d in docs)
    assert all(d.metadata["o1_thoughts"] == [] for d in docs)


def test_concurrent_ainvoke_is_one_batched_think(embedder: O1Embedder) -> None:
    retriever = _retriever(embedder, k=2, batch_window_ms=200, max_batch=32)
    embedder.generation_batch_size = 32
    before = embedder.generate_calls

    async def main() -> list:
        return await asyncio.gather(*(retriever.ainvoke(f"question number {i}") for i in range(16)))

    results = asyncio.run(main())
    assert [len(r) for r in results] == [2] * 16
    assert retriever._batcher.calls == 1
    assert embedder.generate_calls - before == 1  # 16 queries x 2 thoughts in one generate call
    assert all(len(r[0].metadata["o1_thoughts"]) == 2 for r in results)


def test_threaded_batch_shares_batched_thinking(embedder: O1Embedder) -> None:
    retriever = _retriever(embedder, k=2, think="always")
    embedder.generation_batch_size = 32
    batcher = retriever._batcher
    search_batch = batcher.fn

    def first_waits_for_the_others(items: list) -> list:
        if batcher.calls == 1:  # hold the first call until the other 15 threads are queued behind it
            deadline = time.monotonic() + 20
            while len(batcher._queues.get(items[0][1], [])) < 15 and time.monotonic() < deadline:
                time.sleep(0.005)
        return search_batch(items)

    batcher.fn = first_waits_for_the_others
    before = embedder.generate_calls
    results = retriever.batch([f"question number {i}" for i in range(16)], config={"max_concurrency": 16})
    assert [len(r) for r in results] == [2] * 16
    assert all(len(r[0].metadata["o1_thoughts"]) == 2 for r in results)
    assert batcher.calls == 2  # the first query alone, then the 15 that arrived while it ran
    assert embedder.generate_calls - before == 2


@pytest.mark.parametrize("query", ["", "   "])
def test_empty_query_is_value_error(embedder: O1Embedder, query: str) -> None:
    with pytest.raises(ValueError, match="query is empty"):
        _retriever(embedder).invoke(query)
    with pytest.raises(ValueError, match="query is empty"):
        asyncio.run(_retriever(embedder).ainvoke(query))


def test_bad_k_missing_collection_and_mismatch(embedder: O1Embedder, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="k must be > 0"):
        _retriever(embedder, k=0)
    with pytest.raises(ValueError, match="k must be > 0"):
        _retriever(embedder).invoke("q", k=-1)
    with pytest.raises(ValueError, match="feedback must be a whole number of documents >= 0, got -1"):
        _retriever(embedder, feedback=-1)
    assert len(_retriever(embedder, feedback=3, k=3).invoke("aspirin")) == 3
    plain = _retriever(embedder, k=3)
    per_call = plain.invoke("aspirin", feedback=3)
    assert [d.id for d in per_call] == [d.id for d in _retriever(embedder, feedback=3, k=3).invoke("aspirin")]
    assert [d.id for d in plain.invoke("aspirin", search_kwargs={"feedback": 3})] == [d.id for d in per_call]
    with pytest.raises(ValueError, match="feedback must be a whole number of documents >= 0, got -2"):
        plain.invoke("aspirin", feedback=-2)
    with pytest.raises(StoreError, match="does not exist"):
        _retriever(embedder, collection_name="nothere")
    other = O1Embedder.from_pretrained(  # another document length: another embedding space
        str(shared_tiny_model()), device="cpu", cache=False, max_document_tokens=8
    )
    with pytest.raises(FingerprintMismatchError, match="was indexed by embedder"):
        _retriever(other)
    assert not (tmp_path / "anything").exists()


def test_embeddings_inside_langchain_chroma(tmp_path: Path) -> None:
    from langchain_chroma import Chroma

    emb = O1Embeddings(model=str(shared_tiny_model()), **FAST)
    store = Chroma(
        "lc-store",
        embedding_function=emb,
        persist_directory=str(tmp_path),
        collection_metadata=emb.collection_metadata(),
    )
    ids = store.add_texts(["aspirin and the heart", "coffee and sleep", "insulin and diabetes"])
    assert len(ids) == 3
    hits = store.similarity_search("aspirin", k=2)
    assert len(hits) == 2
    retriever = O1Retriever(
        embedder=emb.embedder, vectorstore=store, k=2, **{k: v for k, v in FAST.items() if k != "device"}
    )
    assert len(retriever.invoke("coffee")) == 2
    assert retriever._collection.client is not None  # so a search reads the collection's record again
    assert len(store.as_retriever(search_kwargs={"k": 1}).invoke("insulin")) == 1
    with pytest.raises(ValueError, match="query is empty"):
        emb.embed_query(" ")


def test_search_kwargs_and_unknown_arguments(embedder: O1Embedder) -> None:
    one = _retriever(embedder, search_kwargs={"k": 1, "think": False})
    assert one.k == 1 and len(one.invoke("aspirin")) == 1
    assert len(one.invoke("aspirin", search_kwargs={"k": 2})) == 2
    with pytest.raises(ValueError, match="got an unknown argument 'top_k' \\(did you mean 'k'\\?\\)"):
        _retriever(embedder, top_k=1)
    with pytest.raises(
        ValueError, match="unknown argument 'num_thought' \\(did you mean 'num_thoughts'\\?\\)"
    ):
        _retriever(embedder, num_thought=1)
    with pytest.raises(ValueError, match="unknown search_kwargs key 'top_k'"):
        _retriever(embedder, search_kwargs={"top_k": 1})
    with pytest.raises(ValueError, match="given twice"):
        _retriever(embedder, k=3, search_kwargs={"k": 1})
    with pytest.raises(ValueError, match="the query must be text \\(a str\\), got dict"):
        one.invoke({"question": "aspirin"})
    with pytest.raises(ValueError, match="O1Embeddings got an unknown argument 'num_thought'"):
        O1Embeddings(embedder=embedder, num_thought=1)


def test_pickle_and_deepcopy(embedder: O1Embedder) -> None:
    import copy
    import pickle

    retriever = _retriever(embedder, k=2, think=False)
    expected = [d.id for d in retriever.invoke("aspirin")]
    clone = pickle.loads(pickle.dumps(retriever))
    assert clone.embedder.fingerprint == embedder.fingerprint  # loaded again by the same names
    assert [d.id for d in clone.invoke("aspirin")] == expected and clone.k == 2
    assert [d.id for d in copy.deepcopy(retriever).invoke("aspirin")] == expected
    embeddings = O1Embeddings(embedder=embedder, think=False)
    assert pickle.loads(pickle.dumps(embeddings)).embed_query("aspirin") == embeddings.embed_query("aspirin")
    parts = O1Embedder(embedder.encoder, embedder.thinker)
    with pytest.raises(TypeError, match="built from objects"):
        pickle.dumps(parts)


def test_embeddings_send_thoughts_to_the_run_callbacks(embedder: O1Embedder) -> None:
    from langchain_core.runnables import RunnableLambda
    from langchain_core.vectorstores import InMemoryVectorStore

    embeddings = O1Embeddings(embedder=embedder, think="always", num_thoughts=2, max_new_tokens=4)
    store = InMemoryVectorStore(embedding=embeddings)
    store.add_texts(["Aspirin thins the blood.", "Coffee keeps people awake."])
    chain = RunnableLambda(lambda q: q.strip()) | store.as_retriever(search_kwargs={"k": 1})
    recorder = Recorder()
    docs = chain.invoke(" aspirin ", config={"callbacks": [recorder]})
    assert len(docs) == 1
    [(name, data)] = recorder.events
    assert name == "o1_thoughts" and data["query"] == "aspirin" and len(data["thoughts"]) == 2
    assert len(embeddings.embed_query("aspirin")) == embedder.dim  # outside a run: no callbacks, no error
    recorder = Recorder()
    asyncio.run(chain.ainvoke("coffee", config={"callbacks": [recorder]}))
    assert recorder.events and recorder.events[0][1]["query"] == "coffee"


def test_ensemble_keeps_the_thoughts_when_o1_comes_first(embedder: O1Embedder) -> None:
    ensemble_module = pytest.importorskip("langchain_classic.retrievers")
    from langchain_core.documents import Document
    from langchain_core.retrievers import BaseRetriever

    o1 = _retriever(embedder, k=4, think="always")
    same = o1.invoke("aspirin study")

    class Plain(BaseRetriever):
        def _get_relevant_documents(self, query, *, run_manager):  # type: ignore[no-untyped-def]
            return [Document(page_content=d.page_content, metadata={"from": "plain"}) for d in same]

    ensemble = ensemble_module.EnsembleRetriever(retrievers=[o1, Plain()], weights=[0.5, 0.5])
    fused = ensemble.invoke("aspirin study")
    assert len(fused) == len(same) and all(len(d.metadata["o1_thoughts"]) == 2 for d in fused)


def test_langchain_dumps_and_loads(tmp_path: Path) -> None:
    from langchain_core.load import dumps, loads

    retriever = O1Retriever(
        model=str(shared_tiny_model()), collection_name="lc-tiny", persist_directory=indexed_db(), k=2, **FAST
    )
    text = dumps(retriever)
    assert '"not_implemented"' not in text and "lc-tiny" in text
    again = loads(text, allowed_objects=[O1Retriever], valid_namespaces=["langchain_o1rag"])
    assert isinstance(again, O1Retriever) and again.k == 2
    assert [d.id for d in again.invoke("aspirin", think="never")] == [
        d.id for d in retriever.invoke("aspirin", think="never")
    ]


def test_embeddings_name_the_encoder_and_precision(tiny_encoder_dir: Path) -> None:
    model = str(shared_tiny_model())
    emb = O1Embeddings(model=model, encoder=str(tiny_encoder_dir), precision="float32", device="cpu")
    expected = O1Embedder.from_pretrained(model, encoder=str(tiny_encoder_dir), thinker=False, cache=False)
    assert emb.embedder.fingerprint == expected.fingerprint and emb.embedder.encoder.compute_dtype is None


def test_from_documents_indexes_incrementally_and_keeps_metadata(
    embedder: O1Embedder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from langchain_core.documents import Document

    embedded: list[str] = []
    real = embedder.embed_documents

    def counting(texts: list[str], *args: Any, **kwargs: Any) -> Any:
        embedded.extend(texts)
        return real(texts, *args, **kwargs)

    monkeypatch.setattr(embedder, "embed_documents", counting)
    docs = [
        Document(
            "Aspirin lowers the risk of heart attack.",
            metadata={"title": "aspirin", "year": 2020, "tags": ["x"]},
            id="a1",
        ),
        Document("Coffee keeps people awake at night.", metadata={"year": 2018}),
        Document("Insulin and diabetes.", id="i1"),
    ]
    where = {"collection_name": "lc-from", "persist_directory": str(tmp_path), "embedder": embedder}
    retriever = O1Retriever.from_documents(docs, **where, k=3, think=False)
    assert len(embedded) == 3 and "tags" in caplog.text  # the list could not be stored: said so
    top = retriever.invoke("aspirin heart attack")[0]
    assert (top.id, top.metadata["title"], top.metadata["year"]) == ("a1", "aspirin", 2020)
    assert "tags" not in top.metadata
    [coffee] = retriever.invoke("coffee", filter={"year": 2018})
    assert coffee.id.startswith("lc-") and coffee.page_content == docs[1].page_content
    # again, with one document edited: only it is embedded; the one without an id keeps its digest id
    embedded.clear()
    docs[2] = Document("Insulin pumps at night.", id="i1")
    again = O1Retriever.from_documents(docs, **where, k=5, think=False)
    assert embedded == ["Insulin pumps at night."]
    assert sorted(d.id for d in again.invoke("night")) == sorted(["a1", coffee.id, "i1"])
    # from_texts, and pruning what the new list no longer holds
    only = O1Retriever.from_texts(
        ["Statins lower cholesterol."], ids=["s1"], prune=True, **where, think=False
    )
    assert [d.id for d in only.invoke("cholesterol")] == ["s1"]
    with pytest.raises(ValueError, match="1 texts, 2 metadatas and 1 ids"):
        O1Retriever.from_texts(["x"], metadatas=[{}, {}], **where)
    with pytest.raises(ValueError, match="has no text"):
        O1Retriever.from_documents([Document(" ")], **where)
    with pytest.raises(ValueError, match="two different documents have the id 'a1'"):
        O1Retriever.from_documents([docs[0], Document("other", id="a1")], **where)


def test_a_hybrid_retriever_updates_its_bm25_side_when_documents_change(
    embedder: O1Embedder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """from_texts, add_documents and delete bring the BM25 side up to date themselves, so the next search
    does not wait for a rebuild."""
    from langchain_core.documents import Document

    import o1_rag.lexical as lexical

    where = {"collection_name": "lc-eager", "persist_directory": str(tmp_path), "embedder": embedder}
    retriever = O1Retriever.from_texts(["Aspirin lowers the risk of heart attack."], ids=["a1"], **where, k=5)
    assert (tmp_path / "o1rag-lexical" / "lc-eager" / "o1rag_lexical.json").is_file()  # built already
    rebuilt: list[int] = []
    real = lexical.sync_lexical

    def counting(collection, folder, *args, **kwargs):  # type: ignore[no-untyped-def]
        rebuilt.append(collection.count())
        return real(collection, folder, *args, **kwargs)

    monkeypatch.setattr(lexical, "sync_lexical", counting)
    retriever.add_documents([Document("Zebrafish regrow their hearts.", id="z1")])
    assert rebuilt == [2]
    assert retriever.invoke("zebrafish", think=False)[0].id == "z1" and rebuilt == [2]  # no rebuild here
    retriever.delete(["z1"])
    assert rebuilt == [2, 1]
    assert all(d.id != "z1" for d in retriever.invoke("zebrafish", think=False)) and rebuilt == [2, 1]


def test_add_documents_and_delete_keep_both_sides_in_step(embedder: O1Embedder, tmp_path: Path) -> None:
    from langchain_core.documents import Document

    where = {"collection_name": "lc-add", "persist_directory": str(tmp_path), "embedder": embedder}
    retriever = O1Retriever.from_texts(["Aspirin lowers the risk of heart attack."], ids=["a1"], **where, k=5)
    retriever.invoke("aspirin", think=False)  # the BM25 side is built and held open
    added = retriever.add_documents(
        [Document("Zebrafish regrow their hearts."), Document("Coffee keeps people awake.", id="c1")]
    )
    assert added[0].startswith("lc-") and added[1] == "c1"
    # the lexical side sees the new document: it is BM25's only match for a word no other document holds
    lexical = retriever.invoke("zebrafish", think=False, hybrid=True)
    assert lexical[0].id == added[0] and lexical[0].metadata["lexical_score"] is not None
    assert retriever.add_documents([Document("Statins lower cholesterol.")], ids=["s1"]) == ["s1"]
    assert asyncio.run(retriever.aadd_documents([Document("Insulin and diabetes.")], ids=["i1"])) == ["i1"]
    retriever.delete(["c1", added[0], "never-stored"])
    left = {d.id for d in retriever.invoke("zebrafish coffee", think=False, k=10)}
    assert left == {"a1", "s1", "i1"}
    assert all(d.metadata["lexical_score"] is None for d in retriever.invoke("zebrafish", think=False))
    with pytest.raises(ValueError, match="2 documents and 1 ids"):
        retriever.add_documents([Document("x"), Document("y")], ids=["x"])
    with pytest.raises(ValueError, match="list of document ids"):
        retriever.delete("s1")
