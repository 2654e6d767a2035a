"""One table from several ``o1rag eval ir`` reports: a metric per collection and system, the average, and a
paired comparison of two systems over every query of every collection.

Used by ``o1rag eval table``; it reads the reports' ``results.json`` and runs no model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from o1_rag.errors import O1RagError
from o1_rag.files import read_structured


class SummaryError(O1RagError):
    """The reports cannot be read or do not share what the table needs."""


@dataclass
class Comparison:
    """System ``a`` against ``b`` over every query of every report (paired)."""

    a: str
    b: str
    queries: int
    mean_difference: float
    wins: int
    ties: int
    losses: int
    p_value: float
    collections_won: int  # collections where a's mean is higher


@dataclass
class Summary:
    """Scores per collection (rows) and system (columns) for one metric."""

    metric: str
    systems: list[str]
    rows: list[tuple[str, int, int, dict[str, float]]]  # (collection, queries, documents, scores)
    comparison: Comparison | None = None

    def averages(self) -> dict[str, float]:
        """Unweighted mean over collections of each system's score."""
        return {s: sum(r[3][s] for r in self.rows) / len(self.rows) for s in self.systems}

    def markdown(self) -> str:
        """A markdown table, then one line for the comparison."""
        head = ["collection", "queries", "docs", *self.systems]
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for name, queries, docs, scores in self.rows:
            cells = [name, f"{queries:,}", f"{docs:,}", *(f"{scores[s]:.3f}" for s in self.systems)]
            lines.append("| " + " | ".join(cells) + " |")
        average = self.averages()
        lines.append(
            "| "
            + " | ".join(
                [f"average ({len(self.rows)})", "", "", *(f"{average[s]:.3f}" for s in self.systems)]
            )
            + " |"
        )
        if self.comparison is not None:
            c = self.comparison
            lines += [
                "",
                f"{c.a} vs {c.b} ({self.metric}, {c.queries:,} queries of {len(self.rows)} collections): "
                f"mean difference {c.mean_difference:+.4f}, per-query wins/ties/losses "
                f"{c.wins}/{c.ties}/{c.losses}, paired t-test p = {c.p_value:.3g}; "
                f"{c.a} is higher on {c.collections_won} of {len(self.rows)} collections.",
            ]
        return "\n".join(lines) + "\n"


def _load(folder: Path) -> dict:
    path = folder / "results.json"
    if not path.is_file():
        raise SummaryError(f"{folder}: no results.json (not an 'o1rag eval ir' report folder)")
    result = read_structured(path, SummaryError)
    if not isinstance(result, dict) or "scores" not in result or "per_query" not in result:
        raise SummaryError(f"{path}: not an IR report (no scores / per_query)")
    return result


def summarize(
    folders: list[Path],
    metric: str = "ndcg@10",
    systems: list[str] | None = None,
    compare: tuple[str, str] | None = None,
    against: list[Path] | None = None,
) -> Summary:
    """Read the reports in ``folders``; keep ``systems`` (default: those every report has, in the first
    report's order); compare the pair ``compare`` query by query when given: both systems of the same
    reports, or, with ``against`` (one report of the same collection per folder, in the same order), the
    first system of ``folders`` with the second of ``against`` (e.g. one system run two ways)."""
    if not folders:
        raise SummaryError("no report folders given")
    results = [_load(Path(f)) for f in folders]
    shared = [s for s in results[0]["systems"] if all(s in r["scores"] for r in results)]
    chosen = systems or shared
    pair = list(compare or ())
    here = [*chosen, *(pair if against is None else pair[:1])]  # with ``against``, B is of the others
    for result, folder in zip(results, folders, strict=True):
        _check(result, folder, here, metric)
    others = results
    if against is not None:
        if compare is None:
            raise SummaryError("--against needs --compare A,B (A of the reports, B of the others)")
        if len(against) != len(folders):
            raise SummaryError(
                f"--against needs one report per report folder: {len(folders)} and {len(against)}"
            )
        others = [_load(Path(f)) for f in against]
        for result, other, folder in zip(results, others, against, strict=True):
            if other["dataset"] != result["dataset"]:
                raise SummaryError(f"{folder}: collection '{other['dataset']}', not '{result['dataset']}'")
            _check(other, folder, pair[1:], metric)
    rows = [
        (
            str(r["dataset"]),
            int(r["num_queries"]),
            int(r["num_docs"]),
            {s: r["scores"][s][metric] for s in chosen},
        )
        for r in results
    ]
    summary = Summary(metric, chosen, rows)
    if compare is not None:
        summary.comparison = _compare(results, others, metric, *compare)
        if against is not None:
            summary.comparison.b += " of the --against reports"
    return summary


def _check(result: dict, folder: Path, systems: list[str], metric: str) -> None:
    """Each of ``systems`` is in the report with ``metric``."""
    for system in systems:
        if system not in result["scores"]:
            raise SummaryError(f"{folder}: no system '{system}' (it has {', '.join(result['systems'])})")
        if metric not in result["scores"][system]:
            raise SummaryError(
                f"{folder}: no metric '{metric}' (it has {', '.join(result['scores'][system])})"
            )


def _compare(results: list[dict], others: list[dict], metric: str, a: str, b: str) -> Comparison:
    from scipy.stats import ttest_rel

    xs: list[float] = []
    ys: list[float] = []
    won = 0
    for result, other in zip(results, others, strict=True):
        left, right = result["per_query"][a][metric], other["per_query"][b][metric]
        qids = sorted(set(left) & set(right))
        xs += [left[q] for q in qids]
        ys += [right[q] for q in qids]
        won += result["scores"][a][metric] > other["scores"][b][metric]
    diffs = [x - y for x, y in zip(xs, ys, strict=True)]
    if not diffs:
        raise SummaryError(f"no query has scores for both '{a}' and '{b}'")
    p_value = float(ttest_rel(xs, ys).pvalue) if any(diffs) else 1.0
    return Comparison(
        a=a,
        b=b,
        queries=len(diffs),
        mean_difference=sum(diffs) / len(diffs),
        wins=sum(d > 0 for d in diffs),
        ties=sum(d == 0 for d in diffs),
        losses=sum(d < 0 for d in diffs),
        p_value=p_value,
        collections_won=won,
    )
