"""LlamaIndex embedding of o1-rag."""

from llama_index.embeddings.o1rag.base import O1Embedding, O1ThoughtsEvent

__all__ = ["O1Embedding", "O1ThoughtsEvent"]
