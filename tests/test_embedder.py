from pathlib import Path

import numpy as np
import pytest

from o1_rag.cache import ThoughtCache
from o1_rag.embedder import O1Embedder, ThinkParams

DOCS = ["Aspirin lowers the risk of heart attacks.", "Short.", "Vitamin D " * 40, "Sleep and memory."]


def test_document_embeddings_shape_norm_and_batch_invariance(tiny_embedder_session: O1Embedder) -> None:
    emb = tiny_embedder_session
    one = emb.embed_documents(DOCS, batch_size=1)
    many = emb.embed_documents(DOCS, batch_size=4)
    assert one.shape == (4, emb.dim) and one.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(one, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(one, many, atol=1e-5)  # padding never leaks into an embedding
    assert emb.embed_documents([]).shape == (0, emb.dim)


def test_query_only_embedding_equals_first_emb_of_joint_sequence(tiny_embedder_session: O1Embedder) -> None:
    emb = tiny_embedder_session
    queries = ["does aspirin help?", "vitamin d"]
    v_q_alone = emb.embed_queries(queries, think=False)
    v_q, v_t = emb.embed_query_pair(queries, ["a thought", "another, longer thought here"])
    np.testing.assert_allclose(v_q_alone, v_q, atol=1e-5)  # causal attention: the thought cannot leak back
    assert not np.allclose(v_q, v_t, atol=1e-3)


def test_several_thoughts_are_averaged(tiny_embedder_session: O1Embedder) -> None:
    emb = tiny_embedder_session
    thoughts = [["first idea", "second idea", "third"]]
    _, singles = emb.embed_query_pair(["q"] * 3, thoughts[0])
    mean = singles.mean(axis=0)
    expected = mean / np.linalg.norm(mean)
    got = emb.embed_queries(["q"], thoughts=thoughts)
    np.testing.assert_allclose(got[0], expected, atol=1e-5)
    with pytest.raises(ValueError, match="2 thought lists for 1 queries"):
        emb.embed_queries(["q"], thoughts=[["a"], ["b"]])


def test_query_weight_mixes_in_the_query_only_embedding(tiny_embedder_session: O1Embedder) -> None:
    emb = tiny_embedder_session
    thoughts = [["first idea", "second idea"], ["x"]]
    queries = ["q one", "q two"]
    pure = emb.embed_queries(queries, thoughts=thoughts)
    v_q = emb.embed_queries(queries, think=False)
    mixed = emb.embed_queries(queries, thoughts=thoughts, query_weight=0.25)
    expected = 0.75 * pure + 0.25 * v_q
    np.testing.assert_allclose(mixed, expected / np.linalg.norm(expected, axis=1, keepdims=True), atol=1e-5)
    np.testing.assert_allclose(
        emb.embed_queries(queries, thoughts=thoughts, query_weight=1.0), v_q, atol=1e-5
    )
    with pytest.raises(ValueError, match="query_weight must be in \\[0, 1\\]"):
        emb.embed_queries(queries, thoughts=thoughts, query_weight=1.5)


def test_think_is_batched_reproducible_and_shaped(tiny_embedder_session: O1Embedder) -> None:
    emb = tiny_embedder_session
    queries = ["a", "b", "c", "a"]
    calls = emb.generate_calls
    first = emb.think(queries, num_thoughts=3, max_new_tokens=5, temperature=1.0, seed=7, use_cache=False)
    assert emb.generate_calls - calls == 1  # 3 unique queries x 3 thoughts in one generate call
    assert [len(t) for t in first] == [3, 3, 3, 3] and first[0] == first[3]
    again = emb.think(queries, num_thoughts=3, max_new_tokens=5, temperature=1.0, seed=7, use_cache=False)
    assert again == first
    chunked = emb.think(["a", "b"], num_thoughts=3, max_new_tokens=5, seed=7, batch_size=2, use_cache=False)
    assert emb.generate_calls - calls == 2 + 3 and len(chunked) == 2


def test_cache_hit_skips_generation(tiny_model_dir: Path, tmp_path: Path) -> None:
    emb = O1Embedder.from_pretrained(str(tiny_model_dir), device="cpu", cache=tmp_path / "c.sqlite")
    first = emb.think(["does coffee help?"], num_thoughts=2, max_new_tokens=4, temperature=1.0)
    calls = emb.generate_calls
    assert emb.think(["does coffee help?"], num_thoughts=2, max_new_tokens=4, temperature=1.0) == first
    assert emb.generate_calls == calls
    # another process (a new embedder on the same file) hits too
    other = O1Embedder.from_pretrained(str(tiny_model_dir), device="cpu", cache=tmp_path / "c.sqlite")
    assert other.think(["does coffee help?"], num_thoughts=2, max_new_tokens=4, temperature=1.0) == first
    assert other.generate_calls == 0
    # other generation settings miss
    other.think(["does coffee help?"], num_thoughts=2, max_new_tokens=5, temperature=1.0)
    assert other.generate_calls == 1
    assert isinstance(other.cache, ThoughtCache)


def test_fingerprint_stable_and_sensitive(
    tiny_model_dir: Path, tiny_adapter_dir: Path, tiny_embedder_session: O1Embedder
) -> None:
    again = O1Embedder.from_pretrained(str(tiny_model_dir), device="cpu", cache=False)
    assert again.fingerprint == tiny_embedder_session.fingerprint and len(again.fingerprint) == 16
    tuned = O1Embedder.from_pretrained(str(tiny_model_dir), str(tiny_adapter_dir), device="cpu", cache=False)
    assert tuned.fingerprint != again.fingerprint
    assert not np.allclose(tuned.embed_documents(DOCS[:1]), again.embed_documents(DOCS[:1]), atol=1e-4)
    # the think mode changes how queries are written out, not the space: one index serves both modes
    native = O1Embedder.from_pretrained(str(tiny_model_dir), device="cpu", cache=False, think_mode="native")
    assert native.fingerprint == again.fingerprint and native.think_mode != again.think_mode
    assert native.thinker.cache_id != again.thinker.cache_id  # thoughts are cached per mode
    shorter = O1Embedder.from_pretrained(
        str(tiny_model_dir), device="cpu", cache=False, max_document_tokens=8
    )
    assert shorter.fingerprint != again.fingerprint


def test_repetition_penalty_changes_thoughts_and_their_cache_key(
    tiny_model_dir: Path, tiny_embedder_session: O1Embedder
) -> None:
    emb = tiny_embedder_session
    plain = ThinkParams(num_thoughts=1, max_new_tokens=12, temperature=0.0)
    penalised = ThinkParams(num_thoughts=1, max_new_tokens=12, temperature=0.0, repetition_penalty=3.0)
    # 1 = no penalty: the key of thoughts cached before the option existed is unchanged
    assert "repetition_penalty" not in emb.thought_cache_params(plain)
    assert emb.thought_cache_params(plain) == emb.thought_cache_params(
        ThinkParams(1, 12, 0.0, repetition_penalty=1.0)
    )
    assert emb.thought_cache_params(penalised)["repetition_penalty"] == 3.0
    queries = ["aspirin aspirin aspirin", "sleep and memory in older adults"]
    greedy = emb.think(queries, **vars(plain), use_cache=False)
    assert emb.think(queries, **vars(penalised), use_cache=False) != greedy
    # a model-level default (an adapter's o1 config) applies when the call leaves it unset
    strict = O1Embedder.from_pretrained(
        str(tiny_model_dir), device="cpu", cache=False, repetition_penalty=3.0
    )
    assert strict.resolve(plain).repetition_penalty == 3.0 and strict.resolve(penalised) == penalised
    assert strict.think(queries, **vars(plain)) == emb.think(queries, **vars(penalised), use_cache=False)
    with pytest.raises(ValueError, match="repetition_penalty must be > 0"):
        ThinkParams(repetition_penalty=0.0)


def test_rejects_bad_input(tiny_embedder_session: O1Embedder) -> None:
    with pytest.raises(TypeError, match="list of strings"):
        tiny_embedder_session.embed_documents("one string")
    with pytest.raises(ValueError, match="num_thoughts"):
        tiny_embedder_session.think(["q"], num_thoughts=0)


def test_warm_cache_returns_stored_vector_without_forward(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:

    emb = O1Embedder.from_pretrained(str(tiny_model_dir), device="cpu", cache=tmp_path / "c.sqlite")
    params = ThinkParams(num_thoughts=2, max_new_tokens=4, temperature=1.0)
    vectors, thoughts = emb.think_and_embed(["q one", "q two", "q one"], params)
    recomputed = emb.embed_queries(["q one", "q two", "q one"], thoughts=thoughts)
    np.testing.assert_allclose(vectors, recomputed, atol=1e-6)

    def no_forward(*args, **kwargs):
        raise AssertionError("a warm cache must not run the model")

    monkeypatch.setattr(emb.encoder, "encode_sequences", no_forward)
    monkeypatch.setattr(emb.thinker, "_think", no_forward)
    again, same_thoughts = emb.think_and_embed(["q two", "q one"], params)
    assert same_thoughts == [thoughts[1], thoughts[0]]
    np.testing.assert_allclose(again, vectors[[1, 0]], atol=1e-7)
    with pytest.raises(AssertionError, match="warm cache"):
        emb.think_and_embed(["q two"], params, use_cache=False)
