"""A real Chroma server (`chroma run` on loopback) through --chroma-host and --chroma-port."""

import json
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from o1_rag.cli import app
from o1_rag.errors import StoreError
from o1_rag.models import o1rag_home
from o1_rag.store import open_client

CHROMA = shutil.which("chroma") or str(Path(sys.executable).parent / "chroma")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def chroma_server(tmp_path: Path):
    if not Path(CHROMA).exists():
        pytest.skip("the chroma server binary is not installed")
    port = _free_port()
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


def test_cli_against_chroma_server(chroma_server: int, tiny_corpus: Path, tiny_model_dir: Path) -> None:
    runner = CliRunner()
    server = ["--chroma-host", "127.0.0.1", "--chroma-port", str(chroma_server)]
    result = runner.invoke(
        app, ["index", str(tiny_corpus), "-c", "served", "--model", str(tiny_model_dir), *server]
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        app,
        [
            "search",
            "aspirin",
            "-c",
            "served",
            "--model",
            str(tiny_model_dir),
            "--no-think",
            "--json",
            *server,
        ],
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["hybrid"] and any(hit["lexical_score"] for hit in payload["hits"])  # BM25 side works too
    served = open_client(host="127.0.0.1", port=chroma_server).get_collection("served")
    assert served.count() == 40
    # The server's BM25 index lives under $O1RAG_HOME, keyed by the collection's id.
    assert (o1rag_home() / "lexical" / str(served.id) / "o1rag_lexical.json").is_file()


def test_unreachable_server_is_a_clear_error() -> None:
    with pytest.raises(StoreError, match="cannot reach Chroma server"):
        open_client(host="127.0.0.1", port=_free_port())
