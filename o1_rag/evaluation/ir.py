"""``o1rag eval ir``: several retrieval systems on one BEIR collection, scored with ranx.

Metrics: nDCG@10, Recall@100, MRR@10, plus a paired t-test (ranx ``compare``) of every system against a
baseline, and per-query scores for plots.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from o1_rag.data import DataError, load_corpus, load_qrels, load_queries
from o1_rag.evaluation.systems import EvalSettings, build_system, parse_systems

logger = logging.getLogger(__name__)

METRICS = ("ndcg@10", "recall@100", "mrr@10")
DEPTH = 100  # documents retrieved per query (Recall@100)


@dataclass
class IRResult:
    """Scores of several systems on one collection."""

    dataset: str
    systems: list[str]
    baseline: str
    num_queries: int
    num_docs: int
    scores: dict[str, dict[str, float]]  # system -> metric -> mean
    per_query: dict[str, dict[str, dict[str, float]]]  # system -> metric -> query id -> score
    p_values: dict[str, dict[str, float]]  # system -> metric -> p (vs baseline)
    win_tie_loss: dict[str, dict[str, dict[str, int]]]  # system -> metric -> {W, T, L} vs baseline
    seconds: dict[str, float]
    examples: dict[str, dict[str, Any]] = field(default_factory=dict)  # system -> query id -> thoughts
    notes: dict[str, str] = field(default_factory=dict)  # system -> e.g. how often it thought

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


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


def evaluate_ir(
    data_dir: str | Path,
    systems: str,
    settings: EvalSettings | None = None,
    baseline: str | None = None,
    limit_queries: int | None = None,
) -> IRResult:
    """Run every system in ``systems`` (comma-separated specs) on the collection and score it with ranx."""
    from ranx import Run

    specs = parse_systems(systems)
    baseline = baseline or specs[0]
    if baseline not in specs:
        raise ValueError(f"baseline '{baseline}' is not among the systems ({', '.join(specs)})")
    settings = settings or EvalSettings()
    settings.dataset = Path(data_dir).resolve().name
    corpus, queries, qrels = load_collection(data_dir, limit_queries)
    built = [build_system(spec, settings) for spec in specs]
    runs: list[Any] = []
    seconds: dict[str, float] = {}
    examples: dict[str, dict[str, Any]] = {}
    notes: dict[str, str] = {}
    for n, (spec, system) in enumerate(zip(specs, built, strict=True)):
        if settings.progress is not None:
            settings.progress("systems", n, len(specs))
        logger.info("%s: retrieving for %d queries over %d documents", spec, len(queries), len(corpus))
        start = time.perf_counter()
        ranking = system.retrieve(corpus, queries, DEPTH)
        seconds[spec] = time.perf_counter() - start
        for qid in queries:  # ranx needs every query present; an empty ranking scores zero
            ranking.setdefault(qid, {})
            if not ranking[qid]:
                ranking[qid] = {"__none__": 0.0}
        runs.append(Run(ranking, name=spec))
        if getattr(system, "note", ""):
            notes[spec] = system.note
        sample = list(queries)[:3]
        if getattr(system, "thoughts", None):
            examples[spec] = {q: system.thoughts.get(q) for q in sample}
        elif getattr(system, "passages", None):
            examples[spec] = {q: [system.passages.get(queries[q], "")] for q in sample}
    if settings.progress is not None:
        settings.progress("systems", len(specs), len(specs))
    scores, per_query, p_values, wtl = score_runs(qrels, dict(zip(specs, runs, strict=True)), baseline)
    return IRResult(
        settings.dataset,
        specs,
        baseline,
        len(queries),
        len(corpus),
        scores,
        per_query,
        p_values,
        wtl,
        seconds,
        examples,
        notes,
    )


def score_runs(
    qrels: dict[str, dict[str, int]], runs: dict[str, Any], baseline: str
) -> tuple[
    dict[str, dict[str, float]],
    dict[str, dict[str, dict[str, float]]],
    dict[str, dict[str, float]],
    dict[str, dict[str, dict[str, int]]],
]:
    """Mean and per-query metrics of each run, and paired t-tests and win/tie/loss against ``baseline``.

    ``runs`` maps a system name to a ranking (``{qid: {doc: score}}``) or a ranx ``Run``.
    """
    from ranx import Qrels, Run, compare, evaluate

    ranx_qrels = Qrels(qrels)
    named = {s: r if isinstance(r, Run) else Run(r, name=s) for s, r in runs.items()}
    for name, run in named.items():
        run.name = name
    scores = {
        s: {m: float(v) for m, v in evaluate(ranx_qrels, run, list(METRICS), make_comparable=True).items()}
        for s, run in named.items()
    }
    qids = sorted(qrels)  # ranx reports per-query values in sorted query-id order
    per_query: dict[str, dict[str, dict[str, float]]] = {}
    for s, run in named.items():
        per_query[s] = {}
        for metric in METRICS:
            values = list(evaluate(ranx_qrels, run, metric, return_mean=False, make_comparable=True))
            if len(values) != len(qids):
                raise RuntimeError(f"ranx returned {len(values)} per-query scores for {len(qids)} queries")
            per_query[s][metric] = {q: float(v) for q, v in zip(qids, values, strict=True)}
    others = [s for s in named if s != baseline]
    if not others:
        return scores, per_query, {}, {}
    table = compare(
        ranx_qrels, list(named.values()), list(METRICS), stat_test="student", max_p=0.05, make_comparable=True
    ).to_dict()
    p_values = {s: {m: float(table[baseline]["comparisons"][s][m]) for m in METRICS} for s in others}
    wtl = {s: {m: dict(table[s]["win_tie_loss"][baseline][m]) for m in METRICS} for s in others}
    return scores, per_query, p_values, wtl
