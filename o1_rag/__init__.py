"""o1-rag: retrievers that think before they search (O1 Embedder)."""

from o1_rag.errors import DataError, FingerprintMismatchError, ModelNotFoundError, O1RagError, StoreError

__version__ = "0.1.0"

__all__ = [
    "DataError",
    "FingerprintMismatchError",
    "ModelNotFoundError",
    "O1Embedder",
    "O1RagError",
    "StoreError",
    "ThoughtCache",
    "__version__",
]


def __getattr__(name: str):  # lazy: importing the package must not import torch
    if name == "O1Embedder":
        from o1_rag.embedder import O1Embedder

        return O1Embedder
    if name == "ThoughtCache":
        from o1_rag.cache import ThoughtCache

        return ThoughtCache
    raise AttributeError(f"module 'o1_rag' has no attribute {name!r}")
