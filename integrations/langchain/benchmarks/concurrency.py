"""16 concurrent ``O1Retriever.ainvoke``, and ``O1Retriever.batch`` of 16 queries (threads), against 16
sequential ``invoke`` (thought cache off): how much the retriever's request batching saves when a RAG
service answers many users at once.

    python integrations/langchain/benchmarks/concurrency.py --data ../shared/data/scifact --docs 48

Prints a table row for each; the ratios are measured in the same run (target <= 0.5: concurrent calls share
batched generation instead of thinking one by one).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from langchain_o1rag import O1Retriever
from o1_rag.embedder import O1Embedder
from o1_rag.evaluation.bench import bench_texts
from o1_rag.indexing import index_documents
from o1_rag.models import DEFAULT_MODEL
from o1_rag.store import O1Collection, open_client


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="BEIR folder for texts [default: generated].")
    parser.add_argument("--docs", type=int, default=48, help="Documents to index.")
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="o1rag-lc-bench-"))
    docs, queries = bench_texts(args.data, args.docs, 32)
    if len(queries) < 32:
        parser.error(f"the benchmark needs 32 queries, {args.data} has {len(queries)}")
    emb = O1Embedder.from_pretrained(args.model, device=args.device, cache=False)
    emb.thinker.generation_batch_size = max(emb.thinker.generation_batch_size, 48)
    col = O1Collection.create_or_open(open_client(workdir / "db"), "bench", emb.fingerprint, emb.dim)
    index_documents(emb, col, docs, batch_size=emb.batch_size)
    retriever = O1Retriever(
        embedder=emb,
        collection_name="bench",
        persist_directory=str(workdir / "db"),
        k=5,
        think="always",
        max_new_tokens=args.max_new_tokens,
        use_cache=False,
        seed=0,
        batch_window_ms=50,
        max_batch=16,
    )
    started = time.perf_counter()
    for query in queries[:16]:
        retriever.invoke(query)
    sequential = time.perf_counter() - started

    async def together() -> None:
        await asyncio.gather(*(retriever.ainvoke(q) for q in queries[16:32]))

    calls = emb.generate_calls
    started = time.perf_counter()
    asyncio.run(together())
    concurrent = time.perf_counter() - started
    calls_before_threads = emb.generate_calls
    started = time.perf_counter()
    retriever.batch(queries[:16], config={"max_concurrency": 16})
    threaded = time.perf_counter() - started
    table = Table(title=f"O1Retriever concurrency: {emb.describe()}", title_justify="left")
    for column in ("measure", "o1-rag", "baseline", "ratio", "target"):
        table.add_column(column)
    table.add_row(
        f"16 concurrent ainvoke ({emb.generate_calls - calls} generate calls)",
        f"{concurrent:.1f} s",
        f"{sequential:.1f} s for 16 sequential invoke",
        f"{concurrent / sequential:.2f}",
        "<= 0.5",
    )
    table.add_row(
        f"batch of 16, threads ({emb.generate_calls - calls_before_threads} generate calls)",
        f"{threaded:.1f} s",
        f"{sequential:.1f} s for 16 sequential invoke",
        f"{threaded / sequential:.2f}",
        "<= 0.5",
    )
    Console(markup=False, highlight=False).print(table)


if __name__ == "__main__":
    main()
