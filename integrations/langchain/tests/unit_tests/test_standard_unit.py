"""LangChain's standard unit tests for ``O1Embeddings`` (offline, tiny test model)."""

from __future__ import annotations

from langchain_tests.unit_tests import EmbeddingsUnitTests
from lc_tiny import FAST

from langchain_o1rag import O1Embeddings
from o1_rag.testing import shared_tiny_model


class TestO1EmbeddingsUnit(EmbeddingsUnitTests):
    @property
    def embeddings_class(self) -> type[O1Embeddings]:
        return O1Embeddings

    @property
    def embedding_model_params(self) -> dict:
        return {"model": str(shared_tiny_model()), **FAST}
