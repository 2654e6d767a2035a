"""Write a BEIR folder of held-out training queries: those a thoughts file did not train on.

    python train/heldout.py ../shared/data/scifact train/data/scifact-train.thoughts.jsonl runs/scifact-val

The folder holds a link to the collection's corpus, the held-out queries of ``train_queries.jsonl`` that
have judgements in ``train_qrels.tsv`` (file order kept), and their judgements. Use it to choose query-side
defaults (think mode, query weight) before any evaluation collection is scored:

    o1rag eval ir runs/scifact-val --systems o1-nothink,o1 --limit-queries 150 --exact
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("collection", type=Path, help="BEIR folder with train_queries.jsonl, train_qrels.tsv")
    parser.add_argument("thoughts", type=Path, help="thoughts jsonl whose queries to leave out")
    parser.add_argument("output", type=Path, help="folder to write (must not exist)")
    args = parser.parse_args(argv)
    queries_file = args.collection / "train_queries.jsonl"
    qrels_file = args.collection / "train_qrels.tsv"
    for path in (queries_file, qrels_file, args.collection / "corpus.jsonl", args.thoughts):
        if not path.is_file():
            print(f"error: {path} not found", file=sys.stderr)
            return 2
    if args.output.exists():
        print(f"error: {args.output} exists; give a new folder", file=sys.stderr)
        return 2
    trained = {json.loads(line)["query_id"] for line in args.thoughts.open() if line.strip()}
    rows = [line.rstrip("\n").split("\t") for line in qrels_file.open() if line.strip()][1:]
    judged = {row[0] for row in rows}
    held = [
        query
        for query in map(json.loads, filter(str.strip, queries_file.open()))
        if query["_id"] in judged and query["_id"] not in trained
    ]
    keep = {query["_id"] for query in held}
    tmp = args.output.with_name(f".{args.output.name}.tmp")
    tmp.mkdir(parents=True)
    os.symlink((args.collection / "corpus.jsonl").resolve(), tmp / "corpus.jsonl")
    with (tmp / "queries.jsonl").open("w") as out:
        out.writelines(json.dumps(query) + "\n" for query in held)
    with (tmp / "qrels.tsv").open("w") as out:
        out.write("query-id\tcorpus-id\tscore\n")
        out.writelines("\t".join(row) + "\n" for row in rows if row[0] in keep)
    tmp.rename(args.output)
    print(f"{len(held)} held-out queries ({len(trained)} trained on) -> {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
