"""Long documents embedded whole, as overlapping windows (``o1_rag.encoders.windows``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from o1_rag.embedder import O1Embedder
from o1_rag.encoders import SentenceTransformerEncoder
from o1_rag.encoders.windows import MAX_WINDOWS, WINDOW_OVERLAP, split_windows, window_size, window_step
from o1_rag.errors import FingerprintMismatchError

WORDS = [
    "aspirin",
    "lowers",
    "the",
    "risk",
    "of",
    "clots",
    "in",
    "patients",
    "with",
    "heart",
    "disease",
    "while",
    "sleep",
    "restores",
    "memory",
]


def _find(tokens: list[str], run: list[str]) -> int:
    return next(i for i in range(len(tokens)) if tokens[i : i + len(run)] == run)


def _text(n_words: int, offset: int = 0) -> str:
    return " ".join(WORDS[(i + offset) % len(WORDS)] + str(i) for i in range(n_words))


@pytest.fixture(scope="module")
def encoders(tiny_encoder_dir: Path) -> tuple[SentenceTransformerEncoder, SentenceTransformerEncoder]:
    def load(mode: str) -> SentenceTransformerEncoder:
        return SentenceTransformerEncoder(
            str(tiny_encoder_dir), device="cpu", precision="float32", long_documents=mode
        )

    return load("truncate"), load("windows")


def test_windows_cover_the_text_in_overlapping_token_windows(encoders: Any) -> None:
    truncate, _ = encoders
    tokenizer = truncate.model.tokenizer
    size = window_size(tokenizer, truncate.model.max_seq_length)
    assert size == truncate.model.max_seq_length - 2  # [CLS] and [SEP]
    short = _text(5)
    assert split_windows(short, tokenizer, size) == [short]
    text = _text(120)
    tokens = tokenizer.tokenize(text)
    assert len(tokens) > 2 * size
    windows = split_windows(text, tokenizer, size)
    assert windows[0] == text  # the encoder truncates it to its first window
    later = [tokenizer.tokenize(w) for w in windows[1:]]
    starts = [_find(tokens, w) for w in later]  # each window is a run of the text's own tokens
    assert all(len(w) <= size for w in later) and starts == sorted(starts)
    step = window_step(size)
    assert step == size - size // 4
    assert step <= starts[0] < step + 5  # the first window starts at a word after `step` tokens
    for (a, wa), b in zip(zip(starts, later, strict=True), starts[1:], strict=False):
        assert b < a + len(wa)  # consecutive windows overlap
    assert starts[-1] + len(later[-1]) == len(tokens)  # the last window reaches the end of the text
    huge = split_windows(_text(3000), tokenizer, size)
    assert len(huge) == MAX_WINDOWS


def test_a_long_document_is_the_first_window_plus_the_mean_of_all(encoders: Any) -> None:
    truncate, windows = encoders
    short, long_text = _text(6), _text(150, offset=3)
    plain = truncate.embed_documents([short, long_text])
    seen = []
    whole = windows.embed_documents([short, long_text], batch_size=1, progress=seen.append)
    assert seen == [1, 1]  # progress counts documents, not windows
    np.testing.assert_allclose(whole[0], plain[0], atol=1e-6)  # a document that fits is unchanged
    parts = truncate.embed_documents(
        split_windows(long_text, truncate.model.tokenizer, truncate.model.max_seq_length - 2)
    )
    expected = parts[0] + parts.mean(axis=0)
    np.testing.assert_allclose(whole[1], expected / np.linalg.norm(expected), atol=1e-5)
    assert np.abs(whole[1] - plain[1]).max() > 1e-3  # the rest of the text moved it
    alone = windows.embed_documents([long_text])
    np.testing.assert_allclose(alone[0], whole[1], atol=1e-5)  # batching does not change a document
    queries = windows.embed_queries(["aspirin", long_text])  # queries are not windowed
    np.testing.assert_allclose(queries, truncate.embed_queries(["aspirin", long_text]), atol=1e-6)


def test_the_mode_is_part_of_the_fingerprint_only_when_it_windows(encoders: Any) -> None:
    truncate, windows = encoders
    assert "long_documents" not in truncate.fingerprint_fields  # collections made before stay valid
    assert windows.fingerprint_fields["long_documents"] == {"windows": MAX_WINDOWS, "overlap": WINDOW_OVERLAP}
    assert O1Embedder(truncate).fingerprint != O1Embedder(windows).fingerprint
    assert "long documents as windows" in windows.describe()


def test_loading_picks_the_models_mode_and_refuses_what_cannot_work(
    tiny_encoder_dir: Path, tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from o1_rag import models

    alias = models.ComposedModel(
        str(tiny_model_dir), str(tiny_encoder_dir), folder=str(tmp_path), long_documents="windows"
    )
    monkeypatch.setitem(models.COMPOSED_MODELS, "tiny-windows", alias)

    def load(**kwargs: Any) -> O1Embedder:
        return O1Embedder.from_pretrained(thinker=False, device="cpu", cache=False, **kwargs)

    assert load(model="tiny-windows").encoder.long_documents == "windows"
    assert load(model="tiny-windows", long_documents="truncate").encoder.long_documents == "truncate"
    named = load(model="tiny-windows", encoder=str(tiny_encoder_dir))
    assert named.encoder.long_documents == "truncate"  # a named encoder embeds as other tools do
    with pytest.raises(ValueError, match="long_documents must be one of truncate, windows"):
        load(model="tiny-windows", long_documents="halves")
    with pytest.raises(ValueError, match="joint model, which truncates"):
        load(model=str(tiny_model_dir), long_documents="windows")


def test_a_collection_is_searched_with_the_mode_that_built_it(
    tmp_path: Path, tiny_corpus: Path, tiny_encoder_dir: Path
) -> None:
    from typer.testing import CliRunner

    from o1_rag.cli import app

    def run(*args: Any) -> Any:
        return CliRunner().invoke(app, [str(a) for a in args])

    db = tmp_path / "db"
    made = run(
        "index",
        tiny_corpus,
        "-c",
        "win",
        "--db",
        db,
        "--encoder",
        tiny_encoder_dir,
        "--long-documents",
        "windows",
    )
    assert made.exit_code == 0, made.output
    common = ("search", "aspirin", "-c", "win", "--db", db, "--encoder", tiny_encoder_dir, "--no-think")
    found = run(*common, "--long-documents", "windows")
    assert found.exit_code == 0, found.output
    refused = run(*common)  # a named encoder truncates by default: another embedding space
    assert refused.exit_code == 1 and "was indexed by embedder" in refused.output
    assert "Traceback" not in refused.output
    bad = run(*common, "--long-documents", "halves")
    assert bad.exit_code == 2 and "--long-documents" in bad.output


def test_windows_need_a_fast_tokenizer(tiny_encoder_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(tiny_encoder_dir), device="cpu")

    class Slow:
        is_fast = False

    monkeypatch.setattr(type(model), "tokenizer", property(lambda self: Slow()))
    with pytest.raises(ValueError, match="needs a fast tokenizer"):
        SentenceTransformerEncoder(str(tiny_encoder_dir), model=model, long_documents="windows")
    assert SentenceTransformerEncoder(str(tiny_encoder_dir), model=model).long_documents == "truncate"


def test_the_shipped_default_embeds_long_documents_whole() -> None:
    from o1_rag.models import COMPOSED_MODELS, DEFAULT_MODEL

    assert COMPOSED_MODELS[DEFAULT_MODEL].long_documents == "windows"


def test_a_windowed_index_refuses_a_truncating_embedder(encoders: Any, tmp_path: Path) -> None:
    from o1_rag.data import Document
    from o1_rag.indexing import index_documents
    from o1_rag.search import search
    from o1_rag.store import O1Collection, open_client

    truncate, windows = encoders
    emb = O1Embedder(windows)
    collection = O1Collection.create_or_open(open_client(tmp_path / "db"), "docs", emb.fingerprint, emb.dim)
    index_documents(emb, collection, [Document("long", _text(150), ""), Document("short", _text(4), "")])
    [hits] = search(emb, collection, ["aspirin"], k=2, think="never")
    assert {h.id for h in hits.hits} == {"long", "short"}
    with pytest.raises(FingerprintMismatchError):
        search(O1Embedder(truncate), collection, ["aspirin"], k=2, think="never")


def test_the_long_documents_script_compares_the_forms(
    tiny_encoder_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    import json
    import runpy
    import sys

    folder = tmp_path / "longset"
    folder.mkdir()
    with open(folder / "corpus.jsonl", "w") as handle:
        for i in range(6):
            words = 100 if i % 2 else 5  # half the documents run past the tiny encoder's 62 tokens
            handle.write(json.dumps({"_id": f"d{i}", "title": "", "text": _text(words, offset=i)}) + "\n")
    with open(folder / "queries.jsonl", "w") as handle:
        for i in range(3):
            handle.write(json.dumps({"_id": f"q{i}", "text": WORDS[i]}) + "\n")
    (folder / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\nq0\td1\t1\nq1\td2\t1\nq2\td3\t1\n")
    script = Path(__file__).resolve().parents[1] / "evals" / "long_documents.py"
    monkeypatch.setattr(sys, "argv", [str(script), str(folder), "--encoder", str(tiny_encoder_dir)])
    with pytest.raises(SystemExit) as done:
        runpy.run_path(str(script), run_name="__main__")
    assert done.value.code == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| longset")]
    assert len(rows) == 1
    cells = [c.strip() for c in rows[0].strip("|").split("|")]
    assert cells[0] == "longset (3 queries)" and cells[1] == "50%"
    assert float(cells[3]) > 1  # the long documents have several windows
    assert len(cells) == 8 and all(" / " in c for c in cells[4:]) and "(p = " in cells[5]


def test_the_integrations_settings_carry_the_mode(tiny_encoder_dir: Path, tiny_model_dir: Path) -> None:
    from pydantic import ValidationError

    from o1_rag.settings import O1Settings

    settings = O1Settings(encoder=str(tiny_encoder_dir), device="cpu", long_documents="windows")
    emb = settings.load_embedder(str(tiny_model_dir), thinker=False, cache=False)
    assert emb.encoder.long_documents == "windows"
    plain = O1Settings(encoder=str(tiny_encoder_dir), device="cpu").load_embedder(
        str(tiny_model_dir), thinker=False, cache=False
    )
    assert plain.encoder.long_documents == "truncate" and plain.fingerprint != emb.fingerprint
    with pytest.raises(ValidationError, match="long_documents"):
        O1Settings(long_documents="halves")
