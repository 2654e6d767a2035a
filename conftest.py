"""Shared fixtures. Tests are offline by construction: any non-loopback connection attempt fails."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from o1_rag.testing import (
    block_network,
    free_port,
    save_real_tokenizer,
    shared_tiny_encoder,
    shared_tiny_model,
)

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["ANONYMIZED_TELEMETRY"] = "False"
os.environ["TOKENIZERS_PARALLELISM"] = "false"

SHARED_DATA = Path(__file__).resolve().parent.parent / "shared" / "data"
block_network()


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test gets its own O1RAG_HOME (thought cache, default Chroma folder)."""
    home = tmp_path / "o1home"
    monkeypatch.setenv("O1RAG_HOME", str(home))
    monkeypatch.delenv("O1RAG_DB", raising=False)
    return home


@pytest.fixture(scope="session")
def real_tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real SmolLM2 tokenizer (read from the bundled GGUF, no download), saved to a folder."""
    return save_real_tokenizer(tmp_path_factory.mktemp("tokenizer"))


@pytest.fixture(scope="session")
def tiny_model_dir() -> Path:
    """A 2-layer random Llama with the real SmolLM2 tokenizer, saved as a local model folder."""
    return shared_tiny_model()


@pytest.fixture(scope="session")
def tiny_encoder_dir() -> Path:
    """A 2-layer random BERT with the real MiniLM tokenizer, saved as a sentence-transformers folder."""
    return shared_tiny_encoder()


@pytest.fixture(scope="session")
def tiny_adapter_dir(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Path:
    """A LoRA adapter with non-zero weights on top of the tiny model."""
    import torch
    from peft import LoraConfig, get_peft_model

    from o1_rag.causal_lm import load_model

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

    # float32: the read-only tests check exact properties (batch invariance, pooling positions)
    return O1Embedder.from_pretrained(str(tiny_model_dir), device="cpu", precision="float32", cache=False)


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


CHROMA = shutil.which("chroma") or str(Path(sys.executable).parent / "chroma")


@pytest.fixture
def chroma_server(tmp_path: Path):
    """A Chroma server (`chroma run`) on loopback, for this test only; yields its port."""
    if not Path(CHROMA).exists():
        pytest.skip("the chroma server binary is not installed")
    port = free_port()
    proc = subprocess.Popen(
        [CHROMA, "run", "--path", str(tmp_path / "server"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("chroma server did not start")
    yield port
    proc.terminate()
    proc.wait(30)
