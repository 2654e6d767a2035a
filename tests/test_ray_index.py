"""``o1rag index --ray``: a local Ray (started by the command, 2 CPUs here) embeds with a pool of encoder
actors; the vectors land in the embedded store (written by the driver) or in a Chroma server (written by
the actors). Each document ends up exactly once, with the vector a single process gives it, also after
the run is killed midway and started again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from o1_rag.cli import app
from o1_rag.data import load_corpus
from o1_rag.embedder import O1Embedder
from o1_rag.store import open_client
from o1_rag.testing import assert_same_vectors

pytestmark = [pytest.mark.distributed, pytest.mark.slow]
pytest.importorskip("ray")

O1RAG = [sys.executable, "-m", "o1_rag.cli"]


def _corpus(folder: Path, n: int) -> Path:
    folder.mkdir(parents=True)
    topics = ["aspirin", "insulin", "vitamin d", "statins", "sleep", "coffee", "exercise", "smoking"]
    with open(folder / "corpus.jsonl", "w") as handle:
        for i in range(n):
            topic = topics[i % len(topics)]
            record = {"_id": f"d{i}", "title": f"{topic} {i}", "text": f"A study of {topic} and health, {i}."}
            if i % 3 == 0:
                record["metadata"] = {"n": i}  # stored beside the text, on either path
            handle.write(json.dumps(record) + "\n")
            if i % 17 == 0:
                handle.write("\n")  # blank lines are allowed in corpus.jsonl
    return folder


def _stored(client, name: str) -> dict[str, np.ndarray]:
    got = client.get_collection(name, embedding_function=None).get(include=["embeddings"])
    assert len(got["ids"]) == len(set(got["ids"]))
    return dict(zip(got["ids"], np.asarray(got["embeddings"]), strict=True))


def _check_vectors(stored: dict[str, np.ndarray], corpus: Path, embedder: O1Embedder, ids: list[str]) -> None:
    """Spot-check that each id holds its own document's vector (not a neighbour's from another batch)."""
    docs = {d.id: d for d in load_corpus(corpus)}
    expected = embedder.embed_documents([docs[i].full_text() for i in ids])
    assert_same_vectors(np.stack([stored[i] for i in ids]), expected, embedder)


def test_ray_index_into_the_embedded_store_matches_one_process(
    tmp_path: Path, tiny_encoder_dir: Path
) -> None:
    corpus = _corpus(tmp_path / "set", 60)
    index = [*O1RAG, "index", str(corpus), "-c", "viaray", "--db", str(tmp_path / "db"), "--ray", "local"]
    index += ["--encoder", str(tiny_encoder_dir), "--model", str(tiny_encoder_dir), "--limit", "50"]
    ray_run = subprocess.run(
        [*index, "--ray-actors", "2", "--batch-size", "8"], capture_output=True, text=True, timeout=600
    )
    assert ray_run.returncode == 0, ray_run.stderr[-3000:]
    assert "50 added" in ray_run.stdout
    client = open_client(tmp_path / "db")
    stored = _stored(client, "viaray")
    assert sorted(stored) == sorted(f"d{i}" for i in range(50))  # --limit: the first 50, each once
    embedder = O1Embedder.from_pretrained(
        str(tiny_encoder_dir), encoder=str(tiny_encoder_dir), thinker=False, cache=False
    )
    _check_vectors(stored, corpus, embedder, ["d0", "d17", "d33", "d49"])
    metas = client.get_collection("viaray", embedding_function=None).get(
        ids=["d3", "d4"], include=["metadatas"]
    )
    assert dict(zip(metas["ids"], metas["metadatas"], strict=True)) == {
        "d3": {"title": "statins 3", "n": 3},
        "d4": {"title": "sleep 4"},
    }
    again = subprocess.run(index, capture_output=True, text=True, timeout=600)
    said = " ".join(again.stdout.split())  # rich wraps the line at the terminal width
    assert again.returncode == 0 and "0 added" in said and "50 unchanged" in said
    # an edited corpus: the changed document is embedded again on Ray; --prune drops the lost ones
    lines = (corpus / "corpus.jsonl").read_text().splitlines()
    edited = [line.replace("A study of insulin and health, 9.", "Insulin pumps at night.") for line in lines]
    (corpus / "corpus.jsonl").write_text("\n".join(edited[:40]) + "\n")
    kept = len(load_corpus(corpus))
    pruned = subprocess.run(
        [*index[:-2], "--prune"],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "COLUMNS": "300"},
    )
    assert pruned.returncode == 0, pruned.stderr[-3000:]
    assert f"0 added, 1 updated, {kept - 1} unchanged, {50 - kept} removed" in pruned.stdout
    from chromadb.api.client import SharedSystemClient

    del client
    SharedSystemClient.clear_system_cache()  # this process's client holds the vectors it read before
    stored = _stored(open_client(tmp_path / "db"), "viaray")
    assert sorted(stored) == sorted(f"d{i}" for i in range(kept))
    _check_vectors(stored, corpus, embedder, ["d9"])  # alone, as it was embedded (bfloat16 pads)


def test_ray_index_into_a_server_resumes_after_a_kill(tmp_path: Path, chroma_server: int) -> None:
    """The real bundled encoder (about 10 documents/s per actor here) leaves time to kill the run midway."""
    corpus = _corpus(tmp_path / "set", 240)
    server = ["--chroma-host", "127.0.0.1", "--chroma-port", str(chroma_server)]
    command = [*O1RAG, "index", str(corpus), "-c", "served", "--ray", "local", "--batch-size", "4", *server]
    client = open_client(host="127.0.0.1", port=chroma_server)
    proc = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline, count = time.time() + 300, 0
    while time.time() < deadline and proc.poll() is None:
        try:
            count = client.get_collection("served", embedding_function=None).count()
        except Exception:  # not created yet
            count = 0
        if count >= 8:
            break
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and the Ray it started
    proc.wait(60)
    assert 8 <= count < 240, f"the run was not caught midway ({count} stored)"
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    stored = _stored(client, "served")
    assert sorted(stored) == sorted(f"d{i}" for i in range(240))
    assert "unchanged" in done.stdout
    metas = client.get_collection("served", embedding_function=None).get(ids=["d120"], include=["metadatas"])
    assert metas["metadatas"][0] == {"title": "aspirin 120", "n": 120}  # written by the workers
    bundled = O1Embedder.from_pretrained("o1-minilm", thinker=False, cache=False)
    _check_vectors(stored, corpus, bundled, ["d0", "d7", "d120", "d239"])


def test_without_ray_the_flag_is_a_one_line_install_hint(
    tmp_path: Path, tiny_corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    result = CliRunner().invoke(
        app, ["index", str(tiny_corpus), "--db", str(tmp_path / "db"), "--ray", "local"]
    )
    assert result.exit_code != 0
    assert "pip install 'o1-rag[ray]'" in result.output and "Traceback" not in result.output
