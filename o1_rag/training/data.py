"""Training examples from ``o1rag synth`` output and the collator that turns them into one batch."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from o1_rag.data import DataError, iter_jsonl
from o1_rag.generation import pad_sequences
from o1_rag.prompts import O1Format


def load_examples(
    paths: list[str | Path], min_negatives: int = 0, data_root: str | Path | None = None
) -> list[dict[str, Any]]:
    """Records ``{query, thought, positives, negatives, ...}`` from synthesis jsonl files.

    Ids-only records (from ``export_ids``: ``collection``, ``query_id``, ``positive_ids``,
    ``negative_ids``) get their texts joined back from the BEIR folder ``data_root/collection``; a reference
    answer left out of such a record (``null`` among its ``candidates``) comes back from ``answers_file``.
    """
    examples: list[dict[str, Any]] = []
    collections: dict[tuple[str, str], Any] = {}
    for path in map(Path, paths):
        for lineno, record in iter_jsonl(path):
            where = f"{path}:{lineno}"
            if "query" not in record and "collection" in record:
                record = _join_texts(record, where, data_root, collections)
            for key in ("query", "thought", "positives"):
                if key not in record:
                    raise DataError(f"{where}: missing field '{key}'")
            if not record["positives"]:
                raise DataError(f"{where}: no positive passage")
            if len(record.get("negatives", [])) >= min_negatives:
                examples.append(record)
    if not examples:
        raise DataError(f"no training examples in {', '.join(map(str, paths))}")
    return examples


def _join_texts(
    record: dict[str, Any],
    where: str,
    data_root: str | Path | None,
    cache: dict[tuple[str, str], Any],
) -> dict[str, Any]:
    """Fill ``query``, ``positives`` and ``negatives`` (and left-out reference answers) of an ids-only record
    from its collection."""
    from o1_rag.data import load_answers, load_corpus, load_queries

    if data_root is None:
        raise DataError(f"{where}: record holds ids only; set [data] data_root to the collections' folder")
    name, queries_file = str(record["collection"]), str(record.get("queries_file", "queries.jsonl"))
    if (name, queries_file) not in cache:
        folder = Path(data_root) / name
        if not folder.is_dir():
            raise DataError(f"{where}: collection folder {folder} not found (check [data] data_root)")
        texts = {d.id: d.full_text() for d in load_corpus(folder)}
        cache[(name, queries_file)] = (load_queries(folder, queries_file), texts)
    queries, texts = cache[(name, queries_file)]
    for key in ("query_id", "positive_ids"):
        if key not in record:
            raise DataError(f"{where}: missing field '{key}'")
    missing = [i for i in (*record["positive_ids"], *record.get("negative_ids", [])) if i not in texts]
    if str(record["query_id"]) not in queries or missing:
        what = f"document '{missing[0]}'" if missing else f"query '{record['query_id']}'"
        raise DataError(f"{where}: {what} not in collection '{name}'")
    joined = {
        **record,
        "query": queries[str(record["query_id"])],
        "positives": [texts[i] for i in record["positive_ids"]],
        "negatives": [texts[i] for i in record.get("negative_ids", [])],
    }
    if record.get("answers_file"):
        key = (name, "answers:" + str(record["answers_file"]))
        if key not in cache:
            cache[key] = load_answers(Path(data_root) / name / str(record["answers_file"]))
        answer = cache[key].get(str(record["query_id"]))
        if answer is None:
            raise DataError(
                f"{where}: no answer for query '{record['query_id']}' in {record['answers_file']}"
            )
        joined["candidates"] = [answer if c is None else c for c in record.get("candidates", [])]
        if joined.get("thought") is None:
            joined["thought"] = answer
    return joined


@dataclass
class O1Collator:
    """Builds a joint batch: query+thought sequences with thought-only labels, and document groups.

    Each example contributes one query sequence ``<query>q</query><emb><thought>t{eos}<emb>`` (labels on
    ``t{eos}`` only) and ``group_size`` documents (its positive, then hard negatives; missing negatives are
    filled with other examples' positives). ``vq_share`` of the examples are marked to contrast ``v_q``.
    """

    fmt: O1Format
    pad_id: int
    group_size: int = 8
    vq_share: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def query_labels(self, ids: list[int]) -> list[int]:
        """-100 everywhere except the thought tokens and the eos that ends them."""
        thought_at = ids.index(self.fmt.token_id("<thought>"))
        labels = [-100] * len(ids)
        for i in range(thought_at + 1, len(ids) - 1):  # thought tokens and eos; the last <emb> stays masked
            labels[i] = ids[i]
        return labels

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        queries = [self.fmt.query_with_thought(e["query"], e["thought"]) for e in examples]
        labels = [self.query_labels(ids) for ids in queries]
        docs: list[list[int]] = []
        for i, example in enumerate(examples):
            group = [example["positives"][0], *example.get("negatives", [])[: self.group_size - 1]]
            fillers = [e["positives"][0] for j, e in enumerate(examples) if j != i]
            while len(group) < self.group_size:
                group.append(self._rng.choice(fillers) if fillers else example["positives"][0])
            docs.extend(self.fmt.document(text) for text in group)
        q_ids, q_mask = pad_sequences(queries, self.pad_id, "right")
        q_labels, _ = pad_sequences(labels, -100, "right")
        d_ids, d_mask = pad_sequences(docs, self.pad_id, "right")
        use_vq = torch.tensor([self._rng.random() < self.vq_share for _ in examples])
        batch = {
            "input_ids": q_ids,
            "attention_mask": q_mask,
            "labels": q_labels,
            "doc_input_ids": d_ids,
            "doc_attention_mask": d_mask,
            "use_vq": use_vq,
        }
        if all("teacher" in e and "candidates" in e for e in examples):
            k = min(len(e["candidates"]) for e in examples)
            cands = [
                self.fmt.query_with_thought(e["query"], c) for e in examples for c in e["candidates"][:k]
            ]
            batch["cand_input_ids"], batch["cand_attention_mask"] = pad_sequences(cands, self.pad_id, "right")
            batch["teacher"] = torch.tensor([e["teacher"][:k] for e in examples], dtype=torch.float)
            batch["teacher"] = batch["teacher"] / batch["teacher"].sum(dim=1, keepdim=True)
        return batch
