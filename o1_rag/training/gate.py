"""Train the ``think="auto"`` gate: on training queries with judgements, measure whether thinking raised the
relevant documents' rank over the query-only embedding (mean log rank, up to depth 1000), and fit
``o1_rag.gate.ThinkGate`` to predict it from the query-only hits.

The rank, not nDCG@10, is the label: with a query-weighted mix, thinking moves the relevant documents on
many queries without crossing the top-10 boundary, and those moves are the signal the gate learns from.
Each query is weighted by how far thinking moved them (the change in mean log rank), so the gate learns to
think where thinking gains much and to skip where it loses much, not to count one-rank moves as much.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from o1_rag.evaluation.context import EvalContext, EvalSettings
from o1_rag.evaluation.data import load_collection
from o1_rag.evaluation.o1_system import O1System
from o1_rag.gate import TOP, GateError, ThinkGate, gate_features

logger = logging.getLogger(__name__)
DEPTH = 1000


def mean_log_rank(ranking: dict[str, float], judged: dict[str, int], depth: int) -> float:
    """Mean ``log(1 + rank)`` of the relevant documents in ``ranking`` (rank ``depth`` when not in it)."""
    order = {doc: rank for rank, doc in enumerate(sorted(ranking, key=lambda d: -ranking[d]))}
    relevant = [doc for doc, grade in judged.items() if grade > 0]
    return float(np.mean([np.log1p(order.get(doc, depth)) for doc in relevant])) if relevant else 0.0


@dataclass
class GateReport:
    """What the gate was trained on and how often thinking helped there."""

    gate: ThinkGate
    queries: int
    helped: int
    hurt: int
    unchanged: int
    would_think: int


@dataclass
class ThinkingEffect:
    """What always thinking did to each judged query of a collection, against the query-only search."""

    texts: list[str]  # the queries, in file order
    tops: list[list[float]]  # each query's query-only cosine scores, best first (the gate's inputs)
    gains: np.ndarray  # the drop in the relevant documents' mean log rank (positive: thinking helped)


def thinking_effect(
    data_dir: str | Path,
    settings: EvalSettings,
    limit_queries: int | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> ThinkingEffect:
    """Search the judged queries of ``data_dir`` without and with thinking and measure, per query, how far
    thinking moved the relevant documents (mean log rank, up to depth 1000)."""
    corpus, queries, qrels = load_collection(data_dir, limit_queries)
    context = EvalContext.create(settings, progress)
    depth = max(TOP, min(len(corpus), DEPTH))
    plain = O1System(False, context).retrieve(corpus, queries, depth)
    thought = O1System(True, context).retrieve(corpus, queries, depth)
    gains = [
        mean_log_rank(plain.get(q, {}), qrels[q], depth) - mean_log_rank(thought.get(q, {}), qrels[q], depth)
        for q in queries
    ]
    tops = [sorted(plain.get(q, {}).values(), reverse=True) for q in queries]
    return ThinkingEffect(list(queries.values()), tops, np.asarray(gains, dtype=np.float64))


def train_gate(
    data_dir: str | Path,
    settings: EvalSettings,
    limit_queries: int | None = None,
    threshold: float = 0.5,
    progress: Callable[[str, int, int], None] | None = None,
) -> GateReport:
    """Fit a gate on the judged queries of ``data_dir`` (a BEIR folder: use training queries, never the
    collection you will evaluate on)."""
    effect = thinking_effect(data_dir, settings, limit_queries, progress)
    moved = np.flatnonzero(effect.gains != 0)
    if moved.size == 0:
        raise GateError("thinking moved no relevant document here: nothing to learn a gate from")
    gate = ThinkGate.fit(
        np.stack([gate_features(effect.texts[i], effect.tops[i]) for i in moved]),
        effect.gains[moved] > 0,
        threshold,
        trained_on=f"{Path(data_dir).resolve().name} ({len(effect.texts)} queries)",
        weights=np.abs(effect.gains[moved]),
    )
    would = sum(gate.decide(text, top).think for text, top in zip(effect.texts, effect.tops, strict=True))
    n, n_helped = len(effect.texts), int((effect.gains > 0).sum())
    return GateReport(gate, n, n_helped, moved.size - n_helped, n - moved.size, would)
