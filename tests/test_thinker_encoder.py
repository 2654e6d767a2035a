"""The thinker + encoder seam: thinkers (LM, endpoint, callable), the sentence-transformers encoder, their
composition, cache keys, fingerprints and the encoder fine-tuning."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from o1_rag.cache import ThoughtCache
from o1_rag.config import ConfigError, O1Config
from o1_rag.embedder import O1Embedder, ThinkParams
from o1_rag.encoders import SentenceTransformerEncoder
from o1_rag.errors import FingerprintMismatchError
from o1_rag.thinkers import CallableThinker, EndpointThinker, LMThinker, ThinkerError

DOCS = ["Aspirin lowers the risk of heart attacks.", "Sleep and memory.", "Coffee and the liver."]


class _Stub(BaseHTTPRequestHandler):
    """An OpenAI-compatible chat-completions stub: records each request, answers with canned text."""

    requests: list[dict[str, Any]] = []  # noqa: RUF012
    fail_first = 0

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append({"path": self.path, "auth": self.headers.get("Authorization"), **body})
        if type(self).fail_first > 0:
            type(self).fail_first -= 1
            self.send_response(503)
            self.end_headers()
            return
        query = body["messages"][0]["content"].rsplit("Query: ", 1)[-1]
        payload = {
            "choices": [{"message": {"role": "assistant", "content": f" about {query} #{body.get('seed')} "}}]
        }
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def stub_server() -> Iterator[str]:
    _Stub.requests = []
    _Stub.fail_first = 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Stub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


def test_endpoint_thinker_sends_chat_requests_and_retries(stub_server: str) -> None:
    thinker = EndpointThinker(stub_server, "served-model", api_key="k", backoff=0.01)
    params = ThinkParams(num_thoughts=2, max_new_tokens=7, temperature=0.3, top_p=0.8, seed=5)
    thoughts = thinker.think(["cold exposure", "aspirin", "cold exposure"], params)
    assert thoughts[0] == thoughts[2] and len(thoughts[0]) == 2
    assert sorted(thoughts[0]) == ["about cold exposure #5", "about cold exposure #6"]  # stripped, seeded
    assert len(_Stub.requests) == 4  # duplicates asked once: 2 queries x 2 thoughts
    first = _Stub.requests[0]
    assert first["path"] == "/v1/chat/completions" and first["auth"] == "Bearer k"
    assert first["model"] == "served-model" and first["max_tokens"] == 7
    assert first["temperature"] == 0.3 and first["top_p"] == 0.8
    assert "plausible response" in first["messages"][0]["content"]
    _Stub.fail_first = 2  # two 503s, then success: retried
    assert thinker.think(["x"], ThinkParams(num_thoughts=1, seed=0)) == [["about x #0"]]


def test_endpoint_thinker_sends_a_key_only_when_asked(
    stub_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "secret")
    EndpointThinker(stub_server, "m").think(["q"], ThinkParams(num_thoughts=1))
    assert _Stub.requests[-1]["auth"] is None
    EndpointThinker(stub_server, "m", api_key_env="OPENAI_API_KEY").think(["r"], ThinkParams(num_thoughts=1))
    assert _Stub.requests[-1]["auth"] == "Bearer secret"
    with pytest.raises(ValueError, match="NO_SUCH_KEY"):
        EndpointThinker(stub_server, "m", api_key_env="NO_SUCH_KEY")


def test_endpoint_thinker_down_is_one_clear_error() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens here once closed
    thinker = EndpointThinker(f"http://127.0.0.1:{port}/v1", "m", retries=1, backoff=0.01, timeout=2)
    with pytest.raises(
        ThinkerError, match=r"thinker endpoint http://127.0.0.1:\d+/v1/chat/completions failed"
    ):
        thinker.think(["q"], ThinkParams(num_thoughts=1))
    with pytest.raises(ValueError, match="must start with http"):
        EndpointThinker("localhost:8000", "m")


def test_endpoint_thinker_through_cli(stub_server: str, tiny_encoder_dir: Path) -> None:
    from typer.testing import CliRunner

    from o1_rag.cli import app

    result = CliRunner().invoke(
        app,
        [
            "think",
            "does coffee help?",
            "--thinker",
            "served",
            "--thinker-url",
            stub_server,
            "-n",
            "2",
            "--model",
            "o1-minilm",
            "--seed",
            "1",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "about does coffee help? #1" in result.output and "#2" in result.output
    missing = CliRunner().invoke(app, ["think", "q", "--thinker-url", stub_server, "--model", "o1-minilm"])
    assert missing.exit_code == 1 and "--thinker-url needs --thinker" in missing.output


def test_sentence_transformer_encoder_pairs(tiny_encoder_dir: Path) -> None:
    enc = SentenceTransformerEncoder(str(tiny_encoder_dir), device="cpu")
    v_q, v_t = enc.embed_pairs(["aspirin", "aspirin", "sleep"], ["clots", "", "memory"])
    np.testing.assert_allclose(np.linalg.norm(v_t, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(v_q[0], enc.embed_queries(["aspirin"])[0], atol=1e-6)
    np.testing.assert_allclose(v_t[1], v_q[1], atol=1e-6)  # an empty thought embeds the query alone
    np.testing.assert_allclose(v_t[0], enc.embed_documents(["aspirin clots"])[0], atol=1e-6)
    assert not np.allclose(v_t[0], v_q[0], atol=1e-3)


def test_composed_embedder_mixes_thoughts_and_query(tiny_encoder_dir: Path, tiny_model_dir: Path) -> None:
    thinker = CallableThinker(lambda prompts, params: [f"thought {i}" for i in range(len(prompts))], "fixed")
    emb = O1Embedder.from_pretrained(
        "o1-minilm", thinker=thinker, encoder=str(tiny_encoder_dir), device="cpu", cache=False
    )
    params = ThinkParams(num_thoughts=2)
    vectors, thoughts = emb.think_and_embed(["q one"], params, query_weight=0.25)
    assert thoughts == [["thought 0", "thought 1"]]
    enc = emb.encoder
    mean = enc.embed_documents(["q one thought 0", "q one thought 1"]).sum(axis=0)
    mean /= np.linalg.norm(mean)
    expected = 0.75 * mean + 0.25 * enc.embed_queries(["q one"])[0]
    np.testing.assert_allclose(vectors[0], expected / np.linalg.norm(expected), atol=1e-5)
    # an LM thinker and the sentence encoder, joined by plain text
    lm = LMThinker.from_pretrained(str(tiny_model_dir), device="cpu")
    assert lm.mode == "chat" and "<emb>" not in lm.tokenizer.get_vocab()  # a writer gets no O1 markers
    both = O1Embedder(enc, lm)
    [[t1, t2]] = both.think(["q"], num_thoughts=2, max_new_tokens=3, seed=0)
    assert isinstance(t2, str)
    assert isinstance(t1, str) and both.embed_queries(["q"]).shape == (1, enc.dim)


def test_a_models_own_temperature_is_its_default(
    tiny_encoder_dir: Path, tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sampling temperature left unset comes from the model's ``o1_config.json`` (else 0.1); a call's
    own temperature wins, and it keys the thought cache as the thinker used it."""
    from o1_rag import models
    from o1_rag.thinkers import DEFAULT_TEMPERATURE

    folder = tmp_path / "alias"
    folder.mkdir()
    O1Config(query_weight=0.5, num_thoughts=2, temperature=0.7).save(folder)
    monkeypatch.setitem(
        models.COMPOSED_MODELS,
        "tiny-composed",
        models.ComposedModel(str(tiny_model_dir), str(tiny_encoder_dir), folder=str(folder)),
    )
    seen: list[float | None] = []

    def write(prompts: list[str], params: ThinkParams) -> list[str]:
        seen.append(params.temperature)
        return [f"thought at {params.temperature}" for _ in prompts]

    thinker = CallableThinker(write, "w")
    cache = ThoughtCache(tmp_path / "thoughts.sqlite")
    emb = O1Embedder.from_pretrained("tiny-composed", thinker=thinker, device="cpu", cache=cache)
    assert emb.resolve(None).temperature == 0.7
    assert emb.think(["q"], num_thoughts=1) == [["thought at 0.7"]]
    assert emb.think(["q"], num_thoughts=1, temperature=0.3) == [["thought at 0.3"]]
    assert emb.think(["q"], num_thoughts=1) == [["thought at 0.7"]] and seen == [0.7, 0.3]  # cached
    assert emb.thought_cache_params(ThinkParams(num_thoughts=1))["temperature"] == 0.7
    # the shipped default, a thinker alone and an embedder built without a config: the library's default
    assert models.COMPOSED_MODELS["o1-minilm"].config().temperature is None
    assert CallableThinker(write, "w").think(["q"], ThinkParams(num_thoughts=1)) == [["thought at 0.1"]]
    assert O1Embedder(emb.encoder, thinker).resolve(None).temperature == DEFAULT_TEMPERATURE == 0.1
    with pytest.raises(ValueError, match="temperature must be >= 0"):
        ThinkParams(temperature=-1.0)


def test_one_index_serves_every_thinker_not_every_encoder(
    tiny_encoder_dir: Path, tmp_path: Path, tiny_model_dir: Path
) -> None:
    from o1_rag.indexing import index_documents
    from o1_rag.search import search
    from o1_rag.store import O1Collection, open_client

    first = CallableThinker(lambda prompts, params: ["aspirin"] * len(prompts), "a")
    second = CallableThinker(lambda prompts, params: ["sleep"] * len(prompts), "b")
    cache = ThoughtCache(tmp_path / "c.sqlite")
    emb_a = O1Embedder(SentenceTransformerEncoder(str(tiny_encoder_dir), device="cpu"), first, cache=cache)
    emb_b = O1Embedder(emb_a.encoder, second, cache=cache)
    assert emb_a.fingerprint == emb_b.fingerprint and first.cache_id != second.cache_id
    client = open_client(tmp_path / "db")
    collection = O1Collection.create_or_open(client, "docs", emb_a.fingerprint, emb_a.dim)
    index_documents(emb_a, collection, _docs())
    [ra] = search(emb_a, collection, ["question"], k=2, params=ThinkParams(num_thoughts=1))
    [rb] = search(emb_b, collection, ["question"], k=2, params=ThinkParams(num_thoughts=1))
    assert ra.thoughts == ["aspirin"] and rb.thoughts == ["sleep"]  # separate cache entries per thinker
    joint = O1Embedder.from_pretrained(str(tiny_model_dir), device="cpu", cache=False)
    with pytest.raises(FingerprintMismatchError, match=emb_a.fingerprint):
        search(joint, collection, ["question"], k=2, think=False)


def _docs() -> list[Any]:
    from o1_rag.data import Document

    return [Document(f"d{i}", text, "") for i, text in enumerate(DOCS)]


def test_langchain_fake_chat_model_thinks(tiny_encoder_dir: Path, tmp_path: Path) -> None:
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    from langchain_o1rag import O1Retriever
    from o1_rag.indexing import index_documents
    from o1_rag.store import O1Collection, open_client

    emb = O1Embedder(SentenceTransformerEncoder(str(tiny_encoder_dir), device="cpu"))
    client = open_client(tmp_path / "db")
    collection = O1Collection.create_or_open(client, "docs", emb.fingerprint, emb.dim)
    index_documents(emb, collection, _docs())
    llm = FakeListChatModel(responses=["aspirin prevents clots", "it thins the blood"])
    retriever = O1Retriever(embedder=emb, client=client, collection_name="docs", llm=llm, k=2, num_thoughts=2)
    docs = retriever.invoke("does aspirin help?")
    assert len(docs) == 2
    assert sorted(docs[0].metadata["o1_thoughts"]) == ["aspirin prevents clots", "it thins the blood"]
    assert emb.thinker.identity["kind"] == "callable"


def test_o1_config_is_validated(tmp_path: Path) -> None:
    path = tmp_path / "o1_config.json"
    for bad, message in (
        ({"max_document_tokens": 0}, "max_document_tokens must be an integer >= 1"),
        ({"max_query_tokens": [1]}, "max_query_tokens must be an integer >= 1"),
        ({"query_weight": "0.5"}, "query_weight must be a number in"),
        ({"think_mode": "loud"}, "think_mode must be one of"),
        ({"temperature": -0.5}, "temperature must be a number >= 0"),
        ({"temperature": "hot"}, "temperature must be a number >= 0"),
        ({"max_doc_tokens": 5}, "unknown key"),
        ([1, 2], "expected a JSON object"),
    ):
        path.write_text(json.dumps(bad))
        with pytest.raises(ConfigError, match=message) as info:
            O1Config.load(path)
        assert str(path) in str(info.value)
    path.write_text("{")
    with pytest.raises(ConfigError, match="not valid JSON"):
        O1Config.load(path)
    config = O1Config(query_weight=0.5, num_thoughts=2)
    config.save(tmp_path)
    assert O1Config.load(path) == config


def test_encoder_fine_tune_changes_weights_and_reloads(tiny_encoder_dir: Path, tmp_path: Path) -> None:
    from sentence_transformers import SentenceTransformer

    from o1_rag.training.encoder import EncoderRecipe, build_encoder_trainer, save_encoder_adapter

    recipe = EncoderRecipe(
        base=str(tiny_encoder_dir),
        train_files=["unused"],
        output_dir=str(tmp_path / "run"),
        max_steps=2,
        batch_size=4,
        learning_rate=5e-3,
        save_steps=1,
        device="cpu",
    )
    rows = {
        "anchor": [f"question {i} thought {i}" for i in range(8)],
        "positive": [f"passage {i}" for i in range(8)],
        "negative": [f"other {i}" for i in range(8)],
    }
    before = SentenceTransformerEncoder(str(tiny_encoder_dir), device="cpu").embed_documents(DOCS)
    model = SentenceTransformer(str(tiny_encoder_dir), device="cpu")
    trainer = build_encoder_trainer(recipe, rows, model=model)
    trainer.train()
    assert trainer.state.global_step == 2
    trained = trainer.model.encode(DOCS, normalize_embeddings=True, convert_to_numpy=True)
    assert not np.allclose(trained, before, atol=1e-4)
    # a killed run resumes from its last checkpoint (the adapter is loaded back into a fresh model)
    from transformers.trainer_utils import get_last_checkpoint

    resumed = build_encoder_trainer(
        recipe, rows, model=SentenceTransformer(str(tiny_encoder_dir), device="cpu")
    )
    resumed.train(resume_from_checkpoint=get_last_checkpoint(recipe.output_dir))
    assert resumed.state.global_step == 2
    again = resumed.model.encode(DOCS, normalize_embeddings=True, convert_to_numpy=True)
    np.testing.assert_allclose(again, trained, atol=1e-5)
    folder = save_encoder_adapter(trainer.model, tmp_path / "adapter", recipe, 8, 1.0)
    assert (folder / "adapter_model.safetensors").stat().st_size < 200_000  # the adapter only
    # the base is named inside the folder; float32 as the trainer computes, for an exact comparison
    reloaded = SentenceTransformerEncoder(str(folder), device="cpu", precision="float32")
    np.testing.assert_allclose(reloaded.embed_documents(DOCS), trained, atol=1e-5)
    plain = SentenceTransformerEncoder(str(tiny_encoder_dir), device="cpu")
    assert reloaded.fingerprint_fields != plain.fingerprint_fields  # a tuned encoder is another space


def test_committee_member_can_be_the_default_encoder(tiny_encoder_dir: Path) -> None:
    from o1_rag.data import Document
    from o1_rag.synthesis.committee import DenseMember

    member = DenseMember(str(tiny_encoder_dir), "cpu")
    scores = member.score(["aspirin clots", "sleep memory"], Document("d", "Aspirin and clots.", ""))
    assert scores.shape == (2,) and np.all(np.abs(scores) <= 1 + 1e-6)
    default = O1Embedder.from_pretrained("o1-minilm", thinker=False, device="cpu", cache=False)
    assert default.thinker is None and "+adapter:" in default.fingerprint_fields["model"]
    same = SentenceTransformerEncoder("o1-minilm", device="cpu")  # what `synth --dense o1-minilm` loads
    assert same.fingerprint_fields == default.fingerprint_fields


def test_think_cached_writes_chunk_by_chunk_and_reports_progress(tmp_path) -> None:
    from o1_rag.cache import ThoughtCache
    from o1_rag.thinkers import CallableThinker, ThinkParams, think_cached

    calls: list[int] = []

    def generate(prompts, params):  # type: ignore[no-untyped-def]
        calls.append(len(prompts))
        if len(calls) == 3:
            raise KeyboardInterrupt  # killed while writing the third chunk
        return [f"thought about {p[-12:]}" for p in prompts]

    thinker = CallableThinker(generate, "counting")
    cache = ThoughtCache(tmp_path / "thoughts.sqlite")
    queries = [f"query number {i}" for i in range(10)]
    seen: list[tuple[int, int]] = []
    params = ThinkParams(num_thoughts=1, max_new_tokens=8)
    with pytest.raises(KeyboardInterrupt):
        think_cached(thinker, queries, params, cache, progress=lambda d, t: seen.append((d, t)), chunk=4)
    assert seen == [(0, 10), (4, 10), (8, 10)]
    calls.clear()
    calls.append(-1)  # the rerun must not be interrupted: skip the third-call trigger
    again = think_cached(thinker, queries, params, cache, chunk=4)
    assert calls[1:] == [2]  # only the two queries of the interrupted chunk are generated again
    assert len(again) == 10 and all(len(t) == 1 for t in again)


def test_concurrency_option_reaches_the_endpoint_thinker() -> None:
    from typer.testing import CliRunner

    from o1_rag.cli import app
    from o1_rag.thinkers import thinker_from_options

    thinker = thinker_from_options("served-model", "http://127.0.0.1:9/v1", concurrency=3)
    assert isinstance(thinker, EndpointThinker) and thinker.concurrency == 3
    result = CliRunner().invoke(
        app, ["think", "q", "--thinker", "m", "--thinker-url", "http://x/v1", "--concurrency", "0"]
    )
    assert result.exit_code == 2 and "--concurrency" in result.output


def test_early_stop_when_thoughts_agree(tiny_encoder_dir: Path, tmp_path: Path) -> None:
    """``agree``: two thoughts first, then one at a time for the queries whose thoughts differ, each round
    with its own seed; the finished lists are cached under the settings including ``agree``."""
    script = {
        "qsame": ["aspirin heart attack", "aspirin heart attack", "x", "y"],
        "qthird": ["coffee and the liver", "sleep and memory", "coffee and the liver", "z"],
        "qdiffer": ["coffee and the liver", "sleep and memory", "aspirin heart attack", "bones calcium"],
    }
    issued = {q: 0 for q in script}
    calls: list[tuple[list[str], int | None]] = []

    def generate(prompts: list[str], params: ThinkParams) -> list[str]:
        owners = [next(q for q in script if q in p) for p in prompts]
        calls.append((owners, params.seed))
        out = []
        for q in owners:
            out.append(script[q][issued[q] % 4])
            issued[q] += 1
        return out

    emb = O1Embedder(
        SentenceTransformerEncoder(str(tiny_encoder_dir), device="cpu"),
        CallableThinker(generate, "scripted"),
        cache=ThoughtCache(tmp_path / "thoughts.sqlite"),
    )
    params = ThinkParams(num_thoughts=4, seed=0, agree=0.999)
    queries = ["qsame", "qthird", "qdiffer"]
    vectors, thoughts = emb.think_and_embed(queries, params)
    assert [len(t) for t in thoughts] == [2, 3, 4]
    assert thoughts[1] == script["qthird"][:3]
    assert calls == [(["qsame", "qsame", "qthird", "qthird", "qdiffer", "qdiffer"], 0),
                     (["qthird", "qdiffer"], 1), (["qdiffer"], 2)]  # fmt: skip
    np.testing.assert_allclose(vectors, emb.embed_with_thoughts(queries, thoughts), atol=1e-6)
    # cached under settings that include agree: no generation again; without agree, all four thoughts
    calls.clear()
    assert emb.think(queries, params=params) == thoughts and not calls
    assert [len(t) for t in emb.think(queries, params=ThinkParams(num_thoughts=4, seed=0))] == [4, 4, 4]
    assert emb.thought_cache_params(params)["agree"] == 0.999
    assert "agree" not in emb.thought_cache_params(ThinkParams(num_thoughts=4, seed=0))
    two = ThinkParams(num_thoughts=2, seed=0, agree=0.5)  # nothing to save with two thoughts: plain thinking
    assert not two.stops_early and "agree" not in emb.thought_cache_params(two)
    for bad in (0.0, 1.5):
        with pytest.raises(ValueError, match="agree must be a cosine"):
            ThinkParams(agree=bad)


def test_an_alias_loads_its_own_thinker_only_when_a_query_thinks(
    tiny_model_dir: Path, tiny_encoder_dir: Path, tiny_corpus: Path, tmp_path: Path, monkeypatch
) -> None:
    """A thinker + encoder alias builds without loading its thinker; searches that do not think (never, or
    auto where the gate skips) never load it; the first thought loads it once, even from several threads,
    and it writes what the same thinker loaded up front writes."""
    from o1_rag import models
    from o1_rag.data import load_corpus
    from o1_rag.gate import FEATURES, ThinkGate
    from o1_rag.indexing import index_documents
    from o1_rag.search import search
    from o1_rag.store import O1Collection, open_client
    from o1_rag.thinkers import LazyThinker

    monkeypatch.setitem(
        models.COMPOSED_MODELS,
        "tiny-composed",
        models.ComposedModel(str(tiny_model_dir), str(tiny_encoder_dir), folder=str(tmp_path)),
    )
    loads: list[str] = []
    real = LMThinker.from_pretrained

    def counted(*args: Any, **kwargs: Any) -> LMThinker:
        loads.append(str(args[0]))
        return real(*args, **kwargs)

    monkeypatch.setattr(LMThinker, "from_pretrained", counted)
    embedder = O1Embedder.from_pretrained("tiny-composed", device="cpu", cache=False, think_mode="native")
    assert isinstance(embedder.thinker, LazyThinker) and not embedder.thinker.is_loaded and loads == []
    assert embedder.generate_calls == 0 and "not loaded yet" in embedder.thinker.describe()
    collection = O1Collection.create_or_open(
        open_client(tmp_path / "db"), "tiny", embedder.fingerprint, embedder.dim
    )
    index_documents(embedder, collection, load_corpus(tiny_corpus))
    search(embedder, collection, ["aspirin"], k=3, think="never")
    embedder.gate = ThinkGate([0.0] * len(FEATURES), [1.0] * len(FEATURES), [0.0] * len(FEATURES), -5.0)
    [skipped] = search(embedder, collection, ["aspirin"], k=3, think="auto")
    assert not skipped.decision.think and loads == [] and not embedder.thinker.is_loaded

    params = ThinkParams(num_thoughts=2, max_new_tokens=6, seed=3)
    threads = [threading.Thread(target=embedder.think, args=(["aspirin"],), kwargs={"params": params})]
    threads += [threading.Thread(target=embedder.think, args=(["insulin"],), kwargs={"params": params})]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert loads == [str(tiny_model_dir)] and embedder.thinker.is_loaded
    eager = real(str(tiny_model_dir), mode="native", device="cpu")
    assert embedder.thinker.cache_id == eager.cache_id and embedder.thinker.mode == "native"
    assert embedder.think(["aspirin"], params=params) == eager.think(["aspirin"], params)
    embedder.generation_batch_size = 3  # settings reach the loaded thinker
    assert embedder.thinker.load().generation_batch_size == 3
    named = O1Embedder.from_pretrained(
        "tiny-composed", thinker=str(tiny_model_dir), device="cpu", cache=False
    )
    assert isinstance(named.thinker, LMThinker)  # a thinker the user names is loaded at once


def test_a_thinker_loads_in_bfloat16_where_the_precision_asks_for_it(
    tiny_model_dir: Path, tiny_encoder_dir: Path, tmp_path: Path, monkeypatch
) -> None:
    """``dtype="auto"`` follows the precision: bfloat16 weights where the hardware multiplies them natively
    (generation reads every weight per token), float32 elsewhere; thoughts of either are cached apart."""
    import torch

    from o1_rag import causal_lm, models
    from o1_rag.causal_lm import writer_dtype

    monkeypatch.setattr(causal_lm, "native_bf16", lambda device: True)
    assert writer_dtype("auto", "cpu") == "bfloat16" and writer_dtype("auto", "cpu", "float32") == "float32"
    assert writer_dtype("float16", "cpu", "float32") == "float16"  # an explicit dtype is kept
    monkeypatch.setattr(causal_lm, "native_bf16", lambda device: False)
    assert writer_dtype("auto", "cpu") == "float32" and writer_dtype("auto", "cpu", "bfloat16") == "bfloat16"

    fp32 = LMThinker.from_pretrained(str(tiny_model_dir), device="cpu")
    bf16 = LMThinker.from_pretrained(str(tiny_model_dir), device="cpu", precision="bfloat16")
    assert fp32.model.dtype == torch.float32 and "dtype" not in fp32.identity  # older cache keys still hold
    assert bf16.model.dtype == torch.bfloat16 and bf16.identity["dtype"] == "bfloat16"
    assert fp32.cache_id != bf16.cache_id
    [[thought]] = bf16.think(["aspirin"], ThinkParams(num_thoughts=1, max_new_tokens=3, seed=0))
    assert isinstance(thought, str)

    monkeypatch.setitem(
        models.COMPOSED_MODELS,
        "tiny-composed",
        models.ComposedModel(str(tiny_model_dir), str(tiny_encoder_dir), folder=str(tmp_path)),
    )
    for precision, dtype in (("bfloat16", torch.bfloat16), ("float32", torch.float32)):
        embedder = O1Embedder.from_pretrained("tiny-composed", device="cpu", cache=False, precision=precision)
        assert embedder.thinker.load().model.dtype == dtype  # an alias's own thinker follows the precision
