"""Thought sampling: how the temperature of a model's thoughts and the query weight move dense retrieval.

For one BEIR folder and a slice of its judged queries (``--queries START:END``, in the order of
``qrels.tsv``, as ``o1rag eval ir --limit-queries`` takes them), the evaluated model's thinker writes
``--num-thoughts`` thoughts per query at each temperature (seeded; through the thought cache, so a rerun
writes none again) and its encoder embeds them; each query vector is the thoughts' mean mixed with the
query-only vector at each query weight ``w`` (``o1-mix:w`` of ``o1rag eval ir``). Prints one row per
temperature: how many distinct thoughts a query got, then nDCG@10 at each weight (ranx, exact cosine
search) with a paired t-test against the query-only vector (``no thought``).

Used to choose a model's default temperature on held-out training queries (train/README.md):

    python evals/thought_sampling.py runs/scifact-val --queries 0:150 --temperatures 0.1,0.7,1.0
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from o1_rag import O1Embedder
from o1_rag.evaluation.data import load_collection
from o1_rag.evaluation.metrics import score_runs
from o1_rag.retrievers import exact_search
from o1_rag.thinkers import ThinkParams

DEPTH = 100  # hits kept per query (Recall@100's depth)


def floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("collection", type=Path, help="a BEIR-format folder")
    parser.add_argument("--model", default="o1-minilm", help="the evaluated model (alias or folder)")
    parser.add_argument("--queries", default="0:", help="START:END of the judged queries (qrels order)")
    parser.add_argument("--temperatures", type=floats, default=[0.1, 1.0])
    parser.add_argument("--weights", type=floats, default=[0.0, 0.5, 0.75], help="query weights w")
    parser.add_argument("--num-thoughts", type=int, default=3)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    start, _, end = args.queries.partition(":")
    corpus, queries, qrels = load_collection(str(args.collection))
    qids = list(queries)[int(start or 0) : int(end) if end else None]
    if not qids:
        parser.error(f"--queries {args.queries} selects no query of {len(queries)}")
    texts = [queries[q] for q in qids]
    emb = O1Embedder.from_pretrained(args.model)
    print(f"model {emb.describe()}: {len(qids)} queries of {args.collection.name}", file=sys.stderr)
    docs = emb.embed_documents([d.full_text() for d in corpus])
    ids = [d.id for d in corpus]
    runs = {"no thought": exact_search(emb.embed_queries(texts, think=False), docs, ids, qids, DEPTH)}
    distinct = {}
    for temperature in args.temperatures:
        params = ThinkParams(args.num_thoughts, args.max_new_tokens, temperature, seed=args.seed)
        thoughts = emb.think(texts, params=params)
        distinct[temperature] = np.mean([len(set(t)) for t in thoughts])
        for w in args.weights:
            vectors = emb.embed_with_thoughts(texts, thoughts, query_weight=w)
            runs[f"{temperature}/{w}"] = exact_search(vectors, docs, ids, qids, DEPTH)
    judged = {q: qrels[q] for q in qids}
    scores, _, p_values, _ = score_runs(judged, runs, "no thought")
    print(f"no thought: nDCG@10 {scores['no thought']['ndcg@10']:.4f}")
    header = " | ".join(f"w = {w}" for w in args.weights)
    print(f"| temperature | distinct thoughts per query | {header} |")
    print("|---" * (2 + len(args.weights)) + "|")
    for temperature in args.temperatures:
        cells = [
            f"{scores[name]['ndcg@10']:.4f} (p = {p_values[name]['ndcg@10']:.2g})"
            for name in (f"{temperature}/{w}" for w in args.weights)
        ]
        print(f"| {temperature} | {distinct[temperature]:.2f} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
