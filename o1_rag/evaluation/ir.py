"""``o1rag eval ir``: several retrieval systems on one BEIR collection, scored with ranx.

Metrics: nDCG@10, Recall@100, MRR@10, plus a paired t-test (ranx ``compare``) of every system against a
baseline, and per-query scores for plots.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from o1_rag.evaluation.context import EvalContext, EvalSettings, Progress
from o1_rag.evaluation.data import load_collection
from o1_rag.evaluation.metrics import score_runs
from o1_rag.evaluation.runner import run_systems
from o1_rag.evaluation.systems import parse_systems

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
    progress: Progress | None = None,
) -> IRResult:
    """Run every system in ``systems`` (comma-separated specs) on the collection and score it with ranx.

    ``progress(label, done, total)`` is told as systems, indexing and thinking advance."""
    from ranx import Run

    specs = parse_systems(systems)
    baseline = baseline or specs[0]
    if baseline not in specs:
        raise ValueError(f"baseline '{baseline}' is not among the systems ({', '.join(specs)})")
    corpus, queries, qrels = load_collection(data_dir, limit_queries)
    runs = run_systems(specs, corpus, queries, DEPTH, EvalContext.create(settings, progress))
    ranx_runs = {}
    for run in runs:
        for qid in queries:  # ranx needs every query present; an empty ranking scores zero
            if not run.ranking.get(qid):
                run.ranking[qid] = {"__none__": 0.0}
        ranx_runs[run.spec] = Run(run.ranking, name=run.spec)
    scores, per_query, p_values, wtl = score_runs(qrels, ranx_runs, baseline)
    return IRResult(
        Path(data_dir).resolve().name,
        specs,
        baseline,
        len(queries),
        len(corpus),
        scores,
        per_query,
        p_values,
        wtl,
        {run.spec: run.seconds for run in runs},
        {run.spec: run.examples for run in runs if run.examples},
        {run.spec: run.note for run in runs if run.note},
    )
