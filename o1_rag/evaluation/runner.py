"""Running evaluation systems: build every system first (a bad spec fails before any work), then retrieve
for all queries with each in turn, timing it and keeping what it can show (thoughts, passages, notes)."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from o1_rag.data import Document
from o1_rag.evaluation.context import EvalContext
from o1_rag.evaluation.systems import build_system
from o1_rag.retrievers import Ranking

logger = logging.getLogger(__name__)

EXAMPLES = 3  # queries whose thoughts (or HyDE passages) a report shows


@dataclass
class SystemRun:
    """One system's ranking of the corpus for every query."""

    spec: str
    ranking: Ranking
    seconds: float
    note: str = ""  # e.g. how often it thought
    examples: dict[str, list[str] | None] = field(default_factory=dict)  # query id -> thoughts


def run_systems(
    specs: Sequence[str], corpus: list[Document], queries: dict[str, str], k: int, context: EvalContext
) -> list[SystemRun]:
    """Rank the top ``k`` of ``corpus`` for every query with each system (progress label ``systems``)."""
    built = [build_system(spec, context) for spec in specs]
    runs = []
    for n, (spec, system) in enumerate(zip(specs, built, strict=True)):
        context.tell("systems", n, len(specs))
        logger.info("%s: retrieving for %d queries over %d documents", spec, len(queries), len(corpus))
        start = time.perf_counter()
        ranking = system.retrieve(corpus, queries, k)
        run = SystemRun(spec, ranking, time.perf_counter() - start, getattr(system, "note", ""))
        sample = list(queries)[:EXAMPLES]
        if getattr(system, "thoughts", None):
            run.examples = {q: system.thoughts.get(q) for q in sample}
        elif getattr(system, "passages", None):
            run.examples = {q: [system.passages.get(queries[q], "")] for q in sample}
        runs.append(run)
    context.tell("systems", len(specs), len(specs))
    return runs
