"""``o1rag bench``: speed benchmarks as ratios against baselines of the same run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from o1_rag.cli._common import MaxNewOpt, VerboseOpt, clean, out, run_command
from o1_rag.cli._groups import ModelOptions, with_groups


@with_groups
def bench(
    suites: Annotated[
        str,
        typer.Option("--suites", help="Comma-separated: core, compare, train, think, agree, ray, lexical."),
    ] = "core,compare",
    data: Annotated[
        Path | None, typer.Option("--data", help="BEIR folder for texts [default: generated].")
    ] = None,
    docs: Annotated[int, typer.Option("--docs", min=1, help="Documents to index.")] = 48,
    max_new_tokens: MaxNewOpt = 32,
    model: ModelOptions = ModelOptions(),
    verbose: VerboseOpt = False,
) -> None:
    """Speed benchmarks, printed as ratios against baselines measured in the same run."""

    def body() -> None:
        from o1_rag.evaluation.bench_run import run_bench

        title, rows = run_bench(
            [s.strip() for s in suites.split(",") if s.strip()],
            data,
            model.model,
            model.adapter,
            docs,
            max_new_tokens,
            model.device,
            precision=model.precision,
            long_documents=model.long_documents,
        )
        table = Table(title=clean(title), title_justify="left")
        for column in ("measure", "o1-rag", "baseline", "ratio", "target"):
            table.add_column(column)
        for row in rows:
            table.add_row(*(clean(v) for v in (row.measure, row.value, row.baseline, row.ratio, row.target)))
        out.print(table)

    run_command(verbose, body)
