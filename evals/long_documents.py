"""Long documents: how much of each collection an encoder's input length drops, and how a document past it is
best embedded, with the encoder of the evaluated model and no thinking (query-only vectors).

For each BEIR folder: the share of documents longer than the encoder's input and of their tokens it never
reads; then nDCG@10 and Recall@100 (ranx, exact cosine search) of

- ``truncate``: the first window only (sentence-transformers' own behaviour),
- ``windows``: what ``long_documents="windows"`` ships: normalise(first window + mean of all windows),
- ``mean``: the normalised mean of all windows,
- ``best window``: a document scores by its best window (MaxP; needs one vector per window in a store),
- ``512 tokens`` (with ``--long-input``): the whole document read up to 512 tokens in one pass.

The windows are those of ``o1_rag.encoders.windows.split_windows``; every window is embedded once.

    python evals/long_documents.py runs/scifact-val ../shared/data/cranfield --long-input
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from o1_rag.encoders import SentenceTransformerEncoder, normalise_rows
from o1_rag.encoders.windows import combine_windows, split_windows, window_size
from o1_rag.evaluation.data import load_collection
from o1_rag.evaluation.metrics import score_runs
from o1_rag.retrievers import top_k


def ranking(scores: np.ndarray, qids: list[str], ids: list[str], depth: int = 100) -> dict:
    return {q: top_k(scores[i], ids, depth) for i, q in enumerate(qids)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("collections", nargs="+", type=Path, help="BEIR-format folders")
    parser.add_argument("--encoder", default="o1-minilm", help="a sentence-transformers encoder or alias")
    parser.add_argument("--limit-queries", type=int, default=None)
    parser.add_argument("--long-input", action="store_true", help="also read each document up to 512 tokens")
    args = parser.parse_args()
    enc = SentenceTransformerEncoder(args.encoder, long_documents="truncate")
    tokenizer, size = enc.model.tokenizer, window_size(enc.model.tokenizer, enc.model.max_seq_length)
    print(f"encoder {enc.describe()}: windows of {size} tokens", file=sys.stderr)
    names = ("truncate", "windows", "mean", "best window") + (("512 tokens",) if args.long_input else ())
    print(
        "| collection | documents over the input | tokens not read | windows per document | "
        + " | ".join(f"{name}: nDCG@10 / R@100" for name in names)
        + " |"
    )
    print("|---" * (8 + args.long_input) + "|")
    embedded: dict[object, np.ndarray] = {}
    for folder in args.collections:
        corpus, queries, qrels = load_collection(str(folder), args.limit_queries)
        texts, ids = [d.full_text() for d in corpus], [d.id for d in corpus]
        lengths = np.array([len(t) for t in tokenizer(texts, add_special_tokens=False)["input_ids"]])
        windows = [split_windows(t, tokenizer, size) for t in texts]
        counts = [len(w) for w in windows]
        key = (folder / "corpus.jsonl").resolve()  # folders sharing a corpus embed it once
        if key not in embedded:
            embedded[key] = enc.embed_documents([w for row in windows for w in row])
        vectors = embedded[key]
        owner = np.repeat(np.arange(len(texts)), counts)
        qids = list(queries)
        q = enc.embed_queries([queries[i] for i in qids])
        first = vectors[np.cumsum([0, *counts[:-1]])]
        mean = np.zeros((len(texts), vectors.shape[1]))
        np.add.at(mean, owner, vectors)
        per_window = q @ vectors.T
        best = np.full((len(qids), len(texts)), -np.inf)
        for j, doc in enumerate(owner):
            best[:, doc] = np.maximum(best[:, doc], per_window[:, j])
        runs = {
            "truncate": q @ first.T,
            "windows": q @ combine_windows(vectors, counts).T,
            "mean": q @ normalise_rows(mean).T,
            "best window": best,
        }
        if args.long_input:
            if (key, 512) not in embedded:
                original, enc.model.max_seq_length = enc.model.max_seq_length, 512
                embedded[(key, 512)] = enc.embed_documents(texts)
                enc.model.max_seq_length = original
            runs["512 tokens"] = q @ embedded[(key, 512)].T
        scores, _, p_values, _ = score_runs(
            qrels, {name: ranking(s, qids, ids) for name, s in runs.items()}, "truncate"
        )
        cells = [
            f"{scores[name]['ndcg@10']:.3f} / {scores[name]['recall@100']:.3f}"
            + (f" (p = {p_values[name]['ndcg@10']:.2g})" if name in p_values else "")
            for name in runs
        ]
        lost = np.clip(lengths - size, 0, None).sum() / lengths.sum()
        print(
            f"| {folder.name} ({len(qids)} queries) | {np.mean(lengths > size):.0%} | {lost:.0%} | "
            f"{np.mean(counts):.2f} | " + " | ".join(cells) + " |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
