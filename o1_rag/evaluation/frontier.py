"""``o1rag eval frontier``: retrieval quality against query latency for the thinking settings.

Every point runs the search path users get (``o1_rag.search.search`` over the Chroma collection, the BM25
index beside it for hybrid points): ``think`` never / auto / always, with each grid of thoughts per query
and tokens per thought, dense or hybrid. nDCG@10 is measured on every judged query (thoughts come from
the thought cache when an earlier point wrote them, since only the ranking matters there); latency is the
wall time of one search with the thought cache off, on the first ``latency_queries`` queries, one at a
time, as a user waits for it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from o1_rag.evaluation.context import EvalContext, EvalSettings
from o1_rag.evaluation.data import load_collection
from o1_rag.evaluation.metrics import score_runs
from o1_rag.evaluation.o1_system import O1System


@dataclass
class FrontierPoint:
    """One setting: its quality, latency and how often it thought."""

    think: str
    num_thoughts: int | None
    max_new_tokens: int | None
    hybrid: bool
    ndcg: float
    mean_ms: float
    p95_ms: float
    thought_share: float
    default: bool = False

    @property
    def label(self) -> str:
        budget = "" if self.think == "never" else f" {self.num_thoughts}x{self.max_new_tokens}"
        return f"{self.think}{budget}{' hybrid' if self.hybrid else ''}"


@dataclass
class FrontierResult:
    dataset: str
    num_queries: int
    latency_queries: int
    points: list[FrontierPoint] = field(default_factory=list)


def evaluate_frontier(
    data_dir: str | Path,
    settings: EvalSettings,
    thoughts: tuple[int, ...] = (1, 3),
    tokens: tuple[int, ...] = (16, 48),
    latency_queries: int = 6,
    limit_queries: int | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> FrontierResult:
    """Measure every point of the grid (see the module docstring)."""
    from o1_rag.embedder import ThinkParams
    from o1_rag.lexical import lexical_folder, sync_lexical
    from o1_rag.search import search

    if latency_queries <= 0:
        raise ValueError(f"--latency-queries must be > 0, got {latency_queries}")
    if not thoughts or not tokens or min(thoughts) <= 0 or min(tokens) <= 0:
        raise ValueError("--thoughts and --tokens need positive numbers")
    corpus, queries, qrels = load_collection(data_dir, limit_queries)
    store = O1System(False, EvalContext.create(settings, progress))
    embedder = store.context.models.embedder(settings.model, settings.adapter)
    collection = store.index(embedder, corpus)
    lexical = sync_lexical(collection, lexical_folder(collection, settings.db_path()))
    default = embedder.resolve(None)
    grid = sorted(
        {(n, t) for n in thoughts for t in tokens} | {(default.num_thoughts, default.max_new_tokens)}
    )
    settings_list: list[tuple[str, int | None, int | None, bool]] = []
    for hybrid in (False, True):
        settings_list.append(("never", None, None, hybrid))
        for n, t in grid:
            settings_list += [("always", n, t, hybrid), ("auto", n, t, hybrid)]
    qids, texts = list(queries), list(queries.values())
    probe = texts[:latency_queries]
    result = FrontierResult(Path(data_dir).resolve().name, len(qids), len(probe))
    for step, (mode, n, t, hybrid) in enumerate(settings_list):
        if progress is not None:
            progress("settings", step, len(settings_list))
        params = ThinkParams(n, t, seed=settings.seed)
        side = lexical if hybrid else None
        found = search(embedder, collection, texts, k=10, think=mode, params=params, lexical=side)
        ranking = {
            qid: {h.id: h.score for h in r.hits} or {"__none__": 0.0}
            for qid, r in zip(qids, found, strict=True)
        }
        scores, _, _, _ = score_runs(qrels, {"run": ranking}, "run")
        samples = []
        for text in probe:
            start = time.perf_counter()
            search(
                embedder, collection, [text], k=10, think=mode, params=params, lexical=side, use_cache=False
            )
            samples.append(time.perf_counter() - start)
        result.points.append(
            FrontierPoint(
                mode,
                n,
                t,
                hybrid,
                scores["run"]["ndcg@10"],
                1000 * float(np.mean(samples)),
                1000 * float(np.percentile(samples, 95)),
                float(np.mean([bool(r.decision and r.decision.think) for r in found])),
                default=(
                    mode == "auto" and hybrid and (n, t) == (default.num_thoughts, default.max_new_tokens)
                ),
            )
        )
    if progress is not None:
        progress("settings", len(settings_list), len(settings_list))
    return result


def _plot(path: Path, result: FrontierResult) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    markers = {"never": "o", "auto": "^", "always": "s"}
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, key, name in ((axes[0], "mean_ms", "mean"), (axes[1], "p95_ms", "p95")):
        for point in result.points:
            x = getattr(point, key)
            ax.scatter(
                x,
                point.ndcg,
                marker=markers[point.think],
                color="#C44E52" if point.hybrid else "#4C72B0",
                s=160 if point.default else 40,
                edgecolors="black" if point.default else "none",
                zorder=3 if point.default else 2,
            )
            ax.annotate(point.label + (" (default)" if point.default else ""), (x, point.ndcg), fontsize=6)
        ax.set_xscale("log")
        ax.set_xlabel(f"{name} latency of one search, thought cache off (ms, log scale)")
        ax.set_ylabel("nDCG@10")
        ax.grid(alpha=0.3)
    handles = [
        plt.Line2D([], [], marker=m, linestyle="", color="gray", label=f"think {t}")
        for t, m in markers.items()
    ] + [
        plt.Line2D([], [], marker="o", linestyle="", color="#4C72B0", label="dense"),
        plt.Line2D([], [], marker="o", linestyle="", color="#C44E52", label="hybrid"),
    ]
    axes[1].legend(handles=handles, fontsize=7, loc="lower right")
    fig.suptitle(
        f"{result.dataset}: {result.num_queries} queries (quality), {result.latency_queries} (latency); "
        "large marker: the default",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_frontier_report(result: FrontierResult, output: Path, command: str) -> Path:
    """Write the frontier report folder (atomically): ``frontier.png``, ``report.md``, ``results.json``."""
    from o1_rag.evaluation.report import environment, markdown_table, provenance, write_folder

    env = environment()
    rows = [
        [
            f"**{p.label}**" if p.default else p.label,
            f"{p.ndcg:.3f}",
            f"{p.mean_ms:.0f}",
            f"{p.p95_ms:.0f}",
            f"{p.thought_share:.0%}",
        ]
        for p in result.points
    ]
    header = ["setting (think, thoughts x tokens, side)", "nDCG@10", "mean ms", "p95 ms", "thought on"]
    md = (
        f"# Quality against latency: {result.dataset}\n\n"
        f"nDCG@10 over {result.num_queries} judged queries; latency of one search with the thought cache "
        f"off over the first {result.latency_queries}. The default (bold) is marked large in the plot.\n\n"
        + markdown_table(header, rows)
        + "\n\n![frontier](frontier.png)\n"
        + provenance(command, env)
    )
    payload: dict[str, Any] = {
        "command": command,
        "environment": env,
        **{k: v for k, v in asdict(result).items() if k != "points"},
        "points": [{**asdict(p), "label": p.label} for p in result.points],
    }

    def body(folder: Path) -> None:
        (folder / "results.json").write_text(json.dumps(payload, indent=2))
        (folder / "report.md").write_text(md)
        _plot(folder / "frontier.png", result)

    return write_folder(output, body)
