"""LlamaIndex embedding and retriever of o1-rag."""

from llama_index.embeddings.o1rag.base import O1Embedding, O1ThoughtsEvent
from llama_index.embeddings.o1rag.retriever import O1Retriever

__all__ = ["O1Embedding", "O1Retriever", "O1ThoughtsEvent"]
