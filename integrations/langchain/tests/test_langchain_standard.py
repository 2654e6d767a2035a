"""LangChain's standard test suites, offline, on the tiny test model."""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

from langchain_tests.integration_tests import EmbeddingsIntegrationTests, RetrieversIntegrationTests
from langchain_tests.unit_tests import EmbeddingsUnitTests

from langchain_o1rag import O1Embeddings, O1Retriever
from o1_rag.data import Document as CorpusDoc
from o1_rag.embedder import O1Embedder
from o1_rag.store import O1Collection, index_documents, open_client
from o1_rag.testing import shared_tiny_model

TOPICS = ["aspirin", "insulin", "vitamin d", "statins", "sleep", "coffee", "exercise", "smoking"]


@functools.cache
def indexed_db() -> str:
    """A Chroma folder holding collection 'lc-tiny' (16 documents) built with the tiny model."""
    folder = tempfile.mkdtemp(prefix="o1rag-lc-")
    emb = O1Embedder.from_pretrained(str(shared_tiny_model()), device="cpu", cache=False)
    col = O1Collection.create_or_open(open_client(folder), "lc-tiny", emb.fingerprint, emb.dim)
    docs = [CorpusDoc(f"d{i}", TOPICS[i % 8], f"A study of {TOPICS[i % 8]} number {i}.") for i in range(16)]
    index_documents(emb, col, docs)
    return folder


FAST = {"num_thoughts": 2, "max_new_tokens": 4, "use_cache": False, "device": "cpu"}


class TinyEmbeddingsParams:
    """The tiny test model behind both embeddings suites."""

    @property
    def embeddings_class(self) -> type[O1Embeddings]:
        return O1Embeddings

    @property
    def embedding_model_params(self) -> dict:
        return {"model": str(shared_tiny_model()), **FAST}


class TestO1EmbeddingsUnit(TinyEmbeddingsParams, EmbeddingsUnitTests):
    pass


class TestO1EmbeddingsIntegration(TinyEmbeddingsParams, EmbeddingsIntegrationTests):
    pass


class TestO1RetrieverIntegration(RetrieversIntegrationTests):
    @property
    def retriever_constructor(self) -> type[O1Retriever]:
        return O1Retriever

    @property
    def retriever_constructor_params(self) -> dict:
        return {
            "model": str(shared_tiny_model()),
            "collection_name": "lc-tiny",
            "persist_directory": indexed_db(),
            **FAST,
        }

    @property
    def retriever_query_example(self) -> str:
        return "does aspirin prevent heart attacks?"


def test_indexed_db_exists() -> None:
    assert Path(indexed_db()).is_dir()
