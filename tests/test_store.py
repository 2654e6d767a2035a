import os
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from o1_rag.data import load_corpus
from o1_rag.errors import FingerprintMismatchError, StoreError
from o1_rag.indexing import index_documents
from o1_rag.store import O1Collection, open_client


class CrashAfter:
    """Wraps an embedder and raises like a kill after ``batches`` successful batches."""

    def __init__(self, inner, batches: int) -> None:
        self.inner, self.left = inner, batches
        self.fingerprint, self.dim = inner.fingerprint, inner.dim

    def embed_documents(self, texts):
        if self.left == 0:
            raise KeyboardInterrupt
        self.left -= 1
        return self.inner.embed_documents(texts)


def test_create_open_and_fingerprint_mismatch(tmp_path: Path) -> None:
    client = open_client(tmp_path / "db")
    made = O1Collection.create_or_open(client, "demo", "fp-aaaa", 8, "model-a")
    assert made.fingerprint == "fp-aaaa" and made.dim == 8
    assert O1Collection.open(client, "demo", "fp-aaaa").count() == 0
    with pytest.raises(FingerprintMismatchError) as info:
        O1Collection.open(client, "demo", "fp-bbbb")
    assert "fp-aaaa" in str(info.value) and "fp-bbbb" in str(info.value) and "model-a" in str(info.value)
    with pytest.raises(FingerprintMismatchError):
        O1Collection.create_or_open(client, "demo", "fp-bbbb", 8)


def test_missing_collection_and_bad_name(tmp_path: Path) -> None:
    client = open_client(tmp_path / "db")
    with pytest.raises(StoreError, match="collection 'nothere' does not exist"):
        O1Collection.open(client, "nothere")
    with pytest.raises(StoreError, match="invalid collection name"):
        O1Collection.open(client, "x")


def test_search_scores_are_cosine(tmp_path: Path) -> None:
    client = open_client(tmp_path / "db")
    col = O1Collection.create_or_open(client, "vectors", "fp", 3)
    vecs = np.array([[1, 0, 0], [0, 1, 0], [0.6, 0.8, 0]], dtype=np.float32)
    col.upsert(["a", "b", "c"], vecs, ["A", "B", "C"], [{"title": ""}] * 3)
    [hits] = col.search(np.array([[1, 0, 0]], dtype=np.float32), k=2)
    assert [h.id for h in hits] == ["a", "c"]
    assert hits[0].score == pytest.approx(1.0, abs=1e-5) and hits[1].score == pytest.approx(0.6, abs=1e-5)
    with pytest.raises(ValueError, match="k must be > 0"):
        col.search(vecs, k=0)
    with pytest.raises(ValueError, match="dimension"):
        col.upsert(["d"], np.ones((1, 4), dtype=np.float32), ["D"], [{}])


def test_resume_after_crash_mid_index(tmp_path: Path, tiny_corpus: Path, tiny_embedder_session) -> None:
    docs = load_corpus(tiny_corpus)
    client = open_client(tmp_path / "db")
    emb = tiny_embedder_session
    col = O1Collection.create_or_open(client, "resume", emb.fingerprint, emb.dim)
    with pytest.raises(KeyboardInterrupt):
        index_documents(CrashAfter(emb, batches=2), col, docs, batch_size=8)
    assert col.count() == 16
    report = index_documents(emb, col, docs, batch_size=8)
    assert (report.skipped, report.added) == (16, 24)
    assert col.count() == 40 and col.stored_ids() == {d.id for d in docs}
    again = index_documents(emb, col, docs, batch_size=8)
    assert again.added == 0 and col.count() == 40


def test_killed_index_process_resumes_exactly(tmp_path: Path, tiny_model_dir: Path) -> None:
    """SIGKILL a real `o1rag index` mid-run; the re-run ends with every document exactly once."""
    import json

    data = tmp_path / "big"
    data.mkdir()
    n = 3000
    with open(data / "corpus.jsonl", "w") as handle:
        for i in range(n):
            handle.write(
                json.dumps({"_id": f"doc{i}", "text": f"document number {i} " * (1 + i % 30)}) + "\n"
            )
    db = tmp_path / "db"
    cmd = [
        sys.executable,
        "-m",
        "o1_rag.cli",
        "index",
        str(data),
        "-c",
        "killed",
        "--db",
        str(db),
        "--model",
        str(tiny_model_dir),
        "--device",
        "cpu",
        "--batch-size",
        "16",
        "-v",
    ]
    env = {**os.environ, "COLUMNS": "200"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:  # wait until documents are being written, then kill without warning
        if "stored 160/" in line:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait(60)
    client = open_client(db)
    partial = O1Collection.open(client, "killed").count()
    del client
    assert 0 < partial < n, f"kill landed at {partial} of {n}: the test did not interrupt indexing"
    rerun = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    client = open_client(db)
    col = O1Collection.open(client, "killed")
    assert col.count() == n
    assert col.stored_ids() == {f"doc{i}" for i in range(n)}


class Counting:
    """Wraps an embedder and records every text it embeds."""

    def __init__(self, inner) -> None:
        self.inner, self.seen = inner, []
        self.fingerprint, self.dim = inner.fingerprint, inner.dim

    def embed_documents(self, texts):
        self.seen.extend(texts)
        return self.inner.embed_documents(texts)


def _indexed(tmp_path: Path, corpus: Path, emb) -> tuple[list, O1Collection]:
    docs = load_corpus(corpus)
    col = O1Collection.create_or_open(open_client(tmp_path / "db"), "changes", emb.fingerprint, emb.dim)
    index_documents(emb, col, docs, batch_size=8)
    return docs, col


def test_reindex_embeds_changed_texts_again_and_prunes_on_request(
    tmp_path: Path, tiny_corpus: Path, tiny_embedder_session
) -> None:
    docs, col = _indexed(tmp_path, tiny_corpus, tiny_embedder_session)
    emb = tiny_embedder_session
    assert col.revision == 0
    before = col.vectors(["d3"])["d3"]
    edited = [
        replace(d, text="Vitamin D and bone density in the elderly.") if d.id == "d3" else d for d in docs
    ]
    counting = Counting(emb)
    report = index_documents(counting, col, edited[:-2], batch_size=8)  # d3 changed; the last two left out
    assert (report.added, report.updated, report.skipped, report.removed) == (0, 1, 37, 0)
    assert counting.seen == [edited[3].full_text()]  # only the changed document is embedded again
    stored = col.collection.get(ids=["d3"], include=["documents", "embeddings"])
    assert stored["documents"] == [edited[3].full_text()]
    assert not np.allclose(stored["embeddings"][0], before)
    np.testing.assert_allclose(
        stored["embeddings"][0], emb.embed_documents([edited[3].full_text()])[0], atol=1e-5
    )
    assert col.revision == 1 and col.count() == 40  # without prune nothing is removed
    pruned = index_documents(emb, col, edited[:-2], batch_size=8, prune=True)
    assert (pruned.added, pruned.updated, pruned.removed) == (0, 0, 2)
    assert col.stored_ids() == {d.id for d in docs[:-2]} and col.revision == 2
    assert O1Collection.open(open_client(tmp_path / "db"), "changes").revision == 2  # recorded, not cached
    unchanged = index_documents(Counting(emb), col, edited[:-2], batch_size=8, prune=True)
    assert (unchanged.updated, unchanged.removed, unchanged.skipped) == (0, 0, 38) and col.revision == 2


def test_a_run_killed_while_updating_leaves_the_revision_raised(
    tmp_path: Path, tiny_corpus: Path, tiny_embedder_session
) -> None:
    docs, col = _indexed(tmp_path, tiny_corpus, tiny_embedder_session)
    emb = tiny_embedder_session
    edited = [replace(d, text=d.text + " (revised)") for d in docs]
    with pytest.raises(KeyboardInterrupt):
        index_documents(CrashAfter(emb, batches=1), col, edited, batch_size=8)
    assert col.revision == 1  # raised before the first replaced text was written
    report = index_documents(emb, col, edited, batch_size=8)
    assert (report.updated, report.skipped) == (32, 8) and col.revision == 2
    got = col.collection.get(ids=[d.id for d in edited], include=["documents"])
    assert sorted(got["documents"]) == sorted(d.full_text() for d in edited)


def test_pruning_with_no_documents_is_refused(
    tmp_path: Path, tiny_corpus: Path, tiny_embedder_session
) -> None:
    _, col = _indexed(tmp_path, tiny_corpus, tiny_embedder_session)
    with pytest.raises(ValueError, match="pruning would empty the collection"):
        index_documents(tiny_embedder_session, col, [], prune=True)
    assert col.count() == 40 and col.revision == 0


def test_prune_with_a_limit_is_refused() -> None:
    from o1_rag.indexing import check_prune

    check_prune(True, None)
    check_prune(False, 5)
    with pytest.raises(ValueError, match="cannot be used with --limit"):
        check_prune(True, 5)


def test_indexing_names_are_still_importable_from_the_store_module() -> None:
    import o1_rag.indexing
    import o1_rag.store

    assert o1_rag.store.index_documents is o1_rag.indexing.index_documents
    assert o1_rag.store.IndexReport is o1_rag.indexing.IndexReport
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        o1_rag.store.nothing  # noqa: B018
