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


def load_examples(paths: list[str | Path], min_negatives: int = 0) -> list[dict[str, Any]]:
    """Records ``{query, thought, positives, negatives, ...}`` from synthesis jsonl files."""
    examples: list[dict[str, Any]] = []
    for path in map(Path, paths):
        for lineno, record in iter_jsonl(path):
            for key in ("query", "thought", "positives"):
                if key not in record:
                    raise DataError(f"{path}:{lineno}: missing field '{key}'")
            if not record["positives"]:
                raise DataError(f"{path}:{lineno}: no positive passage")
            if len(record.get("negatives", [])) >= min_negatives:
                examples.append(record)
    if not examples:
        raise DataError(f"no training examples in {', '.join(map(str, paths))}")
    return examples


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
