"""``o1rag synth``: training queries with known positives -> jsonl of voted thoughts and hard negatives.

Each output line: ``{query_id, query, thought, positives, negatives, votes, candidates, sources, teacher,
positive_ids, negative_ids}``. Where a query has a reference answer (``--answers``, e.g. a QA set's long
answers), it joins the expert's drafts as one more candidate (``sources`` says which is which) and the
committee votes over all of them. The file is append-only and resumable: finished query ids are skipped
after a kill, and a half-written last line is cut away before appending.

``export_ids`` writes a shareable copy without the collection's texts (query, passages): ids, thoughts and
votes only, plus the collection's name; training joins the texts back from the collection folder (reference
answers too: they are the collection's text, so the copy holds ``null`` in their place).
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from o1_rag.data import (
    DataError,
    Document,
    iter_jsonl,
    load_answers,
    load_corpus,
    load_qrels,
    load_queries,
)
from o1_rag.files import append_lines, atomic_write, finished_keys
from o1_rag.synthesis.committee import BM25Member, Member, vote
from o1_rag.synthesis.expert import Expert, expert_prompt, pick_examples

logger = logging.getLogger(__name__)


@dataclass
class TrainingQuery:
    """A query with its positive documents."""

    id: str
    text: str
    positives: list[Document]
    reference: str | None = None


def load_training_queries(
    source: str | Path,
    queries_file: str = "queries.jsonl",
    qrels_file: str = "qrels.tsv",
    answers_file: str | None = None,
) -> tuple[list[TrainingQuery], list[Document]]:
    """From a BEIR folder (queries + qrels + corpus) or a jsonl of ``{query, positive}`` records.

    Reference answers come from ``answers_file`` in the BEIR folder (see ``data.load_answers``) or from an
    optional ``answer`` field of the jsonl records.
    """
    path = Path(source)
    if path.is_file():
        if answers_file:
            raise DataError("answers for a jsonl source go in each record's 'answer' field, not a file")
        items, corpus = [], []
        for lineno, record in iter_jsonl(path):
            if not all(isinstance(record.get(k), str) for k in ("query", "positive")):
                raise DataError(f'{path}:{lineno}: expected {{"query": str, "positive": str}}')
            answer = record.get("answer")
            if answer is not None and not isinstance(answer, str):
                raise DataError(f"{path}:{lineno}: field 'answer' must be a string")
            doc = Document(f"p{lineno}", "", record["positive"])
            corpus.append(doc)
            qid = str(record.get("id", lineno))
            items.append(TrainingQuery(qid, record["query"], [doc], (answer or "").strip() or None))
        if not items:
            raise DataError(f"{path}: no records")
        return items, corpus
    corpus = load_corpus(path)
    by_id = {d.id: d for d in corpus}
    queries = load_queries(path, queries_file)
    qrels = load_qrels(path, qrels_file)
    items = []
    for qid, rels in qrels.items():
        if qid not in queries:
            raise DataError(f"{path / qrels_file}: query id '{qid}' not in {queries_file}")
        missing = [d for d in rels if d not in by_id]
        if missing:
            raise DataError(f"{path / qrels_file}: document id '{missing[0]}' not in corpus.jsonl")
        positives = [by_id[d] for d, r in rels.items() if r > 0]
        if positives:
            items.append(TrainingQuery(qid, queries[qid], positives))
    if not items:
        raise DataError(f"{path / qrels_file}: no query with a positive document")
    if answers_file:
        answers = load_answers(path / answers_file)
        for item in items:
            item.reference = answers.get(item.id)
        if not any(item.reference for item in items):
            raise DataError(f"{path / answers_file}: no answer matches a query id of {queries_file}")
    return items, corpus


def finished_ids(output: Path) -> set[str]:
    """Query ids already in ``output``; a torn last line (a kill mid-write) is removed first."""
    return finished_keys(output, "query_id", DataError, "a synthesis record")


TEXT_FIELDS = ("query", "positives", "negatives")
EXPERT, REFERENCE = "expert", "reference"


def export_ids(
    source: Path,
    output: Path,
    collection: str,
    queries_file: str = "queries.jsonl",
    answers_file: str | None = None,
) -> int:
    """Copy synthesis records to ``output`` without the collection's texts; returns the record count.

    Each line keeps ``query_id``, ``positive_ids``, ``negative_ids``, the thoughts and the votes, and names
    ``collection`` (a BEIR folder name) and ``queries_file`` so that training can join the texts back.
    """
    lines = []
    for lineno, record in iter_jsonl(source):
        if "positive_ids" not in record or "query_id" not in record:
            raise DataError(f"{source}:{lineno}: no query_id/positive_ids (synthesized from a jsonl source?)")
        slim = {k: v for k, v in record.items() if k not in TEXT_FIELDS}
        slim.update(collection=collection, queries_file=queries_file)
        sources = record.get("sources", [])
        if REFERENCE in sources:
            if not answers_file:
                raise DataError(f"{source}:{lineno}: holds a reference answer; name its answers file")
            at = sources.index(REFERENCE)
            slim["candidates"] = [None if i == at else c for i, c in enumerate(record["candidates"])]
            if record.get("winner") == at:
                slim["thought"] = None
            slim["answers_file"] = answers_file
        lines.append(json.dumps(slim, ensure_ascii=False))
    if not lines:
        raise DataError(f"{source}: no records")
    atomic_write(output, "\n".join(lines) + "\n")
    return len(lines)


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def synthesize(
    items: Sequence[TrainingQuery],
    corpus: Sequence[Document],
    expert: Expert,
    members: Sequence[Member],
    output: Path,
    *,
    k: int = 3,
    rule: str = "soft",
    num_negatives: int = 7,
    num_examples: int = 3,
    example_chars: int = 600,
    chunk: int = 16,
    seed: int = 0,
    bm25: BM25Member | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Write one voted record per query to ``output`` (appending; finished ids skipped). Returns how many
    were written in this run."""
    if k < 1:
        raise ValueError(f"k (expert candidates per query) must be >= 1, got {k}")
    output.parent.mkdir(parents=True, exist_ok=True)
    done = finished_ids(output)
    todo = [item for item in items if item.id not in done]
    if k < 2 and any(not item.reference for item in todo):
        raise ValueError(f"k = {k} leaves queries without a reference answer nothing to vote on; use k >= 2")
    pool = [(item.text, item.positives[0].full_text()) for item in items]
    by_id = {d.id: d for d in corpus}
    bm25 = bm25 or next((m for m in members if isinstance(m, BM25Member)), None) or BM25Member(corpus)
    written = 0
    if progress:
        progress(0, len(todo))
    for part in _chunks(todo, chunk):
        prompts = []
        for item in part:
            rng = random.Random(f"{seed}:{item.id}")
            examples = pick_examples(pool, item.text, num_examples, rng)
            prompts.append(expert_prompt(item.text, examples, example_chars))
        drafts = expert.draft(prompts, k, seed)
        lines = []
        for item, drafted in zip(part, drafts, strict=True):
            candidates = [*drafted, *([item.reference] if item.reference else [])]
            sources = [EXPERT] * len(drafted) + ([REFERENCE] if item.reference else [])
            texts = [f"{item.text} {c}" for c in candidates]
            outcome = vote({m.name: m.score(texts, item.positives[0]) for m in members}, rule)
            exclude = {d.id for d in item.positives}
            negative_ids = bm25.top_k(f"{item.text} {candidates[outcome.winner]}", num_negatives, exclude)
            lines.append(
                json.dumps(
                    {
                        "query_id": item.id,
                        "query": item.text,
                        "thought": candidates[outcome.winner],
                        "positives": [d.full_text() for d in item.positives],
                        "negatives": [by_id[d].full_text() for d in negative_ids],
                        "votes": outcome.votes,
                        "teacher": outcome.teacher,
                        "candidates": candidates,
                        "sources": sources,
                        "winner": outcome.winner,
                        "positive_ids": [d.id for d in item.positives],
                        "negative_ids": negative_ids,
                    },
                    ensure_ascii=False,
                )
            )
        append_lines(output, lines)
        written += len(lines)
        if progress:
            progress(written, len(todo))
    return written
