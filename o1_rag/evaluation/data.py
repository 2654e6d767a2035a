"""Evaluation data: a BEIR collection with its judged queries (``eval ir``) and a QA set (``eval rag``).

Every inconsistency (a judgement naming an unknown query or document, a QA record without a question) is
a ``DataError`` naming the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from o1_rag.data import DataError, iter_jsonl, load_corpus, load_qrels, load_queries


def load_collection(data_dir: str | Path, limit_queries: int | None = None):
    """Corpus, the queries that have judgements, and qrels; unknown ids in qrels are an error."""
    corpus = load_corpus(data_dir)
    queries = load_queries(data_dir)
    qrels = load_qrels(data_dir)
    if not qrels:
        raise DataError(f"{Path(data_dir) / 'qrels.tsv'}: no judgements")
    doc_ids = {d.id for d in corpus}
    unknown_q = sorted(set(qrels) - set(queries))
    if unknown_q:
        raise DataError(
            f"{Path(data_dir) / 'qrels.tsv'}: {len(unknown_q)} query ids not in queries.jsonl "
            f"(first: '{unknown_q[0]}')"
        )
    unknown_d = sorted({d for rel in qrels.values() for d in rel} - doc_ids)
    if unknown_d:
        raise DataError(
            f"{Path(data_dir) / 'qrels.tsv'}: {len(unknown_d)} document ids not in corpus.jsonl "
            f"(first: '{unknown_d[0]}')"
        )
    judged = {q: queries[q] for q in qrels if any(r > 0 for r in qrels[q].values())}
    if limit_queries is not None:
        if limit_queries <= 0:
            raise ValueError(f"--limit-queries must be > 0, got {limit_queries}")
        judged = dict(list(judged.items())[:limit_queries])
    qrels = {q: qrels[q] for q in judged}
    return corpus, judged, qrels


@dataclass
class QAItem:
    """One question of a QA set."""

    id: str
    question: str
    ground_truth: str
    contexts: list[str]
    context_ids: list[str] = field(default_factory=list)


def load_qa(data_dir: str | Path, limit: int | None = None) -> list[QAItem]:
    """Answerable questions of ``qa.jsonl``; reference ids come from ``qrels.tsv`` when present."""
    path = Path(data_dir) / "qa.jsonl"
    if not path.is_file():
        raise DataError(f"{path}: file not found (eval rag needs a QA set)")
    qrels = load_qrels(data_dir) if (Path(data_dir) / "qrels.tsv").is_file() else {}
    items: list[QAItem] = []
    for lineno, record in iter_jsonl(path):
        missing = [k for k in ("id", "question", "ground_truth") if not isinstance(record.get(k), (str, int))]
        if missing:
            raise DataError(f"{path}:{lineno}: missing field '{missing[0]}'")
        if record.get("answerable") is False or not str(record["ground_truth"]).strip():
            continue
        qid = str(record["id"])
        ids = [d for d, rel in qrels.get(qid, {}).items() if rel > 0]
        items.append(
            QAItem(
                qid,
                str(record["question"]),
                str(record["ground_truth"]),
                list(record.get("contexts") or []),
                ids,
            )
        )
    if limit is not None:
        if limit <= 0:
            raise ValueError(f"--limit must be > 0, got {limit}")
        items = items[:limit]
    if not items:
        raise DataError(f"{path}: no answerable questions")
    return items
