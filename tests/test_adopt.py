"""``o1rag adopt``: searching, with thinking and BM25, a Chroma collection that another tool built with the
same encoder; nothing is adopted unless a sample of its vectors is what the encoder gives."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from o1_rag.cli import app
from o1_rag.embedder import O1Embedder
from o1_rag.errors import FingerprintMismatchError, StoreError
from o1_rag.indexing import adopt_collection
from o1_rag.lexical import lexical_index
from o1_rag.search import search
from o1_rag.store import O1Collection, open_client
from o1_rag.testing import build_tiny_encoder

TEXTS = [
    "Aspirin lowers the risk of a second heart attack.",
    "Coffee late in the day shortens sleep.",
    "Insulin pumps keep blood sugar steady at night.",
    "Statins lower cholesterol in older adults.",
    "Vitamin D supplements and bone density.",
    "Brisk walking improves heart health.",
]


@pytest.fixture(scope="module")
def encoder_embedder(tiny_encoder_dir: Path) -> O1Embedder:
    return O1Embedder.from_pretrained(
        str(tiny_encoder_dir), encoder=str(tiny_encoder_dir), thinker=False, cache=False, precision="float32"
    )


def foreign(db: Path, vectors: np.ndarray, texts: list[str] | None = TEXTS, **options) -> Any:
    """A collection as plain chromadb makes it (Chroma's default l2 space, uuid-like ids, own metadata)."""
    client = open_client(db)
    col = client.create_collection("notes", embedding_function=None, **options)
    col.add(
        ids=[f"id-{i:03d}" for i in range(len(vectors))],
        embeddings=vectors,
        documents=texts,
        metadatas=[{"source": f"note{i}.txt"} for i in range(len(vectors))],
    )
    return client


def test_adopt_checks_the_vectors_then_search_thinks_and_fuses_bm25(
    tmp_path: Path, encoder_embedder: O1Embedder
) -> None:
    client = foreign(tmp_path / "db", encoder_embedder.embed_documents(TEXTS), metadata={"owner": "me"})
    with pytest.raises(FingerprintMismatchError, match="not made by o1rag .* `o1rag adopt notes --encoder"):
        O1Collection.open(client, "notes", encoder_embedder.fingerprint)  # before: the way is named
    col = O1Collection.open(client, "notes")
    report = adopt_collection(col, encoder_embedder, sample=4)
    assert report.count == 6 and report.sampled == 4 and report.least_cosine > 0.9999 and not report.already
    reopened = O1Collection.open(open_client(tmp_path / "db"), "notes", encoder_embedder.fingerprint)
    assert reopened.collection.metadata["owner"] == "me"  # the user's metadata is kept
    lexical = lexical_index(reopened)  # built from the stored texts
    [result] = search(encoder_embedder, reopened, ["insulin at night"], k=3, think="never", lexical=lexical)
    [matched] = [hit for hit in result.hits if hit.lexical_score]  # the tiny encoder is random; BM25 is not
    assert matched.id == "id-002" and matched.metadata["source"] == "note2.txt"
    # the other tool replaces a note in place (same id, same count): nothing tells o1-rag ...
    text = "Gliders soar on thermals."
    vector = encoder_embedder.embed_documents([text]).tolist()
    client.get_collection("notes", embedding_function=None).update(
        ids=["id-002"], documents=[text], embeddings=vector
    )
    assert lexical_index(reopened).search(["gliders"], 1)[0].ids == []
    # ... until it is adopted again, which has every BM25 side read the stored texts again
    assert adopt_collection(reopened, encoder_embedder).already
    assert lexical_index(reopened).search(["gliders"], 1)[0].ids == ["id-002"]


def test_vectors_of_another_encoder_are_refused_and_nothing_is_recorded(
    tmp_path: Path, encoder_embedder: O1Embedder
) -> None:
    other_dir = build_tiny_encoder(tmp_path / "other", seed=7)
    other = O1Embedder.from_pretrained(str(other_dir), encoder=str(other_dir), thinker=False, cache=False)
    client = foreign(tmp_path / "db", other.embed_documents(TEXTS))
    col = O1Collection.open(client, "notes")
    with pytest.raises(FingerprintMismatchError, match="least cosine between a stored vector"):
        adopt_collection(col, encoder_embedder)
    assert O1Collection.open(open_client(tmp_path / "db"), "notes").fingerprint is None


def test_collections_that_cannot_be_adopted(tmp_path: Path, encoder_embedder: O1Embedder) -> None:
    vectors = encoder_embedder.embed_documents(TEXTS)
    without_texts = O1Collection.open(foreign(tmp_path / "a", vectors, texts=None), "notes")
    with pytest.raises(StoreError, match="stores no text"):
        adopt_collection(without_texts, encoder_embedder)
    wider = O1Collection.open(foreign(tmp_path / "b", np.hstack([vectors, vectors])), "notes")
    with pytest.raises(StoreError, match="dimensional vectors"):
        adopt_collection(wider, encoder_embedder)
    scaled = O1Collection.open(foreign(tmp_path / "c", vectors * 3.0), "notes")
    with pytest.raises(StoreError, match="not unit length"):
        adopt_collection(scaled, encoder_embedder)
    cosine = foreign(tmp_path / "d", vectors * 3.0, configuration={"hnsw": {"space": "cosine"}})
    assert adopt_collection(O1Collection.open(cosine, "notes"), encoder_embedder).least_cosine > 0.9999
    empty = open_client(tmp_path / "e")
    empty.create_collection("empty-one", embedding_function=None)
    with pytest.raises(StoreError, match="is empty"):
        adopt_collection(O1Collection.open(empty, "empty-one"), encoder_embedder)
    o1made = O1Collection.create_or_open(open_client(tmp_path / "f"), "made", "fp-other", vectors.shape[1])
    o1made.upsert(["x1"], vectors[:1], TEXTS[:1], [{"title": ""}])
    with pytest.raises(FingerprintMismatchError, match="fp-other"):
        adopt_collection(o1made, encoder_embedder)


def test_adopt_command(
    tmp_path: Path, tiny_encoder_dir: Path, tiny_model_dir: Path, encoder_embedder: O1Embedder
) -> None:
    foreign(tmp_path / "db", encoder_embedder.embed_documents(TEXTS))
    runner = CliRunner()
    common = [
        "--db",
        str(tmp_path / "db"),
        "--model",
        str(tiny_encoder_dir),
        "--encoder",
        str(tiny_encoder_dir),
    ]
    adopted = runner.invoke(
        app, ["adopt", "notes", *common, "--precision", "float32"], env={"COLUMNS": "300"}
    )
    assert adopted.exit_code == 0, adopted.output
    assert "6 documents" in adopted.output and "6 sampled vectors agree" in adopted.output
    query = ["search", "coffee and sleep", "-c", "notes", "--json", "-k", "3"]
    thinker = [
        "--model",
        str(tiny_model_dir),
        "--encoder",
        str(tiny_encoder_dir),
        "--db",
        str(tmp_path / "db"),
    ]
    found = runner.invoke(app, [*query, *thinker, "--think", "always"])
    assert found.exit_code == 0, found.output
    payload = json.loads(found.output)
    assert [h["id"] for h in payload["hits"] if h["lexical_score"]] == ["id-001"] and payload["thoughts"]
    # an encoder named as the thinker (--model) is a one-line error, not a traceback
    encoder_thinks = runner.invoke(app, [*query, *common, "--think", "always"], env={"COLUMNS": "300"})
    assert encoder_thinks.exit_code == 1 and "cannot write thoughts" in encoder_thinks.output
    assert "Traceback" not in encoder_thinks.output
    missing = runner.invoke(app, ["adopt", "nothing-here", *common])
    assert missing.exit_code == 1 and missing.output.startswith("error: collection 'nothing-here' does not")
    assert "Traceback" not in missing.output
