"""Every user mistake the hardening work found, as one parametrised suite.

Each case runs the CLI against a workspace holding an indexed collection and a file of the user's, and
asserts: exit status 1 and one `error:` line (or, for an option out of its range, the parser's usage error
with status 2) (naming what was wrong), no traceback, the collection unchanged
(same documents, same fingerprint) and the user's files untouched. Killed processes and a Chroma server
that dies mid-run are in ``test_fault_injection.py``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from o1_rag.cli import app
from o1_rag.store import O1Collection, open_client

Case = Callable[[dict[str, Path]], list[str]]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bad-input")
    data = root / "data"
    data.mkdir()
    with open(data / "corpus.jsonl", "w") as handle:
        for i in range(12):
            handle.write(json.dumps({"_id": f"d{i}", "title": "t", "text": f"text number {i}"}) + "\n")
    (data / "queries.jsonl").write_text(json.dumps({"_id": "q1", "text": "text number 3"}) + "\n")
    (data / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td3\t1\n")
    mine = root / "mine"
    mine.mkdir()
    (mine / "thesis.txt").write_text("keep me")
    files = {"root": root, "data": data, "db": root / "db", "model": tiny_model_dir, "mine": mine}
    result = _invoke(
        ["index", str(data), "-c", "kept", "--db", str(files["db"]), "--model", str(tiny_model_dir)]
    )
    assert result.exit_code == 0, result.output
    return files


def _invoke(args: list[str]):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, args, env={"COLUMNS": "200"})


def _write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def _bad_corpus(w: dict[str, Path], name: str, content: str | bytes) -> str:
    folder = w["root"] / f"corpus-{name}"
    _write(folder / "corpus.jsonl", content)
    return str(folder)


def _adapter(w: dict[str, Path], name: str, files: dict[str, str | bytes]) -> str:
    folder = w["root"] / f"adapter-{name}"
    for file, content in files.items():
        _write(folder / file, content)
    return str(folder)


def _zero_model(w: dict[str, Path]) -> str:
    """The tiny model with an ``o1_config.json`` that would give every document the same vector."""
    import shutil

    folder = w["root"] / "zero-model"
    if not folder.exists():
        shutil.copytree(w["model"], folder)
        _write(folder / "o1_config.json", '{"max_document_tokens": 0}')
    return str(folder)


LORA = json.dumps({"peft_type": "LORA", "base_model_name_or_path": "x", "r": 2, "target_modules": ["q_proj"]})

CASES: dict[str, tuple[Case, str]] = {
    "eval output is a user's folder": (
        lambda w: ["eval", "ir", str(w["data"]), "--systems", "bm25", "-o", str(w["mine"])],
        "not an earlier report",
    ),
    "eval output is the current folder": (
        lambda w: ["eval", "ir", str(w["data"]), "--systems", "bm25", "-o", "."],
        "-o",
    ),
    "unknown eval system": (lambda w: ["eval", "ir", str(w["data"]), "--systems", "bm42"], "unknown system"),
    "markup in a collection name": (
        lambda w: ["search", "q", "-c", "[/x]", "--db", str(w["db"]), "--model", str(w["model"])],
        "invalid collection name",
    ),
    "markup in an adapter path": (
        lambda w: [
            "index",
            str(w["data"]),
            "-c",
            "kept",
            "--db",
            str(w["db"]),
            "--model",
            str(w["model"]),
            "--adapter",
            str(w["root"] / "[/x]"),
        ],
        "[/x]",
    ),
    "a document length of zero tokens": (
        lambda w: [
            "index",
            str(w["data"]),
            "-c",
            "kept",
            "--db",
            str(w["db"]),
            "--model",
            _zero_model(w),
        ],
        "o1_config.json",
    ),
    "pickled adapter weights": (
        lambda w: [
            "index",
            str(w["data"]),
            "-c",
            "kept",
            "--db",
            str(w["db"]),
            "--model",
            str(w["model"]),
            "--adapter",
            _adapter(w, "pickle", {"adapter_config.json": LORA, "adapter_model.bin": b"\x80\x04pickle"}),
        ],
        "adapter_model.bin",
    ),
    "a lone surrogate in a document": (
        lambda w: [
            "index",
            _bad_corpus(w, "surrogate", '{"_id": "a", "text": "ok"}\n{"_id": "b", "text": "\\ud800"}\n'),
            "-c",
            "kept",
            "--db",
            str(w["db"]),
            "--model",
            str(w["model"]),
        ],
        "corpus.jsonl:2",
    ),
    "a byte that is not UTF-8": (
        lambda w: [
            "index",
            _bad_corpus(w, "latin1", b'{"_id": "a", "text": "caf\xe9"}\n'),
            "-c",
            "kept",
            "--db",
            str(w["db"]),
            "--model",
            str(w["model"]),
        ],
        "corpus.jsonl:1",
    ),
    "a NaN document id": (
        lambda w: [
            "index",
            _bad_corpus(w, "nan", '{"_id": NaN, "text": "x"}\n'),
            "-c",
            "kept",
            "--db",
            str(w["db"]),
            "--model",
            str(w["model"]),
        ],
        "corpus.jsonl:1",
    ),
    "--db below a file": (
        lambda w: [
            "index",
            str(w["data"]),
            "-c",
            "kept",
            "--db",
            str(w["mine"] / "thesis.txt" / "db"),
            "--model",
            str(w["model"]),
        ],
        "thesis.txt",
    ),
    "a misspelt database folder": (
        lambda w: ["search", "q", "-c", "kept", "--db", str(w["root"] / "dbb"), "--model", str(w["model"])],
        "no Chroma database at",
    ),
    "a misspelt model alias": (
        lambda w: ["search", "q", "-c", "kept", "--db", str(w["db"]), "--model", "o1-minlm"],
        "did you mean 'o1-minilm'",
    ),
    "an unknown hub id offline": (
        lambda w: ["search", "q", "-c", "kept", "--db", str(w["db"]), "--model", "nobody/nothing-xyz"],
        "cannot be reached",
    ),
    "an unknown think setting": (
        lambda w: [
            "search",
            "q",
            "-c",
            "kept",
            "--db",
            str(w["db"]),
            "--model",
            str(w["model"]),
            "--think",
            "sometimes",
        ],
        "--think",
    ),
    "negative hard negatives": (
        lambda w: ["synth", str(w["data"]), "-o", str(w["root"] / "out.jsonl"), "--negatives", "-1"],
        "--negatives",
    ),
    "a recipe value of the wrong type": (
        lambda w: ["train", "--config", str(_write(w["root"] / "bad.toml", '[lora]\nr = "eight"\n'))],
        "r",
    ),
    "an unknown recipe key": (
        lambda w: [
            "train",
            "--config",
            str(_write(w["root"] / "typo.toml", "[training]\nlearning_rat = 0.1\n")),
        ],
        "learning_rat' in [training]",
    ),
    "a gate file where a user's file is": (
        lambda w: [
            "train-gate",
            str(w["data"]),
            "-o",
            str(w["mine"] / "thesis.txt"),
            "--model",
            str(w["model"]),
        ],
        "o1_gate.json",
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_one_error_line_and_changes_nothing(name: str, workspace: dict[str, Path]) -> None:
    build, fragment = CASES[name]
    client = open_client(workspace["db"])
    before = O1Collection.open(client, "kept")
    ids, fingerprint = before.stored_ids(), before.fingerprint
    result = _invoke(build(workspace))
    text = result.output.strip()
    if result.exit_code == 2:  # an option's range, checked by the command-line parser: a usage error
        assert "Invalid value" in text and fragment in text, text
    else:
        assert result.exit_code == 1, text
        assert text.startswith("error:") and fragment in text, text
    assert "Traceback" not in text and len(text.splitlines()) <= (6 if result.exit_code == 2 else 3)
    after = O1Collection.open(open_client(workspace["db"]), "kept")
    assert after.stored_ids() == ids and after.fingerprint == fingerprint
    assert sorted(p.name for p in workspace["mine"].iterdir()) == ["thesis.txt"]
    assert (workspace["mine"] / "thesis.txt").read_text() == "keep me"
