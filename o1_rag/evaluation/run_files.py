"""Scoring run files written by ``o1rag search --queries`` against a collection's judgements: what the query
pipeline itself returns (any thinker, MMR, a score threshold, feedback) measured with the IR metrics of
``o1rag eval ir``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from o1_rag.data import iter_jsonl, load_qrels
from o1_rag.errors import DataError
from o1_rag.evaluation.metrics import METRICS, score_runs


@dataclass(frozen=True)
class RunScores:
    """Each run's name, judged queries it answers, mean metrics and, after the first, its paired p-values
    and win/tie/loss against the first."""

    names: list[str]
    covered: dict[str, int]
    judged: int
    scores: dict[str, dict[str, float]]
    p_values: dict[str, dict[str, float]]
    win_tie_loss: dict[str, dict[str, dict[str, int]]]

    def to_json(self) -> str:
        """The scores as one JSON object."""
        return json.dumps(
            {
                "judged_queries": self.judged,
                "runs": {
                    name: {
                        "queries": self.covered[name],
                        **self.scores[name],
                        **({"p_values": self.p_values[name]} if name in self.p_values else {}),
                        **({"win_tie_loss": self.win_tie_loss[name]} if name in self.win_tie_loss else {}),
                    }
                    for name in self.names
                },
            },
            indent=2,
        )


def read_run_file(path: str | Path) -> dict[str, dict[str, float]]:
    """``{query_id: {doc_id: score}}`` of a run file: JSON lines of ``o1rag search --queries``, or a TREC run
    (``qid Q0 docid rank score tag`` per line, as other IR toolkits write; any name not ending in
    ``.jsonl``). The score is ``1 / rank``, so the file's own order counts (an MMR run's scores are not in
    rank order). A repeated query id (JSON) or document of a query (TREC) is an error."""
    path = Path(path)
    if path.suffix != ".jsonl":
        return _read_trec(path)
    run: dict[str, dict[str, float]] = {}
    for lineno, record in iter_jsonl(path):
        try:
            qid = str(record["query_id"])
            hits = {str(hit["id"]): 1.0 / int(hit["rank"]) for hit in record["hits"]}
        except (KeyError, TypeError, ValueError, ZeroDivisionError):
            raise DataError(f"{path}:{lineno}: not a search record (o1rag search --queries)") from None
        if qid in run:
            raise DataError(f"{path}:{lineno}: query '{qid}' appears twice")
        run[qid] = hits
    if not run:
        raise DataError(f"{path}: no search records")
    return run


def _read_trec(path: Path) -> dict[str, dict[str, float]]:
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    run: dict[str, dict[str, float]] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise DataError(f"{path}: not UTF-8 text") from None
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        parts = line.split()
        try:
            qid, doc_id, rank = parts[0], parts[2], int(parts[3])
            if len(parts) != 6 or rank < 1:
                raise ValueError
        except (IndexError, ValueError):
            raise DataError(f"{path}:{lineno}: not a TREC run line (qid Q0 docid rank score tag)") from None
        hits = run.setdefault(qid, {})
        if doc_id in hits:
            raise DataError(f"{path}:{lineno}: document '{doc_id}' appears twice for query '{qid}'")
        hits[doc_id] = 1.0 / rank
    if not run:
        raise DataError(f"{path}: no run lines")
    return run


def score_run_files(paths: list[Path], qrels_dir: str | Path, qrels_file: str = "qrels.tsv") -> RunScores:
    """nDCG@10, Recall@100 and MRR@10 of each run over every judged query (a judged query a run lacks
    scores 0), with paired t-tests against the first run.

    Raises:
        DataError: a run file that is not one, or one that answers no judged query.
    """
    if not paths:
        raise DataError("give at least one run file")
    qrels = load_qrels(qrels_dir, qrels_file)
    names = [p.stem for p in paths]
    if len(set(names)) != len(names):
        names = [str(p) for p in paths]
    if len(set(names)) != len(names):
        raise DataError("the same run file is given twice")
    runs: dict[str, dict[str, dict[str, float]]] = {}
    covered: dict[str, int] = {}
    for name, path in zip(names, paths, strict=True):
        run = read_run_file(path)
        covered[name] = len(set(run) & set(qrels))
        if not covered[name]:
            raise DataError(f"{path}: none of its query ids is judged in {Path(qrels_dir) / qrels_file}")
        runs[name] = {qid: hits for qid, hits in run.items() if qid in qrels}  # the rest score 0
    scores, _, p_values, wtl = score_runs(qrels, runs, names[0])
    return RunScores(names, covered, len(qrels), scores, p_values, wtl)


__all__ = ["METRICS", "RunScores", "read_run_file", "score_run_files"]
