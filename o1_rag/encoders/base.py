"""The encoder interface (``Encoder``) and the helpers every encoder uses."""

from __future__ import annotations

import contextlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np

logger = logging.getLogger(__name__)

Progress = Callable[[int], None]
T = TypeVar("T")


def normalise_rows(rows: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (zero rows stay zero), float32."""
    return (rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def check_texts(texts: Sequence[str], what: str) -> list[str]:
    """A list of strings, or a TypeError naming the first bad item."""
    if isinstance(texts, str):
        raise TypeError(f"{what} must be a list of strings, not one string")
    out = list(texts)
    for i, text in enumerate(out):
        if not isinstance(text, str):
            raise TypeError(f"{what}[{i}] is {type(text).__name__}, not str")
    return out


class Encoder(ABC):
    """Embeds documents, queries (``v_q``) and query + thought pairs (``v_t``); all rows L2-normalised.

    ``precision`` (``auto``, ``float32``, ``bfloat16``; see ``causal_lm.pick_precision``) is how the forwards
    compute: ``auto`` multiplies in bfloat16 (autocast, float32 weights) where the hardware does so natively
    (a CPU with AMX, a recent GPU), which encodes several times faster; the vectors agree with float32 ones
    to a cosine of about 0.9999, so it is not part of the fingerprint: an index built at one precision
    serves queries at the other.
    """

    batch_size: int = 16
    compute_dtype: Any = None  # the autocast dtype of the forwards; None: the weights' own
    device_type: str = "cpu"

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        """The context the forwards run in: autocast to ``compute_dtype``, or nothing."""
        if self.compute_dtype is None:
            return contextlib.nullcontext()
        import torch

        return torch.autocast(self.device_type, dtype=self.compute_dtype)

    def forward(self, fn: Callable[[], T]) -> T:
        """``fn()`` (one batch's forward) under ``autocast()``. A model with an operation that has no
        kernel for ``compute_dtype`` here makes this encoder compute in float32 from then on, with a
        warning, instead of failing."""
        if self.compute_dtype is None:
            return fn()
        try:
            with self.autocast():
                return fn()
        except (RuntimeError, NotImplementedError) as exc:
            dtype = str(self.compute_dtype).removeprefix("torch.")
            if dtype.lower() not in str(exc).lower():  # torch names the dtype, e.g. 'BFloat16'
                raise
            first = str(exc).strip().splitlines()[0]
            logger.warning("%s cannot compute in %s here (%s): using float32", self.describe(), dtype, first)
            self.compute_dtype = None
            return fn()

    @property
    @abstractmethod
    def dim(self) -> int:
        """Embedding dimension."""

    @property
    @abstractmethod
    def fingerprint_fields(self) -> dict[str, Any]:
        """Everything that decides document vectors and the embedding space."""

    @abstractmethod
    def describe(self) -> str:
        """Human-readable name."""

    @abstractmethod
    def embed_documents(
        self, texts: list[str], batch_size: int | None = None, progress: Progress | None = None
    ) -> np.ndarray:
        """``(n, dim)`` document vectors; ``progress`` gets the number finished after each batch."""

    @abstractmethod
    def embed_queries(self, queries: list[str], batch_size: int | None = None) -> np.ndarray:
        """``(n, dim)`` query-only vectors ``v_q``."""

    @abstractmethod
    def embed_pairs(
        self, queries: list[str], thoughts: list[str], batch_size: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(v_q, v_t)``, each ``(n, dim)``, for ``n`` (query, thought) pairs."""
