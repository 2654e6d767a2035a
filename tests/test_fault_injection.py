"""Fault injection for `o1rag index`: kills at random batch boundaries, and a Chroma server that dies mid-run.

Each case ends with the collection holding every document of the corpus exactly once, and its BM25 index
holding exactly the collection's ids.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from o1_rag.lexical import LexicalIndex, lexical_folder
from o1_rag.store import O1Collection, open_client

CHROMA = shutil.which("chroma") or str(Path(sys.executable).parent / "chroma")
N_DOCS = 640
BATCH = 16


class ChromaServer:
    """`chroma run` on loopback over one data folder, which can be killed and started again."""

    def __init__(self, path: Path) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.path = path
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [CHROMA, "run", "--path", str(self.path), "--host", "127.0.0.1", "--port", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.2)
        self.kill()
        pytest.fail("chroma server did not start")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    with open(data / "corpus.jsonl", "w") as handle:
        for i in range(N_DOCS):
            text = f"document {i} about topic {i % 7} " * (1 + i % 9)
            handle.write(json.dumps({"_id": f"doc{i}", "text": text}) + "\n")
    return data


def index_command(corpus: Path, model: Path, target: list[str]) -> list[str]:
    return [
        sys.executable,
        "-m",
        "o1_rag.cli",
        "index",
        str(corpus),
        "-c",
        "faults",
        "--model",
        str(model),
        "--device",
        "cpu",
        "--batch-size",
        str(BATCH),
        "-v",
        *target,
    ]


def run_until(cmd: list[str], marker: str, on_marker) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    """Run ``cmd``; call ``on_marker(proc)`` when a line containing ``marker`` appears."""
    env = {**os.environ, "COLUMNS": "200"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True)
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if marker in line:
            on_marker(proc)
            break
    lines.extend(proc.stdout)
    return proc.wait(120), "".join(lines)


def check_exact(client, db: Path | None) -> None:  # type: ignore[no-untyped-def]
    col = O1Collection.open(client, "faults")
    assert col.count() == N_DOCS
    assert col.stored_ids() == {f"doc{i}" for i in range(N_DOCS)}
    lexical = LexicalIndex.load(lexical_folder(col, db))
    assert sorted(lexical.ids) == sorted(col.stored_ids())


@pytest.mark.parametrize("store", ["embedded", "server"])
def test_kills_at_random_batch_boundaries(
    store: str, corpus: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    server = None
    if store == "server":
        if not Path(CHROMA).exists():
            pytest.skip("the chroma server binary is not installed")
        server = ChromaServer(tmp_path / "server")
        server.start()
        target = ["--chroma-host", "127.0.0.1", "--chroma-port", str(server.port)]
        db = None
    else:
        db = tmp_path / "db"
        target = ["--db", str(db)]
    cmd = index_command(corpus, tiny_model_dir, target)
    rng = random.Random(7)
    try:
        done = 0
        for _ in range(3):  # three kills, each a few batches further on, at a random boundary
            done += BATCH * rng.randint(2, 8)
            code, _ = run_until(cmd, f"stored {done}/", lambda proc: proc.send_signal(signal.SIGKILL))
            assert code == -signal.SIGKILL
            done = 0  # the next run counts its own batches from the documents still missing
        final = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        assert final.returncode == 0, final.stdout + final.stderr
        client = open_client(db) if db else open_client(host="127.0.0.1", port=server.port)
        check_exact(client, db)
    finally:
        if server is not None:
            server.kill()


def test_server_dies_mid_index_then_recovers(corpus: Path, tiny_model_dir: Path, tmp_path: Path) -> None:
    if not Path(CHROMA).exists():
        pytest.skip("the chroma server binary is not installed")
    server = ChromaServer(tmp_path / "server")
    server.start()
    target = ["--chroma-host", "127.0.0.1", "--chroma-port", str(server.port)]
    cmd = index_command(corpus, tiny_model_dir, target)
    try:
        code, output = run_until(cmd, f"stored {BATCH * 4}/", lambda proc: server.kill())
        assert code == 1, output
        assert "error:" in output and "Traceback" not in output
        search = subprocess.run(
            [
                sys.executable,
                "-m",
                "o1_rag.cli",
                "search",
                "topic",
                "-c",
                "faults",
                "--model",
                str(tiny_model_dir),
                "--no-think",
                *target,
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert search.returncode == 1 and "error:" in search.stderr + search.stdout
        assert "Traceback" not in search.stderr + search.stdout
        server.start()  # the same data folder: what was written before the death is kept
        partial = O1Collection.open(open_client(host="127.0.0.1", port=server.port), "faults").count()
        assert 0 < partial < N_DOCS
        final = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        assert final.returncode == 0, final.stdout + final.stderr
        check_exact(open_client(host="127.0.0.1", port=server.port), None)
    finally:
        server.kill()
