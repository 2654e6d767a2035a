"""16 concurrent ``ainvoke`` calls of ``O1Retriever`` against 16 sequential ``invoke`` calls.

Same retriever, same queries, thought cache off so both sides generate. Target: concurrent <= 0.5x.
Usage: ``python evals/benchmarks/langchain_concurrency.py [--data ../shared/data/scifact] [--model NAME]``.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from langchain_o1rag import O1Retriever
from o1_rag.data import load_corpus, load_queries
from o1_rag.embedder import O1Embedder
from o1_rag.store import O1Collection, index_documents, open_client


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=Path("../shared/data/scifact"))
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--docs", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    args = parser.parse_args()
    db = tempfile.mkdtemp(prefix="o1rag-lc-bench-")
    emb = O1Embedder.from_pretrained(args.model, cache=False)
    emb.generation_batch_size = 48
    col = O1Collection.create_or_open(open_client(db), "bench", emb.fingerprint, emb.dim)
    index_documents(emb, col, load_corpus(args.data)[: args.docs])
    queries = list(load_queries(args.data).values())[:32]
    common = {
        "embedder": emb,
        "collection_name": "bench",
        "persist_directory": db,
        "k": 5,
        "max_new_tokens": args.max_new_tokens,
        "use_cache": False,
        "seed": 0,
    }
    retriever = O1Retriever(**common, batch_window_ms=50, max_batch=16)

    start = time.perf_counter()
    for q in queries[:16]:
        retriever.invoke(q)
    sequential = time.perf_counter() - start

    async def concurrent_calls() -> None:
        await asyncio.gather(*(retriever.ainvoke(q) for q in queries[16:32]))

    calls = emb.generate_calls
    start = time.perf_counter()
    asyncio.run(concurrent_calls())
    concurrent = time.perf_counter() - start
    table = Table(
        title=f"O1Retriever concurrency: {args.model}, 3 thoughts x {args.max_new_tokens} tokens, "
        f"CPU threads={torch.get_num_threads()}"
    )
    for column in ("measure", "seconds", "ratio", "target"):
        table.add_column(column)
    table.add_row("16 sequential invoke", f"{sequential:.1f}", "1.00", "")
    table.add_row(
        f"16 concurrent ainvoke ({emb.generate_calls - calls} generate calls)",
        f"{concurrent:.1f}",
        f"{concurrent / sequential:.2f}",
        "<= 0.5",
    )
    Console().print(table)


if __name__ == "__main__":
    main()
