"""``o1rag eval ir``: several retrieval systems on one BEIR collection, scored with ranx.

Metrics: nDCG@10, Recall@100, MRR@10, plus a paired t-test (ranx ``compare``) of every system against a
baseline, and per-query scores for plots.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from o1_rag.evaluation.data import load_collection
from o1_rag.evaluation.metrics import score_runs
from o1_rag.evaluation.systems import EvalSettings, build_system, parse_systems

logger = logging.getLogger(__name__)

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
    settings = replace(settings or EvalSettings(), dataset=Path(data_dir).resolve().name)
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
