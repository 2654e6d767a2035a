"""Loading a causal LM for O1 use: base weights (+ a peft adapter), the O1 markers, device and dtype.

Which name means which weights is ``o1_rag.models``'s business; this module turns a resolved name into a
``LoadedModel`` (model, tokenizer and what identifies them).
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from o1_rag.compat import peft_quietly
from o1_rag.config import O1_CONFIG_NAME, O1Config
from o1_rag.errors import ModelNotFoundError
from o1_rag.files import sha256_file
from o1_rag.models import (
    BUNDLED_MODELS,
    COMPOSED_MODELS,
    JOINT_MODEL,
    TRAINED_MODELS,
    resolve_base,
    split_trained,
)


@dataclass
class LoadedModel:
    """A causal LM ready for O1 use, with what identifies it."""

    model: Any
    tokenizer: Any
    base_identity: str
    adapter_identity: str | None = None
    o1_config: O1Config = field(default_factory=O1Config)
    adapter_path: str | None = None

    def identity(self, name: str = "") -> dict[str, Any]:
        """``{"name", "base", "adapter"}``: what identifies the weights (thinker and encoder identities)."""
        return {"name": name, "base": self.base_identity, "adapter": self.adapter_identity}


def pick_device(device: str = "auto") -> str:
    """``auto`` -> ``cuda`` when present, else ``cpu``."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


PRECISIONS = ("auto", "float32", "bfloat16")


def native_bf16(device: str) -> bool:
    """Whether ``device`` multiplies bfloat16 matrices in hardware: a GPU that supports bfloat16, or a CPU
    with AMX tiles or AVX512-BF16 (elsewhere bfloat16 is emulated and slower than float32)."""
    import torch

    if device.startswith("cuda"):
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if device == "cpu":
        names = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")  # torch.cpu's own probes
        return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in names)
    return False


def check_precision(precision: str) -> str:
    """``precision`` when it is one of ``PRECISIONS``, else a ValueError naming them."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision '{precision}': use {', '.join(PRECISIONS)}")
    return precision


def pick_precision(precision: str, device: str) -> Any:
    """The autocast dtype of encoding forwards, or None to compute in the weights' own dtype.

    ``auto`` -> bfloat16 where ``device`` (``cpu``, ``cuda`` ...) computes it in hardware, else None;
    ``float32`` -> None; ``bfloat16`` -> bfloat16 anywhere.
    """
    import torch

    if check_precision(precision) == "float32" or (precision == "auto" and not native_bf16(device)):
        return None
    return torch.bfloat16


def writer_dtype(dtype: str, device: str, precision: str = "auto") -> str:
    """The dtype a model that only writes (a thinker) loads in: ``dtype`` unless it is ``auto``, which
    follows ``precision`` as the encoders do: bfloat16 weights where it asks for bfloat16 (``auto``: where
    ``device`` multiplies bfloat16 in hardware), else float32. Generation reads every weight once per
    token, so halving their size speeds it up where bfloat16 is native."""
    if dtype != "auto":
        return dtype
    return "float32" if pick_precision(precision, pick_device(device)) is None else "bfloat16"


def pick_dtype(dtype: str, device: str) -> Any:
    """``auto`` -> bfloat16 on a GPU that supports it, float32 elsewhere."""
    import torch

    if dtype == "auto":
        if device.startswith("cuda") and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    try:
        return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]
    except KeyError:
        raise ValueError(f"unknown dtype '{dtype}': use auto, float32, bfloat16 or float16") from None


def check_adapter_folder(path: Path) -> Path:
    """A peft adapter folder with safetensors weights; pickled weights (``*.bin``) are refused up front."""
    if not (path / "adapter_config.json").is_file():
        raise ModelNotFoundError(f"adapter '{path}' is not a folder with an adapter_config.json")
    if not (path / "adapter_model.safetensors").is_file():
        pickled = sorted(p.name for p in path.glob("*.bin"))
        what = (
            f"only {', '.join(pickled)} (pickle, never loaded)" if pickled else "no adapter_model.safetensors"
        )
        raise ModelNotFoundError(f"adapter '{path}' holds {what}: o1-rag loads safetensors weights only")
    return path


def adapter_checksum(path: Path) -> str:
    """sha256 over an adapter's weights and peft config (its files are small).

    ``o1_config.json`` is left out: what in it shapes document vectors (the truncation length) is part of
    the embedder fingerprint itself, and the rest (think mode, query-side lengths) is query-side only. So is
    the think gate (``o1_gate.json``): it decides which queries think, never how a document is embedded.
    """
    digest = hashlib.sha256()
    query_side = {O1_CONFIG_NAME, "o1_gate.json"}
    files = [
        p.name for p in path.iterdir() if p.suffix in {".safetensors", ".json"} and p.name not in query_side
    ]
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + sha256_file(path / name).encode())
    return digest.hexdigest()[:16]


def read_o1_config(adapter: str | None, base: str | None = None) -> O1Config:
    """The validated ``o1_config.json`` of an adapter folder, else of a local base folder, else defaults."""
    folders = [Path(p).expanduser() for p in (adapter, base) if p]
    return O1Config.find(*(p for p in folders if p.is_dir()))


def load_model(
    name: str = JOINT_MODEL,
    *,
    adapter: str | None = None,
    revision: str | None = None,
    device: str = "auto",
    dtype: str = "auto",
    trust_remote_code: bool = False,
    o1_tokens: bool = True,
) -> LoadedModel:
    """Load a base model (+ optional peft adapter) with the O1 markers in its tokenizer.

    ``o1_tokens=False`` loads a model that only writes (a chat thinker) as it is: no markers, no resize.

    Raises:
        ModelNotFoundError: the name or the adapter resolves to nothing loadable.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from o1_rag.prompts import add_o1_tokens

    name, adapter = split_trained(name, adapter)
    load_path, identity = resolve_base(name)
    adapter_path = Path(adapter).expanduser() if adapter else None
    if adapter_path is not None:
        check_adapter_folder(adapter_path)
    device = pick_device(device)
    torch_dtype = pick_dtype(dtype, device)
    common = {"revision": revision, "trust_remote_code": trust_remote_code}
    tokenizer_source = (
        str(adapter_path)
        if adapter_path is not None and (adapter_path / "tokenizer_config.json").is_file()
        else load_path
    )
    try:
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_source, **common)
        model = AutoModelForCausalLM.from_pretrained(
            load_path, dtype=torch_dtype, use_safetensors=True, **common
        )
    except (OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        aliases = ", ".join([*COMPOSED_MODELS, *TRAINED_MODELS, *BUNDLED_MODELS])
        raise ModelNotFoundError(
            f"cannot load model '{name}': not a bundled alias ({aliases}), not a local "
            f"model folder, and not loadable as a Hugging Face id ({first})"
        ) from None
    if identity.startswith("hub:"):
        commit = getattr(model.config, "_commit_hash", None) or revision or "unpinned"
        identity = f"{identity}@{commit}"
    if o1_tokens or adapter_path is not None:  # an O1 adapter was trained with the markers
        rows_before = model.get_input_embeddings().weight.shape[0]
        added = add_o1_tokens(tokenizer, model)
        if added or model.get_input_embeddings().weight.shape[0] > rows_before:
            init_marker_rows(model, tokenizer)
    o1_config = read_o1_config(str(adapter_path) if adapter_path else None, load_path)
    adapter_identity = None
    if adapter_path is not None:
        from peft import PeftModel

        with peft_quietly():
            model = PeftModel.from_pretrained(model, str(adapter_path), is_trainable=False)
        with contextlib.suppress(Exception):  # merging is an inference speed-up, not a requirement
            model = model.merge_and_unload()
        adapter_identity = adapter_checksum(adapter_path)
    model.to(device)
    model.eval()
    return LoadedModel(
        model, tokenizer, identity, adapter_identity, o1_config, str(adapter_path) if adapter_path else None
    )


def init_marker_rows(model: Any, tokenizer: Any) -> None:
    """Give each new O1 marker a deterministic embedding: the mean of its spelled-out word pieces.

    Random rows would differ between processes, so documents indexed in one run and queries embedded in
    another would live in different spaces.
    """
    import torch

    from o1_rag.prompts import O1_TOKENS

    embeddings = model.get_input_embeddings().weight
    with torch.no_grad():
        for marker in O1_TOKENS:
            word = marker.strip("<>/") or marker
            pieces = tokenizer(word, add_special_tokens=False)["input_ids"]
            row = tokenizer.convert_tokens_to_ids(marker)
            embeddings[row] = embeddings[pieces].mean(dim=0)
        output = model.get_output_embeddings()
        if output is not None and output.weight.data_ptr() != embeddings.data_ptr():
            for marker in O1_TOKENS:
                row = tokenizer.convert_tokens_to_ids(marker)
                output.weight[row] = 0.0
