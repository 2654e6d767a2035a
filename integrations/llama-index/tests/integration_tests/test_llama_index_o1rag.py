"""O1Embedding with LlamaIndex indexes, Chroma and instrumentation (offline, tiny test model)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
from llama_index.core import Settings, StorageContext, VectorStoreIndex
from llama_index.core.schema import Document

from llama_index.embeddings.o1rag import O1Embedding
from o1_rag.data import Document as CorpusDoc
from o1_rag.embedder import O1Embedder
from o1_rag.errors import FingerprintMismatchError, StoreError
from o1_rag.indexing import index_documents
from o1_rag.store import O1Collection, open_client
from o1_rag.testing import shared_tiny_model


def test_query_thinks_and_texts_do_not(o1: O1Embedding, embedder: O1Embedder) -> None:
    q = o1.get_query_embedding("does aspirin help?")
    assert len(q) == embedder.dim and "does aspirin help?" in o1.last_thoughts
    assert len(o1.last_thoughts["does aspirin help?"]) == 2
    expected = embedder.embed_queries(
        ["does aspirin help?"], thoughts=[o1.last_thoughts["does aspirin help?"]]
    )
    np.testing.assert_allclose(q, expected[0], atol=1e-5)
    texts = o1.get_text_embedding_batch(["a", "b", "c"])
    np.testing.assert_allclose(texts, embedder.embed_documents(["a", "b", "c"]), atol=1e-6)
    with pytest.raises(ValueError, match="query is empty"):
        o1.get_query_embedding("  ")


def test_async_variants_batch_and_match(o1: O1Embedding, embedder: O1Embedder) -> None:
    async def main():
        queries = await asyncio.gather(*(o1.aget_query_embedding(f"q{i}") for i in range(6)))
        texts = await o1.aget_text_embedding_batch(["x", "y"])
        return queries, texts

    queries, texts = asyncio.run(main())
    assert len(queries) == 6 and o1._batcher.calls == 1
    np.testing.assert_allclose(texts, embedder.embed_documents(["x", "y"]), atol=1e-6)


def test_index_from_documents_and_reopen(o1: O1Embedding, tmp_path: Path) -> None:
    Settings.embed_model = o1
    Settings.llm = None
    store = o1.chroma_vector_store("li-new", persist_dir=str(tmp_path), create=True)
    docs = [Document(text=f"A study of {t}.", metadata={"topic": t}) for t in ["aspirin", "coffee", "sleep"]]
    VectorStoreIndex.from_documents(docs, storage_context=StorageContext.from_defaults(vector_store=store))
    reopened = VectorStoreIndex.from_vector_store(o1.chroma_vector_store("li-new", persist_dir=str(tmp_path)))
    nodes = reopened.as_retriever(similarity_top_k=2).retrieve("aspirin")
    assert len(nodes) == 2 and all(n.node.get_content().startswith("A study of") for n in nodes)


def test_collection_built_by_o1rag_index(o1: O1Embedding, embedder: O1Embedder, tmp_path: Path) -> None:
    col = O1Collection.create_or_open(open_client(tmp_path), "built", embedder.fingerprint, embedder.dim)
    index_documents(embedder, col, [CorpusDoc(f"d{i}", "t", f"document {i}") for i in range(5)])
    index = VectorStoreIndex.from_vector_store(
        o1.chroma_vector_store("built", persist_dir=str(tmp_path)), embed_model=o1
    )
    nodes = index.as_retriever(similarity_top_k=3).retrieve("document 2")
    assert len(nodes) == 3 and {n.node.node_id for n in nodes} <= {f"d{i}" for i in range(5)}
    with pytest.raises(StoreError, match="does not exist"):
        o1.chroma_vector_store("missing", persist_dir=str(tmp_path))
    other = O1Embedder.from_pretrained(  # another document length: another embedding space
        str(shared_tiny_model()), device="cpu", cache=False, max_document_tokens=8
    )
    with pytest.raises(FingerprintMismatchError):
        O1Embedding(embedder=other, use_cache=False).chroma_vector_store("built", persist_dir=str(tmp_path))


def test_thoughts_are_instrumentation_events(o1: O1Embedding) -> None:
    import asyncio

    from llama_index.core.instrumentation import get_dispatcher
    from llama_index.core.instrumentation.event_handlers import BaseEventHandler

    from llama_index.embeddings.o1rag import O1ThoughtsEvent

    seen: list[O1ThoughtsEvent] = []

    class Handler(BaseEventHandler):
        def handle(self, event, **kwargs) -> None:  # type: ignore[no-untyped-def]
            if isinstance(event, O1ThoughtsEvent):
                seen.append(event)

    root = get_dispatcher()
    handler = Handler()
    root.add_event_handler(handler)
    try:
        o1.get_query_embedding("does aspirin help?")
        asyncio.run(o1.aget_query_embedding("coffee"))
    finally:
        root.event_handlers.remove(handler)
    assert [e.query for e in seen] == ["does aspirin help?", "coffee"]
    assert all(e.thoughts for e in seen) and seen[0].thoughts == o1.last_thoughts["does aspirin help?"]


def _built(embedder: O1Embedder, folder: Path) -> list[CorpusDoc]:
    docs = [
        CorpusDoc(f"d{i}", f"{t} study", f"A study of {t} and health, {i}.")
        for i, t in enumerate(["aspirin", "coffee", "sleep", "insulin", "aspirin", "statins"])
    ]
    col = O1Collection.create_or_open(open_client(folder), "li-hybrid", embedder.fingerprint, embedder.dim)
    index_documents(embedder, col, docs)
    return docs


def test_retriever_searches_as_o1rag_search(o1: O1Embedding, embedder: O1Embedder, tmp_path: Path) -> None:
    from llama_index.core.schema import MetadataMode

    from llama_index.embeddings.o1rag import O1Retriever
    from o1_rag.lexical import lexical_index
    from o1_rag.search import search

    _built(embedder, tmp_path)
    retriever = o1.as_retriever("li-hybrid", persist_dir=str(tmp_path), similarity_top_k=3, feedback=2)
    assert isinstance(retriever, O1Retriever)
    nodes = retriever.retrieve("aspirin study")
    col = O1Collection.open(open_client(tmp_path), "li-hybrid", embedder.fingerprint)
    [expected] = search(
        embedder,
        col,
        ["aspirin study"],
        k=3,
        think=o1.think_choice(),
        params=o1.think_params(),
        use_cache=False,
        lexical=lexical_index(col, str(tmp_path)),
        feedback=2,
    )
    assert [n.node.node_id for n in nodes] == [h.id for h in expected.hits]
    assert [n.score for n in nodes] == pytest.approx([h.score for h in expected.hits])
    first = nodes[0].node
    assert first.metadata["lexical_score"] is not None and first.metadata["title"].endswith("study")
    assert first.metadata["o1_thinking"].startswith("auto") and len(first.metadata["o1_thoughts"]) == 2
    prompt_text = first.get_content(metadata_mode=MetadataMode.LLM)
    assert "dense_score" not in prompt_text and "o1_thoughts" not in prompt_text and "title" in prompt_text
    dense = o1.as_retriever("li-hybrid", persist_dir=str(tmp_path), hybrid=False).retrieve("coffee")
    assert len(dense) == 4 and all(n.node.metadata["lexical_score"] is None for n in dense)
    later = asyncio.run(retriever.aretrieve("aspirin study"))
    assert [n.node.node_id for n in later] == [n.node.node_id for n in nodes]


def test_retriever_mmr_mode_and_metadata_filters(
    o1: O1Embedding, embedder: O1Embedder, tmp_path: Path
) -> None:
    from llama_index.core.vector_stores.types import (
        FilterCondition,
        FilterOperator,
        MetadataFilter,
        MetadataFilters,
    )

    from llama_index.embeddings.o1rag.retriever import chroma_where
    from o1_rag.lexical import lexical_index
    from o1_rag.search import search
    from o1_rag.selection import Selection

    _built(embedder, tmp_path)
    col = O1Collection.open(open_client(tmp_path), "li-hybrid", embedder.fingerprint)

    def ids(nodes) -> list[str]:
        return [n.node.node_id for n in nodes]

    def core(selection: Selection, where=None) -> list[str]:
        [result] = search(
            embedder,
            col,
            ["aspirin study"],
            k=3,
            think="never",
            where=where,
            lexical=lexical_index(col, str(tmp_path)),
            selection=selection,
        )
        return [hit.id for hit in result.hits]

    never = O1Embedding(embedder=embedder, think="never")
    common = {"persist_dir": str(tmp_path), "similarity_top_k": 3}
    plain = ids(never.as_retriever("li-hybrid", **common).retrieve("aspirin study"))
    mmr = never.as_retriever("li-hybrid", vector_store_query_mode="mmr", mmr_threshold=0.0, **common)
    varied = ids(mmr.retrieve("aspirin study"))
    assert varied == core(Selection(mmr=0.0)) and varied != plain and varied[0] == plain[0]
    relevance_only = never.as_retriever(
        "li-hybrid", vector_store_query_mode="mmr", mmr_threshold=1.0, **common
    )
    assert ids(relevance_only.retrieve("aspirin study")) == plain
    # MetadataFilters become Chroma's where: on both sides of the hybrid search
    either = MetadataFilters(
        filters=[
            MetadataFilter(key="title", value="coffee study"),
            MetadataFilter(key="title", value=["sleep study"], operator=FilterOperator.IN),
        ],
        condition=FilterCondition.OR,
    )
    where = chroma_where(either)
    assert where == {"$or": [{"title": {"$eq": "coffee study"}}, {"title": {"$in": ["sleep study"]}}]}
    found = never.as_retriever("li-hybrid", filters=either, **common).retrieve("aspirin study")
    assert {n.node.metadata["title"] for n in found} == {"coffee study", "sleep study"}
    assert ids(found) == core(Selection(), where)
    one = MetadataFilters(filters=[MetadataFilter(key="title", value="sleep study")])
    assert chroma_where(one) == {"title": {"$eq": "sleep study"}}
    with pytest.raises(ValueError, match="not both"):
        never.as_retriever("li-hybrid", filters=one, where={"title": "x"}, **common)
    with pytest.raises(ValueError, match="has no Chroma form"):
        chroma_where(
            MetadataFilters(filters=[MetadataFilter(key="t", value="x", operator=FilterOperator.CONTAINS)])
        )
    from llama_index.core.vector_stores.types import VectorStoreQueryMode

    for mode in ("hybrid", VectorStoreQueryMode.HYBRID):
        with pytest.raises(ValueError, match="vector_store_query_mode 'hybrid' is not supported"):
            never.as_retriever("li-hybrid", vector_store_query_mode=mode, **common)
    with pytest.raises(ValueError, match="mmr_threshold goes with vector_store_query_mode='mmr'"):
        never.as_retriever("li-hybrid", mmr_threshold=0.3, **common)
    with pytest.raises(ValueError, match="lambda_mult"):
        never.as_retriever("li-hybrid", vector_store_query_mode="mmr", mmr_threshold=3, **common)


def test_retriever_bad_input(o1: O1Embedding, embedder: O1Embedder, tmp_path: Path) -> None:
    _built(embedder, tmp_path)
    with pytest.raises(ValueError, match="similarity_top_k must be a whole number > 0, got 0"):
        o1.as_retriever("li-hybrid", persist_dir=str(tmp_path), similarity_top_k=0)
    with pytest.raises(ValueError, match="feedback must be a whole number of documents >= 0"):
        o1.as_retriever("li-hybrid", persist_dir=str(tmp_path), feedback=-1)
    with pytest.raises(StoreError, match="does not exist"):
        o1.as_retriever("missing", persist_dir=str(tmp_path))
    with pytest.raises(ValueError, match="query is empty"):
        o1.as_retriever("li-hybrid", persist_dir=str(tmp_path)).retrieve("  ")


def test_concurrent_retrievals_share_one_batched_call(embedder: O1Embedder, tmp_path: Path) -> None:
    from o1_rag.lexical import lexical_index
    from o1_rag.search import search

    _built(embedder, tmp_path)
    o1 = O1Embedding(embedder=embedder, model_name=str(shared_tiny_model()), think="never", use_cache=False)
    retriever = o1.as_retriever("li-hybrid", persist_dir=str(tmp_path), similarity_top_k=2)
    queries = ["aspirin", "coffee", "sleep", "insulin", "statins", "health"]

    async def main():
        return await asyncio.gather(*(retriever.aretrieve(q) for q in queries))

    together = asyncio.run(main())
    assert retriever._batcher.calls == 1  # one think + search call for the six
    col = O1Collection.open(open_client(tmp_path), "li-hybrid", embedder.fingerprint)
    lexical = lexical_index(col, str(tmp_path))
    expected = search(embedder, col, queries, k=2, think="never", lexical=lexical)  # the same batch at once
    assert [[n.node.node_id for n in r] for r in together] == [[h.id for h in r.hits] for r in expected]


def test_loading_settings_name_the_encoder_and_precision(tiny_encoder_dir: Path) -> None:
    """``encoder`` / ``precision`` / ``device`` are the CLI's --encoder / --precision / --device."""
    model = str(shared_tiny_model())
    o1 = O1Embedding(model_name=model, encoder=str(tiny_encoder_dir), precision="float32", device="cpu")
    expected = O1Embedder.from_pretrained(model, encoder=str(tiny_encoder_dir), thinker=False, cache=False)
    assert o1.embedder.fingerprint == expected.fingerprint and o1.embedder.encoder.compute_dtype is None
    with pytest.raises(ValueError, match="precision"):
        O1Embedding(model_name=model, precision="float16")


def test_retriever_over_a_collection_built_by_a_vector_store_index(o1: O1Embedding, tmp_path: Path) -> None:
    """Nodes come back as LlamaIndex wrote them (metadata, source document), and the LLM's view of a node
    holds neither the serialised node nor what the retrieval found out."""
    from llama_index.core.schema import MetadataMode

    Settings.embed_model = o1
    store = o1.chroma_vector_store("li-built", persist_dir=str(tmp_path), create=True)
    docs = [
        Document(text=f"A study of {t}.", metadata={"topic": t}, id_=f"doc-{t}")
        for t in ("aspirin", "coffee")
    ]
    VectorStoreIndex.from_documents(docs, storage_context=StorageContext.from_defaults(vector_store=store))
    retriever = o1.as_retriever("li-built", persist_dir=str(tmp_path), similarity_top_k=2)
    found = {n.node.ref_doc_id: n.node for n in retriever.retrieve("aspirin")}
    assert set(found) == {"doc-aspirin", "doc-coffee"}
    node = found["doc-aspirin"]
    assert node.metadata["topic"] == "aspirin" and "_node_content" not in node.metadata
    assert "o1_thinking" in node.metadata and "dense_score" in node.metadata
    assert node.get_content(MetadataMode.LLM) == "topic: aspirin\n\nA study of aspirin."
    # a serialised node this LlamaIndex cannot read: the stored text and metadata, without the blob
    store._collection.update(ids=[node.node_id], metadatas=[{"_node_content": "{not json", "topic": "x"}])
    again = {n.node.node_id: n.node for n in retriever.retrieve("aspirin")}
    assert (
        again[node.node_id].metadata["topic"] == "x" and "_node_content" not in again[node.node_id].metadata
    )
