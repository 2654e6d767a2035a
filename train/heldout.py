"""Write a BEIR folder of held-out training queries: those a thoughts file did not train on.

    python train/heldout.py ../shared/data/scifact train/data/scifact-train.thoughts.jsonl runs/scifact-val

The folder holds a link to the collection's corpus, the held-out queries of ``train_queries.jsonl`` that
have judgements in ``train_qrels.tsv`` (file order kept), and their judgements. Use it to choose query-side
defaults (think mode, query weight) before any evaluation collection is scored:

    o1rag eval ir runs/scifact-val --systems o1-nothink,o1 --limit-queries 150 --exact

``--skip N`` leaves out the first N held-out queries as well: the rest trains the think="auto" gate while
the first N stay unseen by it:

    python train/heldout.py ../shared/data/scifact train/data/scifact-train.thoughts.jsonl \
        runs/scifact-gate --skip 150
    o1rag train-gate runs/scifact-gate -o o1_rag/adapters/o1-minilm/o1_gate.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from o1_rag.data import DataError, iter_jsonl, load_qrels, load_queries


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("collection", type=Path, help="BEIR folder with train_queries.jsonl, train_qrels.tsv")
    parser.add_argument("thoughts", type=Path, help="thoughts jsonl whose queries to leave out")
    parser.add_argument("output", type=Path, help="folder to write (must not exist)")
    parser.add_argument("--skip", type=int, default=0, help="leave out the first N held-out queries too")
    args = parser.parse_args(argv)
    if args.output.exists():
        print(f"error: {args.output} exists; give a new folder", file=sys.stderr)
        return 2
    try:
        queries = load_queries(args.collection, "train_queries.jsonl")
        qrels = load_qrels(args.collection, "train_qrels.tsv")
        trained = set()
        for lineno, record in iter_jsonl(args.thoughts):
            if "query_id" not in record:
                raise DataError(f"{args.thoughts}:{lineno}: missing field 'query_id'")
            trained.add(str(record["query_id"]))
        if not (args.collection / "corpus.jsonl").is_file():
            raise DataError(f"{args.collection / 'corpus.jsonl'}: file not found")
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.skip < 0:
        print(f"error: --skip must be >= 0, got {args.skip}", file=sys.stderr)
        return 2
    held = [qid for qid in queries if qid in qrels and qid not in trained][args.skip :]
    tmp = args.output.with_name(f".{args.output.name}.tmp")
    tmp.mkdir(parents=True)
    os.symlink((args.collection / "corpus.jsonl").resolve(), tmp / "corpus.jsonl")
    with (tmp / "queries.jsonl").open("w") as out:
        out.writelines(json.dumps({"_id": qid, "text": queries[qid]}) + "\n" for qid in held)
    with (tmp / "qrels.tsv").open("w") as out:
        out.write("query-id\tcorpus-id\tscore\n")
        out.writelines(f"{qid}\t{doc}\t{score}\n" for qid in held for doc, score in qrels[qid].items())
    tmp.rename(args.output)
    skipped = f", first {args.skip} held-out left out" if args.skip else ""
    print(f"{len(held)} held-out queries ({len(trained)} trained on{skipped}) -> {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
