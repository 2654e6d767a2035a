"""LangChain integration of o1-rag: a retriever and embeddings that think before searching."""

from langchain_o1rag.embeddings import O1Embeddings
from langchain_o1rag.retrievers import O1Retriever

__all__ = ["O1Embeddings", "O1Retriever"]
