"""LangChain's standard integration tests for ``O1Embeddings`` and ``O1Retriever`` (offline: tiny test
model, embedded Chroma)."""

from __future__ import annotations

from pathlib import Path

from langchain_tests.integration_tests import EmbeddingsIntegrationTests, RetrieversIntegrationTests
from lc_tiny import FAST, indexed_db

from langchain_o1rag import O1Embeddings, O1Retriever
from o1_rag.testing import shared_tiny_model


class TestO1EmbeddingsIntegration(EmbeddingsIntegrationTests):
    @property
    def embeddings_class(self) -> type[O1Embeddings]:
        return O1Embeddings

    @property
    def embedding_model_params(self) -> dict:
        return {"model": str(shared_tiny_model()), **FAST}


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
