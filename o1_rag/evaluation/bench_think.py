"""The thinking suites of ``o1rag bench`` (see ``o1_rag.evaluation.bench_run``): ``think`` (search latency for
think never / auto / always, what hybrid search's feedback adds, and the same queries searched in one
batched ``search_to_file`` call) and ``agree`` (early stopping once two thoughts agree)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from o1_rag.bulk import search_to_file
from o1_rag.data import Document
from o1_rag.embedder import O1Embedder, ThinkParams
from o1_rag.evaluation.bench import Row, timed
from o1_rag.indexing import index_documents
from o1_rag.search import search
from o1_rag.store import O1Collection, open_client

AGREE = 0.95
FEEDBACK_MEASURED = 3  # the feedback count the README measures (feedback is off by default)


def bench_think(emb: O1Embedder, docs: list[Document], queries: list[str], workdir: Path) -> list[Row]:
    """The ``think`` suite (see the module docstring)."""
    from o1_rag.lexical import lexical_folder, sync_lexical

    col = O1Collection.create_or_open(open_client(workdir / "think-db"), "bench", emb.fingerprint, emb.dim)
    index_documents(emb, col, docs, batch_size=32)
    lexical = sync_lexical(col, lexical_folder(col, workdir / "think-db"))
    search(emb, col, queries[:1], k=10, think="never", lexical=lexical)  # warm-up
    emb.load_thinker()  # a one-time load is not a query's latency
    measured: dict[tuple[str, bool], tuple[float, float]] = {}
    thought_on = 0
    for hybrid in (False, True):
        for mode in ("never", "auto", "always"):
            samples = []
            for q in queries:
                start = time.perf_counter()
                [result] = search(
                    emb, col, [q], k=10, think=mode, use_cache=False, lexical=lexical if hybrid else None
                )
                samples.append(time.perf_counter() - start)
                thought_on += (
                    mode == "auto" and not hybrid and bool(result.decision and result.decision.think)
                )
            measured[(mode, hybrid)] = (float(np.mean(samples)), float(np.percentile(samples, 95)))
    samples = []
    for q in queries:  # what pseudo-relevance feedback adds: one more dense search
        start = time.perf_counter()
        search(emb, col, [q], k=10, think="never", lexical=lexical, feedback=FEEDBACK_MEASURED)
        samples.append(time.perf_counter() - start)
    feedback = (float(np.mean(samples)), float(np.percentile(samples, 95)))
    start = time.perf_counter()  # the same queries as one `search --queries` call: thinking batched
    search_to_file(
        emb,
        col,
        {str(i): q for i, q in enumerate(queries)},
        workdir / "bulk-run.jsonl",
        think="auto",
        lexical=lexical,
        use_cache=False,
        texts=False,
    )
    bulk = (time.perf_counter() - start) / len(queries)
    rows = []
    for hybrid in (False, True):
        never, auto, always = (measured[(m, hybrid)] for m in ("never", "auto", "always"))
        side = "hybrid" if hybrid else "dense"
        rows.append(
            Row(
                f"{side} search mean/p95, cache off: auto vs always ({len(queries)} queries)",
                f"{auto[0] * 1000:.0f}/{auto[1] * 1000:.0f} ms",
                f"{always[0] * 1000:.0f}/{always[1] * 1000:.0f} ms",
                f"{auto[0] / always[0]:.2f}x",
                "<= 0.5x",
            )
        )
        rows.append(
            Row(
                f"{side} search mean/p95: never vs always",
                f"{never[0] * 1000:.0f}/{never[1] * 1000:.0f} ms",
                f"{always[0] * 1000:.0f}/{always[1] * 1000:.0f} ms",
                f"{never[0] / always[0]:.2f}x",
            )
        )
    plain = measured[("never", True)]
    rows.append(
        Row(
            f"hybrid search mean/p95, think never: feedback {FEEDBACK_MEASURED} vs off",
            f"{feedback[0] * 1000:.0f}/{feedback[1] * 1000:.0f} ms",
            f"{plain[0] * 1000:.0f}/{plain[1] * 1000:.0f} ms",
            f"{feedback[0] / plain[0]:.2f}x",
        )
    )
    auto_hybrid = measured[("auto", True)][0]
    rows.append(
        Row(
            "hybrid auto, cache off, per query: all in one search_to_file call vs one search each",
            f"{bulk * 1000:.0f} ms",
            f"{auto_hybrid * 1000:.0f} ms",
            f"{bulk / auto_hybrid:.2f}x",
        )
    )
    rows.append(Row("auto thought on", f"{thought_on} of {len(queries)} queries", "", ""))
    return rows


def bench_agree(emb: O1Embedder, queries: list[str], single: int = 8, agree: float = AGREE) -> list[Row]:
    """The ``agree`` suite (see the module docstring): the model's thinking settings, seed 0, cache off."""
    plain, early = ThinkParams(seed=0), ThinkParams(seed=0, agree=agree)
    batch = queries[:32]
    emb.think_and_embed(batch[:1], plain, use_cache=False)  # warm-up
    written: dict[bool, int] = {}
    seconds: dict[bool, float] = {}
    for stop, params in ((False, plain), (True, early)):
        start = time.perf_counter()
        _, thoughts = emb.think_and_embed(batch, params, use_cache=False)
        seconds[stop] = time.perf_counter() - start
        written[stop] = sum(len(t) for t in thoughts)
    one: dict[bool, float] = {}
    for stop, params in ((False, plain), (True, early)):
        one[stop] = float(
            np.mean(
                [
                    timed(lambda q=q, p=params: emb.think_and_embed([q], p, use_cache=False))
                    for q in batch[:single]
                ]
            )
        )
    return [
        Row(
            f"think {len(batch)} queries in one batch: agree {agree} vs off",
            f"{seconds[True]:.1f} s, {written[True]} thoughts",
            f"{seconds[False]:.1f} s, {written[False]} thoughts",
            f"{seconds[True] / seconds[False]:.2f}x",
        ),
        Row(
            f"think one query (mean of {single}): agree {agree} vs off",
            f"{one[True] * 1000:.0f} ms",
            f"{one[False] * 1000:.0f} ms",
            f"{one[True] / one[False]:.2f}x",
        ),
    ]
