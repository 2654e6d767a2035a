"""Exceptions for user mistakes. The CLI prints their message as one line and exits non-zero."""


class O1RagError(ValueError):
    """Base class of every error caused by input the user can fix."""


class DataError(O1RagError):
    """A data file is missing or malformed (the message names the file and line)."""


class ModelNotFoundError(O1RagError):
    """A model or adapter name resolves to nothing loadable."""


class StoreError(O1RagError):
    """A Chroma collection is missing, misnamed or unreachable."""


class FingerprintMismatchError(StoreError):
    """A collection was built by a different embedder than the one querying it."""
