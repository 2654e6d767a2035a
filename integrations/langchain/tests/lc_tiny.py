"""Shared by the LangChain tests: the tiny test model's settings and an indexed Chroma folder."""

from __future__ import annotations

import functools
import tempfile

from o1_rag.data import Document as CorpusDoc
from o1_rag.embedder import O1Embedder
from o1_rag.indexing import index_documents
from o1_rag.store import O1Collection, open_client
from o1_rag.testing import shared_tiny_model

TOPICS = ["aspirin", "insulin", "vitamin d", "statins", "sleep", "coffee", "exercise", "smoking"]
FAST = {"num_thoughts": 2, "max_new_tokens": 4, "use_cache": False, "device": "cpu"}


@functools.cache
def indexed_db() -> str:
    """A Chroma folder holding collection 'lc-tiny' (16 documents) built with the tiny model."""
    folder = tempfile.mkdtemp(prefix="o1rag-lc-")
    emb = O1Embedder.from_pretrained(str(shared_tiny_model()), device="cpu", cache=False)
    col = O1Collection.create_or_open(open_client(folder), "lc-tiny", emb.fingerprint, emb.dim)
    docs = [CorpusDoc(f"d{i}", TOPICS[i % 8], f"A study of {TOPICS[i % 8]} number {i}.") for i in range(16)]
    index_documents(emb, col, docs)
    return folder
