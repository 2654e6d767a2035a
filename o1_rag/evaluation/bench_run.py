"""``o1rag bench``: speed of the runtime, as ratios against baselines measured in the same run.

Suites:
- ``core``: indexing docs/s against a bare transformers forward loop (both at the encoder's precision);
  document encoding at that precision against float32 (with the least cosine between the two vectors of
  a document); batched ``think`` against single
  ``generate`` calls; query latency p50/p95 without thinking (the plain-embedding baseline), thinking
  (cache off), thinking with a warm cache; batched query throughput.
- ``compare``: the model against the joint O1 model (``o1-smollm2-135m``) on the same texts: indexing
  docs/s, and query latency p50 with thinking (cache off) and with a warm cache.
- ``think``: mean and p95 latency of one search with the thought cache off, for ``think`` never / auto /
  always, dense and hybrid, over the same queries with the model's own thinking settings; auto against
  always as a ratio, and how many queries auto thought on; the same queries (auto, hybrid) searched in one
  ``bulk.search_to_file`` call against one search each, per query.
- ``agree``: early stopping (``ThinkParams.agree``, 0.95): thinking for 32 queries in one batch and for
  single queries (cache off), with against without it, and how many thoughts it wrote.
- ``lexical``: the BM25 side of hybrid search rebuilt after one added document, reusing the saved tokens
  of unchanged texts against tokenizing every text; no model is loaded.
- ``ray``: indexing docs/s with ``o1rag index --ray local`` (1 and 2 encoder actors, one CPU each, start-up
  of the actors included, Ray itself already started) against the single-process index of the same texts.
- ``train``: one training step (forward + backward, LoRA) of the joint objective in tokens/s, and the
  cost of the joint single forward (``<query>q</query><emb><thought>t{eos}<emb>`` gives the thought's LM
  loss, ``v_q`` and ``v_t``) against separate forwards (an LM pass over query + thought, an embedding pass
  over the same sequence, and a query-only pass for ``v_q``): time per step and activation memory (bytes
  of the tensors autograd saves for the backward pass).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from o1_rag.embedder import O1Embedder
from o1_rag.evaluation.bench import BenchInput, Row, bench_compare, bench_core, bench_texts
from o1_rag.evaluation.bench_scale import bench_lexical, bench_ray, bench_training
from o1_rag.evaluation.bench_think import bench_agree, bench_think
from o1_rag.models import COMPOSED_MODELS, JOINT_MODEL

SUITES = ("core", "compare", "train", "think", "agree", "ray", "lexical")
ONLY_TEXTS = ("train", "lexical")  # suites that need no embedder


def run_bench(
    suites: list[str],
    data: Path | None,
    model: str,
    adapter: str | None,
    n_docs: int,
    max_new_tokens: int,
    device: str = "auto",
    think_queries: int = 16,
    precision: str = "auto",
    long_documents: str | None = None,
) -> tuple[str, list[Row]]:
    """Run the named suites; return a title and the rows (``long_documents``: the model's own when None)."""
    unknown = sorted(set(suites) - set(SUITES))
    if unknown:
        hint = (
            " (the LangChain concurrency benchmark: integrations/langchain/benchmarks/concurrency.py)"
            if "langchain" in unknown
            else ""
        )
        raise ValueError(f"unknown benchmark suite '{unknown[0]}': choose {', '.join(SUITES)}{hint}")
    workdir = Path(tempfile.mkdtemp(prefix="o1rag-bench-"))
    docs, queries = bench_texts(data, n_docs, 32)
    if len(queries) < 32:
        raise ValueError(f"the benchmark needs 32 queries, {data} has {len(queries)}")
    rows: list[Row] = []
    measured = []
    if "train" in suites:
        joint = COMPOSED_MODELS[model].thinker if model in COMPOSED_MODELS else model  # the joint objective
        rows += bench_training(joint, queries, docs, device)
        measured.append(f"training step of {model}")
    if "lexical" in suites:
        rows += bench_lexical(docs, workdir)
        measured.append("BM25 side rebuild")
    if set(suites) <= set(ONLY_TEXTS):
        where = torch.cuda.get_device_name(0) if torch.cuda.is_available() and device != "cpu" else "CPU"
        what = " and ".join(measured)
        return f"o1rag bench: {what}, {len(docs)} docs, {where}, {torch.get_num_threads()} threads", rows
    emb = O1Embedder.from_pretrained(
        model,
        adapter,
        device=device,
        precision=precision,
        cache=workdir / "thoughts.sqlite",
        long_documents=long_documents,
    )
    given = BenchInput(docs, queries, workdir, max_new_tokens)
    if "core" in suites:
        rows += bench_core(emb, given)
    if "compare" in suites:
        joint = O1Embedder.from_pretrained(
            JOINT_MODEL, device=device, precision=precision, cache=workdir / "joint.sqlite"
        )
        rows += bench_compare(emb, joint, given)
    if "think" in suites:
        rows += bench_think(emb, docs, queries[:think_queries], workdir)
    if "agree" in suites:
        rows += bench_agree(emb, queries, think_queries)
    if "ray" in suites:
        rows += bench_ray(emb, docs, workdir, model, adapter, device, precision, long_documents)
    device_name = (
        torch.cuda.get_device_name(0)
        if torch.cuda.is_available() and device != "cpu"
        else (f"CPU, {torch.get_num_threads()} threads")
    )
    title = (
        f"o1rag bench: {emb.describe()}, {len(docs)} docs, {max_new_tokens} new tokens per thought, "
        f"{device_name}"
    )
    return title, rows
