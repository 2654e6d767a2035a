"""Hybrid search when BM25 is weak: a stress test of the fusion and of pseudo-relevance feedback.

BM25 runs over the first ``--words`` words of each document only (a stand-in for a collection whose
lexical side is far weaker than its dense side); the dense side is the evaluated model without thinking
(``o1-nothink``) over the whole documents, through the evaluation's own systems. Prints nDCG@10 of each side,
of the hybrid without feedback and with ``--feedback`` documents, for each collection given.

    python evals/weak_lexical.py ../shared/data/scifact ../shared/data/nfcorpus --words 10 --exact
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from o1_rag.data import Document
from o1_rag.evaluation.baselines import BM25System, HybridSystem
from o1_rag.evaluation.context import EvalContext, EvalSettings
from o1_rag.evaluation.data import load_collection
from o1_rag.evaluation.metrics import score_runs
from o1_rag.evaluation.o1_system import O1System
from o1_rag.retrievers import BM25Retriever


class TruncatedBM25(BM25System):
    """BM25 over the first ``words`` words of each document."""

    def __init__(self, words: int) -> None:
        super().__init__()
        self.words = words

    def lexical(self, corpus: list[Document]) -> BM25Retriever:
        short = [Document(d.id, "", " ".join(d.full_text().split()[: self.words])) for d in corpus]
        return super().lexical(short)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("collections", nargs="+", help="BEIR-format folders")
    parser.add_argument("--words", type=int, default=10, help="words of each document BM25 sees")
    parser.add_argument("--feedback", type=int, default=3, help="feedback documents of the second hybrid")
    parser.add_argument("--limit-queries", type=int, default=None)
    parser.add_argument("--model", default=None, help="[default: the shipped default model]")
    parser.add_argument("--exact", action="store_true", help="exact in-memory search")
    args = parser.parse_args()
    settings = EvalSettings(exact=args.exact)
    if args.model:
        settings = dataclasses.replace(settings, model=args.model)
    context = EvalContext.create(settings)
    print(
        f"| collection | queries | bm25 (first {args.words} words) | o1-nothink | hybrid | "
        f"hybrid + feedback {args.feedback} |"
    )
    print("|---|---|---|---|---|---|")
    for path in args.collections:
        corpus, queries, qrels = load_collection(path, args.limit_queries)
        lexical = TruncatedBM25(args.words)
        dense = O1System(False, context)
        systems = {"bm25": lexical, "dense": dense}
        for name, feedback in (("hybrid", 0), ("feedback", args.feedback)):
            hybrid = HybridSystem(name, dense, feedback)
            hybrid.lexical = lexical
            systems[name] = hybrid
        runs = {name: system.retrieve(corpus, queries, 100) for name, system in systems.items()}
        scores, _, tests, _ = score_runs(qrels, runs, "hybrid")
        cells = " | ".join(f"{scores[name]['ndcg@10']:.4f}" for name in systems)
        p = tests.get("feedback", {}).get("ndcg@10")
        cells += "" if p is None else f" (p = {p:.2g} vs hybrid)"
        print(f"| {path.rstrip('/').split('/')[-1]} | {len(queries)} | {cells} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
