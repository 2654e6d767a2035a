"""The real bundled SmolLM2-135M-Instruct on a slice of scifact (slow: ~1 minute on 2 CPU cores)."""

import os
from pathlib import Path

import numpy as np
import pytest

from o1_rag.data import load_corpus, load_qrels, load_queries
from o1_rag.embedder import O1Embedder, ThinkParams
from o1_rag.indexing import index_documents
from o1_rag.models import JOINT_MODEL, o1rag_home
from o1_rag.search import search
from o1_rag.store import O1Collection, open_client
from o1_rag.testing import assert_same_vectors

SCIFACT = Path(__file__).resolve().parents[2] / "shared" / "data" / "scifact"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not SCIFACT.is_dir(), reason=f"{SCIFACT} is not present"),
]


@pytest.fixture(scope="module")
def bundled(tmp_path_factory: pytest.TempPathFactory) -> O1Embedder:
    # The expansion is cached under the user's real cache root (done once per machine); everything the
    # test writes goes to a temporary folder.
    home = os.environ.get("O1RAG_TEST_MODEL_HOME") or str(Path.home() / ".cache" / "o1rag")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("O1RAG_HOME", home)
        assert o1rag_home().is_absolute()
        cache = tmp_path_factory.mktemp("cache") / "thoughts.sqlite"
        return O1Embedder.from_pretrained("smollm2-135m-instruct", device="cpu", cache=cache)


def test_bundled_model_indexes_and_searches_scifact_slice(bundled: O1Embedder, tmp_path: Path) -> None:
    docs = load_corpus(SCIFACT)
    queries = load_queries(SCIFACT)
    qrels = load_qrels(SCIFACT)
    qid = next(q for q in qrels if q in queries)
    relevant = set(qrels[qid])
    subset = [d for d in docs if d.id in relevant] + [d for d in docs if d.id not in relevant][:20]
    assert bundled.dim == 576 and bundled.think_mode == "chat"
    client = open_client(tmp_path / "db")
    col = O1Collection.create_or_open(client, "scifact-slice", bundled.fingerprint, bundled.dim)
    report = index_documents(bundled, col, subset, batch_size=8)
    assert report.added == len(subset) == col.count()

    params = ThinkParams(num_thoughts=2, max_new_tokens=24, seed=0)
    [result] = search(bundled, col, [queries[qid]], k=5, params=params)
    assert len(result.thoughts) == 2 and all(t.strip() for t in result.thoughts)
    assert len(result.hits) == 5
    scores = [h.score for h in result.hits]
    assert scores == sorted(scores, reverse=True) and all(-1.0 <= s <= 1.0 + 1e-6 for s in scores)
    # the thoughts are cached: the same search again generates nothing
    calls = bundled.generate_calls
    [again] = search(bundled, col, [queries[qid]], k=5, params=params)
    assert bundled.generate_calls == calls and [h.id for h in again.hits] == [h.id for h in result.hits]

    # the stored document vectors are what embed_documents gives now (no drift between runs)
    stored = col.collection.get(ids=[subset[0].id], include=["embeddings"])["embeddings"][0]
    fresh = bundled.embed_documents([subset[0].full_text()])[0]
    assert_same_vectors(stored, fresh, bundled)


def test_shipped_adapter_retrieves_better_than_the_untrained_base(bundled: O1Embedder) -> None:
    """The joint ``o1-smollm2-135m`` (bundled base + shipped adapter) on 20 scifact test claims, each
    against its relevant abstracts plus 100 shared distractors: its query-only MRR@10 must beat the
    untrained base's by a wide margin (the base sits near chance here)."""
    home = os.environ.get("O1RAG_TEST_MODEL_HOME") or str(Path.home() / ".cache" / "o1rag")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("O1RAG_HOME", home)
        trained = O1Embedder.from_pretrained(JOINT_MODEL, device="cpu", cache=False)
    assert trained.think_mode == "native" and trained.query_weight == 0.5
    assert trained.fingerprint_fields["adapter"]
    docs = load_corpus(SCIFACT)
    queries = load_queries(SCIFACT)
    qrels = load_qrels(SCIFACT)
    qids = [q for q in qrels if q in queries][:20]
    relevant = {d for q in qids for d in qrels[q]}
    pool = [d for d in docs if d.id in relevant] + [d for d in docs if d.id not in relevant][:100]

    def mrr(emb: O1Embedder) -> float:
        d = emb.embed_documents([doc.full_text() for doc in pool])
        q = emb.embed_queries([queries[i] for i in qids], think=False)
        total = 0.0
        for row, qid in zip(q @ d.T, qids, strict=True):
            ranked = [pool[j].id for j in np.argsort(-row)[:10]]
            total += next((1 / (r + 1) for r, doc_id in enumerate(ranked) if doc_id in qrels[qid]), 0.0)
        return total / len(qids)

    base, tuned = mrr(bundled), mrr(trained)
    assert tuned > base + 0.2, (base, tuned)


def test_default_thinker_encoder_model(bundled: O1Embedder) -> None:
    """The default ``o1-minilm``: the shipped thinker writes, the fine-tuned MiniLM embeds; on 20 scifact
    claims against their abstracts plus 100 distractors its query-only MRR@10 beats the joint model's."""
    home = os.environ.get("O1RAG_TEST_MODEL_HOME") or str(Path.home() / ".cache" / "o1rag")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("O1RAG_HOME", home)
        default = O1Embedder.from_pretrained(device="cpu", cache=False)
        joint = O1Embedder.from_pretrained(JOINT_MODEL, device="cpu", cache=False)
    assert default.name == "o1-minilm" and default.dim == 384 and default.query_weight == 0.75
    assert "+adapter:" in default.fingerprint_fields["model"] and default.think_mode == "native"
    assert default.resolve(ThinkParams()).num_thoughts == 3
    docs, queries, qrels = load_corpus(SCIFACT), load_queries(SCIFACT), load_qrels(SCIFACT)
    qids = [q for q in qrels if q in queries][:20]
    relevant = {d for q in qids for d in qrels[q]}
    pool = [d for d in docs if d.id in relevant] + [d for d in docs if d.id not in relevant][:100]

    def mrr(emb: O1Embedder, think: bool = False) -> float:
        d = emb.embed_documents([doc.full_text() for doc in pool])
        texts = [queries[i] for i in qids]
        q = (
            emb.embed_queries(texts, params=ThinkParams(1, 16, seed=0))
            if think
            else emb.embed_queries(texts, think=False)
        )
        total = 0.0
        for row, qid in zip(q @ d.T, qids, strict=True):
            ranked = [pool[j].id for j in np.argsort(-row)[:10]]
            total += next((1 / (r + 1) for r, doc_id in enumerate(ranked) if doc_id in qrels[qid]), 0.0)
        return total / len(qids)

    assert mrr(default) > mrr(joint) + 0.1
    assert mrr(default, think=True) > 0.5  # thinking runs end to end and keeps the retrieval sound
