"""A real Chroma server (`chroma run` on loopback) through --chroma-host and --chroma-port."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from o1_rag.cli import app
from o1_rag.errors import StoreError
from o1_rag.models import o1rag_home
from o1_rag.store import open_client
from o1_rag.testing import free_port


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
        open_client(host="127.0.0.1", port=free_port())
