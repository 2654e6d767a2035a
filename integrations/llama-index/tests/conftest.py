"""Fixtures shared by the LlamaIndex integration's tests: the tiny test model behind ``O1Embedding``."""

from __future__ import annotations

import pytest

from llama_index.embeddings.o1rag import O1Embedding
from o1_rag.embedder import O1Embedder
from o1_rag.testing import shared_tiny_model

FAST = {"num_thoughts": 2, "max_new_tokens": 4, "use_cache": False}


@pytest.fixture(scope="session")
def embedder() -> O1Embedder:
    return O1Embedder.from_pretrained(str(shared_tiny_model()), device="cpu", cache=False)


@pytest.fixture
def o1(embedder: O1Embedder) -> O1Embedding:
    return O1Embedding(embedder=embedder, model_name=str(shared_tiny_model()), **FAST)
