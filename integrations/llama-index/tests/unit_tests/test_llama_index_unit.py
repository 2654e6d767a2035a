"""O1Embedding as a LlamaIndex component: class, serialisation, arguments, pickling."""

from __future__ import annotations

import numpy as np
import pytest
from llama_index.core.base.embeddings.base import BaseEmbedding

from llama_index.embeddings.o1rag import O1Embedding
from o1_rag.embedder import O1Embedder


def test_is_a_base_embedding(o1: O1Embedding) -> None:
    assert isinstance(o1, BaseEmbedding) and O1Embedding.class_name() == "O1Embedding"


def test_to_dict_round_trip(o1: O1Embedding, embedder: O1Embedder) -> None:
    data = o1.to_dict()
    assert data["class_name"] == "O1Embedding" and data["num_thoughts"] == 2
    again = O1Embedding.from_dict(data, embedder=embedder)
    assert again.to_dict() == data
    np.testing.assert_allclose(again.get_text_embedding("x"), o1.get_text_embedding("x"), atol=1e-6)


def test_unknown_arguments_are_rejected(embedder: O1Embedder) -> None:
    with pytest.raises(ValueError, match="O1Embedding got an unknown argument 'num_thought' \\(did you mean"):
        O1Embedding(embedder=embedder, num_thought=1)
    with pytest.raises(ValueError, match="got an unknown argument 'model'"):
        O1Embedding(embedder=embedder, model="o1-minilm")  # LlamaIndex's field is model_name


def test_pickle_round_trip(o1: O1Embedding) -> None:
    import pickle

    clone = pickle.loads(pickle.dumps(o1))
    assert clone.embedder.fingerprint == o1.embedder.fingerprint  # loaded by the same names
    assert clone.get_text_embedding("aspirin") == o1.get_text_embedding("aspirin")
