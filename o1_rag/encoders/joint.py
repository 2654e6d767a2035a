"""The joint O1 decoder LM as an encoder: last-token pooling at ``<emb>``; one forward over
``<query>q</query><emb><thought>t{eos}<emb>`` yields ``v_q`` (first ``<emb>``) and ``v_t`` (last)."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from o1_rag.encoders.base import Encoder, Progress


def backbone(model: Any) -> Any:
    """The decoder stack under a causal LM's head (LoRA layers, when present, are inside it)."""
    if hasattr(model, "get_base_model"):
        model = model.get_base_model()
    return model.get_decoder() if hasattr(model, "get_decoder") else getattr(model, model.base_model_prefix)


class JointEncoder(Encoder):
    """The O1 decoder LM as an encoder (last-token pooling at ``<emb>``).

    Args:
        model / tokenizer: a causal LM whose tokenizer holds the O1 markers.
        identity: ``{"base": ..., "adapter": ...}`` of the loaded weights.
        fmt: the ``O1Format`` with the truncation lengths.
        batch_size: sequences per forward.
        lock: held around forwards (share it with an ``LMThinker`` on the same model).
        precision: ``auto``, ``float32`` or ``bfloat16`` (see ``Encoder``).
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        identity: dict[str, Any],
        fmt: Any,
        *,
        batch_size: int = 16,
        lock: threading.RLock | None = None,
        name: str = "",
        precision: str = "auto",
    ) -> None:
        from o1_rag.causal_lm import pick_precision

        if batch_size < 1:
            raise ValueError("batch sizes must be >= 1")
        self.model = model
        self.tokenizer = tokenizer
        self.format = fmt
        self.batch_size = batch_size
        self.name = name
        self._identity = identity
        self._lock = lock or threading.RLock()
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self._decoder = backbone(model)
        self.device_type = self.device.type
        self.compute_dtype = pick_precision(precision, str(self.device))

    @property
    def dim(self) -> int:
        return int(self.model.config.hidden_size)

    @property
    def device(self) -> Any:
        return next(self.model.parameters()).device

    @property
    def fingerprint_fields(self) -> dict[str, Any]:
        from o1_rag.pooling import POOLING
        from o1_rag.prompts import PROMPT_FORMAT_VERSION

        return {
            "base": self._identity.get("base"),
            "adapter": self._identity.get("adapter"),
            "prompt_format": PROMPT_FORMAT_VERSION,
            "pooling": POOLING,
            "normalize": True,
            "max_document_tokens": self.format.max_document_tokens,
        }

    def describe(self) -> str:
        return self.name or str(self._identity.get("base"))

    def encode_sequences(
        self, sequences: list[list[int]], batch_size: int | None = None, progress: Progress | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Pool the first and last ``<emb>`` of each token sequence: two ``(n, dim)`` arrays, normalised."""
        import torch
        import torch.nn.functional as F

        from o1_rag.generation import pad_sequences
        from o1_rag.pooling import gather_positions, marker_positions

        batch_size = batch_size or self.batch_size
        first_out = np.zeros((len(sequences), self.dim), dtype=np.float32)
        last_out = np.zeros((len(sequences), self.dim), dtype=np.float32)
        order = sorted(range(len(sequences)), key=lambda i: -len(sequences[i]))  # longest first: fail fast
        with self._lock, torch.inference_mode():
            for start in range(0, len(order), batch_size):
                chunk = order[start : start + batch_size]
                ids, mask = pad_sequences([sequences[i] for i in chunk], self.pad_id, "right", self.device)
                hidden = self.forward(
                    lambda: self._decoder(input_ids=ids, attention_mask=mask).last_hidden_state  # noqa: B023
                )  # (b, seq, dim)
                where = marker_positions(ids, mask, self.format.emb_id)  # (b, 2)
                first_out[chunk] = F.normalize(gather_positions(hidden, where[:, 0]).float(), dim=-1).cpu()
                last_out[chunk] = F.normalize(gather_positions(hidden, where[:, 1]).float(), dim=-1).cpu()
                if progress is not None:
                    progress(len(chunk))
        return first_out, last_out

    def embed_documents(
        self, texts: list[str], batch_size: int | None = None, progress: Progress | None = None
    ) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self.encode_sequences([self.format.document(t) for t in texts], batch_size, progress)[1]

    def embed_queries(self, queries: list[str], batch_size: int | None = None) -> np.ndarray:
        if not queries:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self.encode_sequences([self.format.query_prefix(q) for q in queries], batch_size)[1]

    def embed_pairs(
        self, queries: list[str], thoughts: list[str], batch_size: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        sequences = [self.format.query_with_thought(q, t) for q, t in zip(queries, thoughts, strict=True)]
        return self.encode_sequences(sequences, batch_size)
