"""Smoke test of an integration in a fresh install: index six texts, then search / embed (offline)."""

import sys
import tempfile
from pathlib import Path

from o1_rag.data import Document
from o1_rag.embedder import O1Embedder
from o1_rag.indexing import index_documents
from o1_rag.lexical import lexical_folder, sync_lexical
from o1_rag.store import O1Collection, open_client
from o1_rag.testing import block_network

block_network()
TEXTS = [
    "Cold exposure recruits brown adipose tissue and raises thermogenesis.",
    "Autophagy declines in aged organisms.",
    "Low-dose aspirin lowers the risk of a first heart attack.",
    "Sleep deprivation impairs memory consolidation.",
    "Insulin resistance precedes type 2 diabetes.",
    "Coffee intake is associated with lower liver enzyme levels.",
]
db = Path(tempfile.mkdtemp()) / "db"
indexer = O1Embedder.from_pretrained(thinker=False)
collection = O1Collection.create_or_open(open_client(db), "smoke", indexer.fingerprint, indexer.dim)
index_documents(indexer, collection, [Document(f"d{i}", "", t) for i, t in enumerate(TEXTS)])
sync_lexical(collection, lexical_folder(collection, db))
if sys.argv[1] == "langchain":
    from langchain_o1rag import O1Retriever

    docs = O1Retriever(collection_name="smoke", persist_directory=str(db), k=2, think="never").invoke(
        "aspirin"
    )
    assert docs[0].metadata["id"] == "d2" and docs[0].metadata["lexical_score"], docs
else:
    from llama_index.embeddings.o1rag import O1Embedding

    embedding = O1Embedding(think="never")
    store = embedding.chroma_vector_store("smoke", persist_dir=str(db))
    assert len(embedding.get_query_embedding("aspirin")) == indexer.dim and store is not None
    nodes = embedding.as_retriever("smoke", persist_dir=str(db), similarity_top_k=2).retrieve("aspirin")
    assert nodes[0].node.node_id == "d2" and nodes[0].node.metadata["lexical_score"], nodes
print(f"{sys.argv[1]}: ok")
