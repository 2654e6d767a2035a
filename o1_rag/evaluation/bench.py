"""The ``core`` and ``compare`` suites of ``o1rag bench`` (see ``o1_rag.evaluation.bench_run``) and what
every suite shares: the table rows, timing and the benchmark texts.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from o1_rag.data import Document, load_corpus, load_queries
from o1_rag.embedder import O1Embedder, ThinkParams
from o1_rag.encoders import JointEncoder
from o1_rag.indexing import index_documents
from o1_rag.pooling import last_token_pool
from o1_rag.search import search
from o1_rag.store import O1Collection, open_client

TOPICS = ["aspirin", "insulin", "vitamin d", "sleep", "coffee", "exercise", "statins", "smoking"]


@dataclass
class Row:
    """One line of the benchmark table."""

    measure: str
    value: str
    baseline: str
    ratio: str
    target: str = ""


def bench_texts(data: Path | None, n_docs: int, n_queries: int) -> tuple[list[Document], list[str]]:
    """Documents and queries from a BEIR folder, or generated ones when none is given."""
    if data is not None and Path(data).is_dir():
        return load_corpus(data)[:n_docs], list(load_queries(data).values())[:n_queries]
    docs = [
        Document(f"d{i}", f"{TOPICS[i % 8]} {i}", f"A study of {TOPICS[i % 8]} and health. " * (4 + i % 20))
        for i in range(n_docs)
    ]
    return docs, [f"does {TOPICS[i % 8]} affect outcome {i}?" for i in range(n_queries)]


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _pcts(samples: list[float]) -> tuple[float, float]:
    return float(np.percentile(samples, 50)), float(np.percentile(samples, 95))


def bare_forward_docs_per_s(emb: O1Embedder, texts: list[str], batch_size: int) -> float:
    """The encoder's model used directly, at the encoder's precision: for the joint LM, tokenize with
    truncation, forward the decoder and pool the last token; for a sentence-transformers encoder, its own
    ``encode`` (over every window of each text when it embeds long documents as windows: the same work)."""
    enc = emb.encoder
    if not isinstance(enc, JointEncoder):
        windows = [w for text in texts for w in enc.document_windows(text)]
        start = time.perf_counter()
        with enc.autocast():
            enc.model.encode(
                windows, batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False
            )
        return len(texts) / (time.perf_counter() - start)
    tok = enc.tokenizer
    side, tok.padding_side = tok.padding_side, "right"
    try:
        start = time.perf_counter()
        with torch.inference_mode(), enc.autocast():
            for i in range(0, len(texts), batch_size):
                batch = tok(
                    texts[i : i + batch_size],
                    padding=True,
                    truncation=True,
                    max_length=enc.format.max_document_tokens + 1,
                    return_tensors="pt",
                ).to(enc.device)
                hidden = enc.model.get_decoder()(**batch).last_hidden_state
                torch.nn.functional.normalize(last_token_pool(hidden, batch["attention_mask"]), dim=-1)
        return len(texts) / (time.perf_counter() - start)
    finally:
        tok.padding_side = side


def precision_row(emb: O1Embedder, texts: list[str]) -> Row:
    """Document encoding at the encoder's precision against float32 on the same texts, and how far the
    vectors of the two agree (the least cosine)."""
    enc = emb.encoder
    if enc.compute_dtype is None:
        return Row("encode docs/s: float32 (the encoder's precision here)", "float32", "float32", "1.00")
    fast_start = time.perf_counter()
    fast = enc.embed_documents(texts)
    fast_rate = len(texts) / (time.perf_counter() - fast_start)
    dtype, enc.compute_dtype = enc.compute_dtype, None
    try:
        enc.embed_documents(texts[: enc.batch_size])  # warm-up of the float32 kernels
        slow_start = time.perf_counter()
        slow = enc.embed_documents(texts)
        slow_rate = len(texts) / (time.perf_counter() - slow_start)
    finally:
        enc.compute_dtype = dtype
    least = float(np.min(np.sum(fast * slow, axis=1)))
    return Row(
        f"encode docs/s: {str(dtype).removeprefix('torch.')} vs float32 (least cosine {least:.5f})",
        f"{fast_rate:.2f}",
        f"{slow_rate:.2f}",
        f"{fast_rate / slow_rate:.2f}x",
    )


def thinker_precision_row(emb: O1Embedder, queries: list[str], params: ThinkParams) -> Row:
    """Thinking one query at a time with the thinker's weights as loaded against the same weights cast to
    float32, on the same queries (the latency a single search pays for its thoughts)."""
    model = getattr(emb.thinker, "model", None)
    dtype = getattr(model, "dtype", torch.float32)
    if model is None or dtype == torch.float32:
        return Row("think one query: the thinker's weights are float32 here", "float32", "float32", "1.00")

    def one_by_one() -> None:
        for q in queries:
            emb.think([q], params=params, use_cache=False)

    fast = timed(one_by_one)
    model.to(torch.float32)
    try:
        emb.think(queries[:1], params=params, use_cache=False)  # warm-up of the float32 kernels
        slow = timed(one_by_one)
    finally:
        model.to(dtype)
    return Row(
        f"think 1 query x {params.num_thoughts} thoughts: {str(dtype).removeprefix('torch.')} vs float32 "
        "weights",
        f"{fast / len(queries):.2f} s",
        f"{slow / len(queries):.2f} s",
        f"{slow / fast:.2f}x faster",
    )


@dataclass(frozen=True)
class BenchInput:
    """What the core and compare suites measure on: documents, queries, a scratch folder, the length of a
    thought and how many queries the latency probes time."""

    docs: list[Document]
    queries: list[str]
    workdir: Path
    max_new_tokens: int = 32
    probes: int = 5


def bench_core(emb: O1Embedder, given: BenchInput) -> list[Row]:
    """The core suite (see the module docstring)."""
    docs, queries, workdir = given.docs, given.queries, given.workdir
    max_new_tokens, probes = given.max_new_tokens, given.probes
    rows: list[Row] = []
    texts = [d.full_text() for d in docs]
    emb.embed_documents(texts[: emb.batch_size])  # warm-up
    emb.load_thinker()  # a one-time load is not generation speed
    baseline = bare_forward_docs_per_s(emb, texts, emb.batch_size)
    col = O1Collection.create_or_open(open_client(workdir / "db"), "bench", emb.fingerprint, emb.dim)
    report = index_documents(emb, col, docs, batch_size=emb.batch_size)
    rows.append(
        Row(
            "index docs/s (embed + Chroma upsert)",
            f"{report.docs_per_second:.2f}",
            f"{baseline:.2f} bare forward",
            f"{report.docs_per_second / baseline:.2f}",
            ">= 0.9",
        )
    )
    rows.append(precision_row(emb, texts))

    params = emb.resolve(ThinkParams(num_thoughts=3, max_new_tokens=max_new_tokens, seed=0))
    batched = timed(lambda: emb.think(queries[:32], params=params, batch_size=32, use_cache=False))
    rows.append(thinker_precision_row(emb, queries[:probes], params))

    thinker = emb.thinker
    thinker_device = next(thinker.model.parameters()).device

    def singles() -> None:
        torch.manual_seed(0)
        with torch.inference_mode():
            for q in queries[:32]:
                ids = torch.tensor([thinker.prompt_ids(q)], device=thinker_device)
                for _ in range(3):
                    thinker.model.generate(
                        input_ids=ids,
                        attention_mask=torch.ones_like(ids),
                        do_sample=True,
                        temperature=params.temperature,
                        top_p=params.top_p,
                        max_new_tokens=max_new_tokens,
                        pad_token_id=thinker.pad_id,
                        eos_token_id=[thinker.tokenizer.eos_token_id],
                    )

    single = timed(singles)
    rows.append(
        Row(
            f"think {len(queries[:32])} queries x 3 thoughts, batched",
            f"{batched:.1f} s",
            f"{single:.1f} s in single generate calls",
            f"{single / batched:.1f}x faster",
            ">= 4x",
        )
    )

    probe = queries[:probes]
    nothink = [timed(lambda q=q: search(emb, col, [q], k=10, think=False)) for q in probe]
    cold, warm = _think_samples(emb, col, probe, params)
    n50, n95 = _pcts(nothink)
    for label, samples, target in (("think, cache off", cold, ""), ("think, warm cache", warm, "<= 1.5x")):
        p50, p95 = _pcts(samples)
        rows.append(
            Row(
                f"search latency p50/p95: {label}",
                f"{p50 * 1000:.0f}/{p95 * 1000:.0f} ms",
                f"{n50 * 1000:.0f}/{n95 * 1000:.0f} ms no-think",
                f"{p50 / n50:.2f}x",
                target,
            )
        )

    batch = queries[:32]
    t_plain = timed(lambda: emb.embed_queries(batch, think=False))
    t_think = timed(lambda: emb.think_and_embed(batch, params, use_cache=False))
    rows.append(
        Row(
            f"batched query embedding, {len(batch)} queries",
            f"{len(batch) / t_think:.2f} q/s thinking",
            f"{len(batch) / t_plain:.2f} q/s no-think",
            f"{t_think / t_plain:.1f}x slower",
        )
    )
    return rows


def _think_samples(
    emb: O1Embedder, col: O1Collection, probe: list[str], params: ThinkParams
) -> tuple[list[float], list[float]]:
    """Seconds of each thinking search with the cache off, and (three times each) with a warm cache."""
    cold = [
        timed(lambda q=q: search(emb, col, [q], k=10, think="always", params=params, use_cache=False))
        for q in probe
    ]
    for q in probe:
        search(emb, col, [q], k=10, think="always", params=params)  # fill the cache
    warm = [
        timed(lambda q=q: search(emb, col, [q], k=10, think="always", params=params))
        for q in probe
        for _ in range(3)
    ]
    return cold, warm


def _latencies(
    emb: O1Embedder, col: O1Collection, probe: list[str], params: ThinkParams
) -> tuple[float, float]:
    """p50 seconds of a thinking search with the cache off, and with a warm cache."""
    cold, warm = _think_samples(emb, col, probe, params)
    return _pcts(cold)[0], _pcts(warm)[0]


def bench_compare(emb: O1Embedder, other: O1Embedder, given: BenchInput) -> list[Row]:
    """The ``compare`` suite: ``emb`` against ``other`` (the joint model) on the same texts."""
    docs, queries, workdir = given.docs, given.queries, given.workdir
    params = ThinkParams(num_thoughts=3, max_new_tokens=given.max_new_tokens, seed=0)
    measured = []
    for i, model in enumerate((emb, other)):
        model.embed_documents([d.full_text() for d in docs[:8]])  # warm-up
        model.load_thinker()
        col = O1Collection.create_or_open(
            open_client(workdir / f"compare-{i}"), "bench", model.fingerprint, model.dim
        )
        report = index_documents(model, col, docs, batch_size=32)
        measured.append((report.docs_per_second, *_latencies(model, col, queries[: given.probes], params)))
    (a_rate, a_cold, a_warm), (b_rate, b_cold, b_warm) = measured
    return [
        Row(
            f"index docs/s: {emb.name} vs {other.name}",
            f"{a_rate:.2f}",
            f"{b_rate:.2f}",
            f"{a_rate / b_rate:.1f}x",
            ">= 5x",
        ),
        Row(
            "search latency p50, think, cache off",
            f"{a_cold * 1000:.0f} ms",
            f"{b_cold * 1000:.0f} ms",
            f"{a_cold / b_cold:.2f}x",
        ),
        Row(
            "search latency p50, think, warm cache",
            f"{a_warm * 1000:.0f} ms",
            f"{b_warm * 1000:.0f} ms",
            f"{a_warm / b_warm:.2f}x",
        ),
    ]
