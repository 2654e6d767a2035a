"""Reports: a folder written atomically with ``results.json``, ``report.md`` and PNG plots."""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from collections.abc import Callable
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np


def environment() -> dict[str, Any]:
    """Versions and machine facts recorded with every report."""
    versions = {}
    for package in (
        "o1-rag",
        "torch",
        "transformers",
        "chromadb",
        "ranx",
        "bm25s",
        "sentence-transformers",
        "ragas",
    ):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    try:
        import torch

        from o1_rag.causal_lm import native_bf16

        cuda = torch.cuda.is_available()
        device = torch.cuda.get_device_name(0) if cuda else f"CPU ({os.cpu_count()} cores)"
        bf16 = native_bf16("cuda" if cuda else "cpu")
    except ImportError:  # pragma: no cover
        device, bf16 = "CPU", False
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "device": device,
        "native_bfloat16": bf16,  # so --precision auto encoded in bfloat16 here
        "versions": versions,
        "time": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


REPORT_FILES = {"results.json", "report.md"}  # what marks a folder as an earlier report


def check_report_target(target: Path) -> Path:
    """Refuse an output folder that would lose a user's files: it must not exist, or be empty, or be an
    earlier report (``results.json`` + ``report.md`` and plots only). Call it before the evaluation runs.

    Raises:
        O1RagError: ``target`` is a file, or a folder holding anything but an earlier report.
    """
    from o1_rag.errors import O1RagError

    target = Path(target)
    if target.exists() and not target.is_dir():
        raise O1RagError(f"--output {target} exists and is not a folder")
    if not target.is_dir():
        return target
    names = {p.name for p in target.iterdir()}
    if names and not (names >= REPORT_FILES and all(n in REPORT_FILES or n.endswith(".png") for n in names)):
        raise O1RagError(
            f"--output {target} holds files that are not an earlier report; give a new or empty folder"
        )
    return target


@contextmanager
def atomic_folder(target: Path):
    """Yield a temporary folder beside ``target``; on success it replaces ``target`` (an earlier report,
    checked by ``check_report_target``) in one rename, with the usual permissions.

    On an error the temporary folder is removed and ``target`` is left as it was.
    """
    from o1_rag.files import atomic_dir

    with atomic_dir(check_report_target(Path(target))) as tmp:
        yield tmp


def provenance(command: str, env: dict[str, Any]) -> str:
    """The markdown footer of a report: the command, the machine, the versions, the time."""
    versions = ", ".join(f"{k} {v}" for k, v in env["versions"].items())
    native = ""
    if "native_bfloat16" in env:  # reports written before the field existed lack it
        native = (
            "; multiplies bfloat16 natively (`--precision auto` encodes in bfloat16)"
            if env["native_bfloat16"]
            else "; no native bfloat16 (`--precision auto` encodes in float32)"
        )
    return (
        f"\n## How this was made\n\n```\n{command}\n```\n\n"
        f"- machine: {env['device']}, {env['platform']}, Python {env['python']}"
        f"{native}\n"
        f"- versions: {versions}\n- time: {env['time']}\n"
    )


def bootstrap_ci(values: list[float], rounds: int = 1000, seed: int = 0) -> tuple[float, float]:
    """95% bootstrap confidence interval of the mean."""
    if not values:
        return (float("nan"), float("nan"))
    data = np.asarray(values, dtype=np.float64)
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, len(data), size=(rounds, len(data)))].mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A GitHub-flavoured markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _bar_plot(
    path: Path,
    systems: list[str],
    metrics: list[str],
    means: dict[str, dict[str, float]],
    cis: dict[str, dict[str, tuple[float, float]]],
    title: str,
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.6), squeeze=False)
    for ax, metric in zip(axes[0], metrics, strict=True):
        values = [means[s].get(metric, float("nan")) for s in systems]
        low = [
            max(0.0, v - cis[s][metric][0]) if metric in cis.get(s, {}) else 0
            for s, v in zip(systems, values, strict=True)
        ]
        high = [
            max(0.0, cis[s][metric][1] - v) if metric in cis.get(s, {}) else 0
            for s, v in zip(systems, values, strict=True)
        ]
        ax.bar(range(len(systems)), values, yerr=[low, high], capsize=4, color="#4C72B0")
        ax.set_xticks(range(len(systems)), systems, rotation=30, ha="right", fontsize=8)
        ax.set_title(metric)
        ax.set_ylim(0, max([v for v in values if v == v] + [0.05]) * 1.25)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _win_loss_plot(path: Path, diffs: dict[str, list[float]], baseline: str, metric: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(diffs), 1, figsize=(7, 1.9 * len(diffs)), squeeze=False)
    for ax, (system, values) in zip(axes[:, 0], diffs.items(), strict=True):
        ordered = sorted(values, reverse=True)
        colors = ["#55A868" if v > 0 else "#C44E52" if v < 0 else "#999999" for v in ordered]
        ax.bar(range(len(ordered)), ordered, color=colors, width=1.0)
        wins, losses = sum(v > 0 for v in values), sum(v < 0 for v in values)
        ax.set_title(f"{system} vs {baseline}: {wins} wins, {losses} losses ({metric} per query)", fontsize=9)
        ax.axhline(0, color="black", linewidth=0.5)
        ax.set_xticks([])
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_ir_report(result: Any, output: Path, command: str) -> Path:
    """Write an ``o1rag eval ir`` report folder (atomically) and return it."""
    from o1_rag.evaluation.metrics import METRICS

    env = environment()
    cis = {
        s: {m: bootstrap_ci(list(result.per_query[s][m].values())) for m in METRICS} for s in result.systems
    }
    header = ["system", *METRICS, f"p (nDCG@10 vs {result.baseline})", "W/T/L nDCG@10", "seconds"]
    rows = []
    for system in result.systems:
        p = result.p_values.get(system, {}).get("ndcg@10")
        wtl = result.win_tie_loss.get(system, {}).get("ndcg@10")
        rows.append(
            [
                f"**{system}**" if system == result.baseline else system,
                *[f"{result.scores[system][m]:.3f}" for m in METRICS],
                "—" if p is None else (f"{p:.3g}" + (" *" if p < 0.05 else "")),
                "—" if wtl is None else f"{wtl['W']}/{wtl['T']}/{wtl['L']}",
                f"{result.seconds[system]:.1f}",
            ]
        )
    notes = "".join(f"- `{system}`: {note}\n" for system, note in getattr(result, "notes", {}).items())
    examples = f"\n{notes}" if notes else ""
    for system, per_query in result.examples.items():
        examples += f"\n### What `{system}` generated (first queries)\n\n"
        for qid, thoughts in per_query.items():
            first = thoughts[0].replace("\n", " ")[:300] if thoughts else "(no thoughts: it did not think)"
            examples += f"- `{qid}`: {first}\n"
    md = (
        f"# IR evaluation: {result.dataset}\n\n"
        f"{result.num_queries} judged queries, {result.num_docs} documents. Baseline **{result.baseline}**; "
        "p-values from a paired t-test (ranx), * = p < 0.05.\n\n"
        + markdown_table(header, rows)
        + "\n\n![metrics](metrics.png)\n\n![per-query wins and losses](win_loss.png)\n"
        + examples
        + provenance(command, env)
    )
    payload = {
        "command": command,
        "environment": env,
        **result.to_dict(),
        "confidence_intervals": {s: {m: list(ci) for m, ci in v.items()} for s, v in cis.items()},
    }
    diffs = {
        s: [
            result.per_query[s]["ndcg@10"][q] - result.per_query[result.baseline]["ndcg@10"][q]
            for q in result.per_query[result.baseline]["ndcg@10"]
        ]
        for s in result.systems
        if s != result.baseline
    }

    def body(folder: Path) -> None:
        (folder / "results.json").write_text(json.dumps(payload, indent=2, ensure_ascii=False))
        (folder / "report.md").write_text(md)
        _bar_plot(
            folder / "metrics.png",
            result.systems,
            list(METRICS),
            result.scores,
            cis,
            f"{result.dataset}: {result.num_queries} queries (95% bootstrap CI)",
        )
        if diffs:
            _win_loss_plot(folder / "win_loss.png", diffs, result.baseline, "nDCG@10")

    return write_folder(output, body)


def write_folder(output: Path, body: Callable[[Path], None]) -> Path:
    """Run ``body(tmp)`` and move the finished folder to ``output`` atomically."""
    with atomic_folder(Path(output)) as tmp:
        body(tmp)
    return Path(output)


def write_rag_report(result: Any, output: Path, command: str) -> Path:
    """Write an ``o1rag eval rag`` report folder (atomically) and return it."""
    env = environment()
    metrics = list(dict.fromkeys(m for scores in result.scores.values() for m in scores))
    cis = {
        r: {m: bootstrap_ci([s[m] for s in result.samples[r] if s.get(m) == s.get(m)]) for m in metrics}
        for r in result.retrievers
    }
    header = ["retriever", *metrics, "seconds"]
    rows = []
    for retriever in result.retrievers:
        cells = []
        for metric in metrics:
            value, missing = (
                result.scores[retriever].get(metric, float("nan")),
                result.failed[retriever].get(metric, 0),
            )
            cells.append(
                ("n/a" if value != value else f"{value:.3f}") + (f" ({missing} unscored)" if missing else "")
            )
        rows.append([retriever, *cells, f"{result.seconds[retriever]:.1f}"])
    judge = result.judge or "none (non-LLM metrics only)"
    md = (
        f"# RAG evaluation: {result.dataset}\n\n"
        f"{result.num_questions} answerable questions, top-{result.k} contexts per question, answers by "
        f"`{result.generator}`, judge: `{judge}`. Scores are means over the questions the metric could "
        "score; 'unscored' counts questions the judge could not score (unparsable output or time-out).\n\n"
        + (
            ""
            if result.judge
            else "Offline metrics only: `semantic_similarity` is the cosine similarity of answer and "
            "reference "
            "in the bundled MiniLM's space, `non_llm_string_similarity` a string distance, `rouge_score` the "
            "word overlap. Faithfulness, response relevancy and LLM context recall need a capable judge: "
            "`--judge-url` (or `--judge` with a local model) without `--no-llm-metrics`.\n\n"
        )
        + markdown_table(header, rows)
        + "\n\n![metrics](metrics.png)\n\n## Sample answers\n\n"
        + "\n".join(
            f"- **{r}**, `{s['id']}`: {s['question']} → {s['answer'][:200].replace(chr(10), ' ')}"
            for r in result.retrievers
            for s in result.samples[r][:2]
        )
        + "\n"
        + provenance(command, env)
    )
    payload = {
        "command": command,
        "environment": env,
        **result.to_dict(),
        "confidence_intervals": {r: {m: list(ci) for m, ci in v.items()} for r, v in cis.items()},
    }

    def body(folder: Path) -> None:
        (folder / "results.json").write_text(json.dumps(payload, indent=2, ensure_ascii=False, default=str))
        (folder / "report.md").write_text(md)
        _bar_plot(
            folder / "metrics.png",
            result.retrievers,
            metrics,
            result.scores,
            cis,
            f"{result.dataset}: {result.num_questions} questions (95% bootstrap CI)",
        )

    return write_folder(output, body)
