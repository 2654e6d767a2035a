"""IR metrics with ranx: means, per-query values, paired t-tests and win/tie/loss against a baseline."""

from __future__ import annotations

from typing import Any

METRICS = ("ndcg@10", "recall@100", "mrr@10")


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
