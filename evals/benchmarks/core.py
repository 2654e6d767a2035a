"""Core runtime speed benchmark: prints a table of ratios against baselines measured in the same run.

1. indexing docs/s (O1Embedder + Chroma upsert) vs a bare transformers forward loop over the same texts
   and batch size (target ratio >= 0.9);
2. ``think`` for 32 queries x 3 thoughts in batches vs 96 single ``generate`` calls (target >= 4x faster);
3. search latency with a warm thought cache vs ``--no-think`` (target <= 1.5x).

Usage: ``python evals/benchmarks/core.py [--data ../shared/data/scifact] [--docs 64] [--model NAME]``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from o1_rag.data import Document, load_corpus, load_queries
from o1_rag.embedder import O1Embedder, ThinkParams
from o1_rag.pooling import last_token_pool
from o1_rag.search import search
from o1_rag.store import O1Collection, index_documents, open_client


def _texts(data: Path, n_docs: int, n_queries: int) -> tuple[list[Document], list[str]]:
    if data.is_dir():
        docs = load_corpus(data)[:n_docs]
        queries = list(load_queries(data).values())[:n_queries]
        return docs, queries
    topics = ["aspirin", "insulin", "vitamin d", "sleep", "coffee", "exercise", "statins", "smoking"]
    docs = [
        Document(f"d{i}", f"{topics[i % 8]} {i}", f"A study of {topics[i % 8]} and health. " * (4 + i % 20))
        for i in range(n_docs)
    ]
    return docs, [f"does {topics[i % 8]} affect outcome {i}?" for i in range(n_queries)]


def bare_forward_docs_per_s(emb: O1Embedder, texts: list[str], batch_size: int) -> float:
    """Plain transformers: tokenize with truncation, forward the decoder, pool the last token."""
    tok, model = emb.tokenizer, emb.model
    tok.padding_side = "right"
    start = time.perf_counter()
    with torch.inference_mode():
        for i in range(0, len(texts), batch_size):
            batch = tok(
                texts[i : i + batch_size],
                padding=True,
                truncation=True,
                max_length=emb.format.max_document_tokens + 1,
                return_tensors="pt",
            )
            hidden = model.model(**batch).last_hidden_state
            torch.nn.functional.normalize(last_token_pool(hidden, batch["attention_mask"]), dim=-1)
    return len(texts) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=Path("../shared/data/scifact"))
    parser.add_argument("--docs", type=int, default=64)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    console = Console()
    docs, queries = _texts(args.data, args.docs, 32)
    work = Path(tempfile.mkdtemp(prefix="o1rag-bench-"))
    emb = O1Embedder.from_pretrained(args.model, cache=work / "thoughts.sqlite")
    texts = [d.full_text() for d in docs]
    batch = emb.batch_size
    emb.embed_documents(texts[:batch])  # warm-up
    rows: list[tuple[str, str, str, str, str]] = []

    # 1. indexing throughput
    baseline = bare_forward_docs_per_s(emb, texts, batch)
    col = O1Collection.create_or_open(open_client(work / "db"), "bench", emb.fingerprint, emb.dim)
    report = index_documents(emb, col, docs, batch_size=batch)
    rows.append(
        (
            "index docs/s (incl. Chroma upsert)",
            f"{report.docs_per_second:.2f}",
            f"{baseline:.2f} (bare forward)",
            f"{report.docs_per_second / baseline:.2f}",
            ">= 0.9",
        )
    )

    # 2. batched thinking vs single generate calls, same prompts and settings
    params = ThinkParams(
        num_thoughts=3, max_new_tokens=args.max_new_tokens, temperature=0.1, top_p=0.9, seed=0
    )
    start = time.perf_counter()
    emb.think(
        queries, num_thoughts=3, max_new_tokens=params.max_new_tokens, seed=0, batch_size=32, use_cache=False
    )
    batched = time.perf_counter() - start
    start = time.perf_counter()
    with torch.inference_mode():
        torch.manual_seed(0)
        for q in queries:
            ids = torch.tensor([emb._prompt_ids(q)])
            for _ in range(3):
                emb.model.generate(
                    input_ids=ids,
                    attention_mask=torch.ones_like(ids),
                    do_sample=True,
                    temperature=0.1,
                    top_p=0.9,
                    max_new_tokens=params.max_new_tokens,
                    pad_token_id=emb.pad_id,
                    eos_token_id=[emb.tokenizer.eos_token_id],
                )
    single = time.perf_counter() - start
    rows.append(
        (
            f"think 32 queries x 3 thoughts ({params.max_new_tokens} new tokens)",
            f"{batched:.1f} s",
            f"{single:.1f} s (96 single calls)",
            f"{single / batched:.2f}x faster",
            ">= 4x",
        )
    )

    # 3. search latency: warm thought cache vs no thinking
    probe = queries[:4]
    search(emb, col, probe, k=10, params=params)  # fills the cache
    warm, nothink, thoughts_only = [], [], []
    for _ in range(args.repeats):
        for q in probe:
            t = time.perf_counter()
            search(emb, col, [q], k=10, params=params)
            warm.append(time.perf_counter() - t)
            t = time.perf_counter()  # thoughts from the cache, vector recomputed (a cache without vectors)
            cached = emb.think([q], num_thoughts=3, max_new_tokens=params.max_new_tokens, seed=0)
            col.search(emb.embed_queries([q], thoughts=cached), k=10)
            thoughts_only.append(time.perf_counter() - t)
            t = time.perf_counter()
            search(emb, col, [q], k=10, think=False)
            nothink.append(time.perf_counter() - t)
    w, n = statistics.median(warm), statistics.median(nothink)
    rows.append(
        (
            "search latency p50, warm thought cache",
            f"{w * 1000:.1f} ms",
            f"{n * 1000:.1f} ms (--no-think)",
            f"{w / n:.2f}x",
            "<= 1.5x",
        )
    )

    table = Table(
        title=f"o1-rag core benchmark: {args.model}, {len(docs)} docs, CPU threads={torch.get_num_threads()}"
    )
    for column in ("measure", "o1-rag", "baseline", "ratio", "target"):
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    console.print(table)


if __name__ == "__main__":
    main()
