"""``o1rag eval``: ``ir``, ``table``, ``runs``, ``frontier`` and ``rag``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from o1_rag.cli._common import (
    AgreeOpt,
    ApiKeyEnvOpt,
    DbOpt,
    EncoderOpt,
    EndpointUrlOpt,
    FeedbackOpt,
    LimitQueriesOpt,
    MaxNewOpt,
    NumThoughtsOpt,
    RepPenOpt,
    TempOpt,
    VerboseOpt,
    api_key_from_env,
    clean,
    command_line,
    out,
    progress_bars,
    run_command,
)
from o1_rag.cli._groups import ModelOptions, ThinkerOptions, with_groups
from o1_rag.feedback import FEEDBACK_DOCS
from o1_rag.models import BASE_MODEL

EvalSeedOpt = Annotated[int, typer.Option("--seed", help="Sampling seed for thoughts.")]
ReportOpt = Annotated[
    Path | None,
    typer.Option("--output", "-o", help="Report folder [default: evals/reports/<command>-<collection>]."),
]


def report_target(output: Path | None, command: str, data_dir: Path) -> Path:
    """Where a report goes (``output``, else ``evals/reports/<command>-<collection folder>``), checked before
    any work: it may replace an earlier report, never other files."""
    from o1_rag.evaluation.report import check_report_target

    return check_report_target(output or Path("evals") / "reports" / f"{command}-{data_dir.resolve().name}")


@with_groups
def eval_ir(
    ctx: typer.Context,
    data_dir: Annotated[
        Path, typer.Argument(help="BEIR-format folder (corpus.jsonl, queries.jsonl, qrels.tsv).")
    ],
    systems: Annotated[
        str,
        typer.Option(
            "--systems",
            "-s",
            help="Comma-separated: bm25, dense[:MODEL], hyde[:MODEL], o1-nothink, o1, o1-mix[:W], "
            "o1-native, o1-chat.",
        ),
    ] = "bm25,dense,o1-nothink,o1",
    baseline: Annotated[str | None, typer.Option("--baseline", help="[default: the first system]")] = None,
    output: ReportOpt = None,
    limit_queries: LimitQueriesOpt = None,
    exact: Annotated[
        bool, typer.Option("--exact", help="Exact in-memory search for the O1 systems.")
    ] = False,
    generator: Annotated[
        str | None,
        typer.Option(
            "--generator", help="Causal LM writing HyDE passages [default: the evaluated model's thinker]."
        ),
    ] = None,
    feedback: FeedbackOpt = FEEDBACK_DOCS,
    num_thoughts: NumThoughtsOpt = None,
    max_new_tokens: MaxNewOpt = None,
    temperature: TempOpt = None,
    seed: Annotated[int, typer.Option("--seed", help="Sampling seed for thoughts and passages.")] = 0,
    repetition_penalty: RepPenOpt = None,
    agree: AgreeOpt = None,
    model: ModelOptions = ModelOptions(),
    thinker: ThinkerOptions = ThinkerOptions(),
    encoder: EncoderOpt = None,
    db: DbOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Score several retrieval systems on one collection (nDCG@10, Recall@100, MRR@10) and write a report."""

    def body() -> None:
        from o1_rag.evaluation.ir import evaluate_ir
        from o1_rag.evaluation.metrics import METRICS
        from o1_rag.evaluation.report import write_ir_report

        target = report_target(output, "ir", data_dir)  # before any work: never after a long evaluation
        settings = model.eval_settings(
            db,
            thinker,
            encoder=encoder,
            generator=generator,
            num_thoughts=num_thoughts,
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            seed=seed,
            repetition_penalty=repetition_penalty,
            agree=agree,
            exact=exact,
            feedback=feedback,
        )
        with progress_bars() as update:
            result = evaluate_ir(
                data_dir, systems, settings, baseline=baseline, limit_queries=limit_queries, progress=update
            )
        write_ir_report(result, target, command_line(ctx))
        table = Table(
            title=clean(f"{result.dataset}: {result.num_queries} queries, {result.num_docs} documents")
        )
        for column in ("system", *METRICS, f"p vs {result.baseline}"):
            table.add_column(column, justify="left" if column == "system" else "right")
        for system in result.systems:
            p = result.p_values.get(system, {}).get("ndcg@10")
            table.add_row(
                clean(system),
                *(f"{result.scores[system][m]:.3f}" for m in METRICS),
                "-" if p is None else f"{p:.3g}",
            )
        out.print(table)
        for system, note in result.notes.items():
            out.print(clean(f"{system}: {note}"))
        out.print(clean(f"report: {target / 'report.md'}"))

    run_command(verbose, body)


def eval_table(
    reports: Annotated[list[Path], typer.Argument(help="Report folders written by 'o1rag eval ir'.")],
    metric: Annotated[str, typer.Option("--metric", help="ndcg@10, recall@100 or mrr@10.")] = "ndcg@10",
    systems: Annotated[
        str | None, typer.Option("--systems", "-s", help="Comma-separated columns [default: all shared].")
    ] = None,
    compare: Annotated[
        str | None,
        typer.Option("--compare", help="A,B: compare two systems query by query over all reports (paired)."),
    ] = None,
    against: Annotated[
        list[Path] | None,
        typer.Option(
            "--against",
            help="Other report folders, one per report of the same collection in the same order (repeat the "
            "option): --compare A,B then compares A of the reports with B of these.",
        ),
    ] = None,
    verbose: VerboseOpt = False,
) -> None:
    """One markdown table from several IR reports (no model is run)."""

    def body() -> None:
        from o1_rag.evaluation.summary import SummaryError, summarize

        pair = None
        if compare is not None:
            parts = [p.strip() for p in compare.split(",")]
            if len(parts) != 2 or not all(parts):
                raise SummaryError(f"--compare needs two systems as A,B, got '{compare}'")
            pair = (parts[0], parts[1])
        columns = [s.strip() for s in systems.split(",") if s.strip()] if systems else None
        summary = summarize(list(reports), metric, columns, pair, list(against) if against else None)
        typer.echo(summary.markdown(), nl=False)

    run_command(verbose, body)


def eval_runs(
    runs: Annotated[
        list[Path],
        typer.Argument(help="Run files written by 'o1rag search --queries' (.jsonl), or TREC runs."),
    ],
    qrels: Annotated[Path, typer.Option("--qrels", help="BEIR folder whose judgements score the runs.")],
    qrels_file: Annotated[str, typer.Option("--qrels-file", help="Judgements file in it.")] = "qrels.tsv",
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object instead of a table.")
    ] = False,
    verbose: VerboseOpt = False,
) -> None:
    """Score run files of 'o1rag search --queries' (nDCG@10, Recall@100, MRR@10; paired t-test of each
    against the first) over every judged query; no model is run."""

    def body() -> None:
        from o1_rag.evaluation.run_files import METRICS, score_run_files

        found = score_run_files(list(runs), qrels, qrels_file)
        if as_json:
            typer.echo(found.to_json())
            return
        table = Table(
            title=clean(f"{found.judged} judged queries ({qrels / qrels_file})"), title_justify="left"
        )
        for column in ("run", "queries", *METRICS, "p (ndcg@10) vs first"):
            table.add_column(column, justify="left" if column == "run" else "right")
        for name in found.names:
            p_value = found.p_values.get(name, {}).get("ndcg@10")
            table.add_row(
                clean(name),
                str(found.covered[name]),
                *(f"{found.scores[name][m]:.4f}" for m in METRICS),
                "" if p_value is None else f"{p_value:.3g}",
            )
        out.print(table)

    run_command(verbose, body)


@with_groups
def eval_frontier(
    ctx: typer.Context,
    data_dir: Annotated[Path, typer.Argument(help="BEIR folder (corpus, queries, qrels).")],
    output: ReportOpt = None,
    thoughts: Annotated[str, typer.Option("--thoughts", help="Thoughts per query to try, e.g. 1,3.")] = "1,3",
    tokens: Annotated[str, typer.Option("--tokens", help="Tokens per thought to try, e.g. 16,48.")] = "16,48",
    latency_queries: Annotated[
        int, typer.Option("--latency-queries", min=1, help="Queries timed one by one per setting.")
    ] = 6,
    limit_queries: LimitQueriesOpt = None,
    seed: EvalSeedOpt = 0,
    model: ModelOptions = ModelOptions(),
    db: DbOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Plot nDCG@10 against mean and p95 search latency for think never/auto/always, thinking budgets, dense
    and hybrid; the default setting is marked."""

    def body() -> None:
        from o1_rag.evaluation.frontier import evaluate_frontier, write_frontier_report

        target = report_target(output, "frontier", data_dir)

        def numbers(text: str, option: str) -> tuple[int, ...]:
            try:
                values = tuple(int(v) for v in text.split(",") if v.strip())
            except ValueError:
                raise ValueError(f"{option} takes whole numbers separated by commas, got '{text}'") from None
            if not values or min(values) <= 0:
                raise ValueError(f"{option} takes positive numbers, got '{text}'")
            return values

        grid = numbers(thoughts, "--thoughts"), numbers(tokens, "--tokens")
        settings = model.eval_settings(db, seed=seed)
        with progress_bars() as update:
            result = evaluate_frontier(data_dir, settings, *grid, latency_queries, limit_queries, update)
        write_frontier_report(result, target, command_line(ctx))
        table = Table(title=clean(f"{result.dataset}: quality against latency"))
        for column in ("setting", "nDCG@10", "mean ms", "p95 ms", "thought on"):
            table.add_column(column, justify="left" if column == "setting" else "right")
        for p in result.points:
            table.add_row(
                clean(p.label + (" (default)" if p.default else "")),
                f"{p.ndcg:.3f}",
                f"{p.mean_ms:.0f}",
                f"{p.p95_ms:.0f}",
                f"{p.thought_share:.0%}",
            )
        out.print(table)
        out.print(clean(f"report: {target / 'report.md'}"))

    run_command(verbose, body)


@with_groups
def eval_rag(
    ctx: typer.Context,
    data_dir: Annotated[Path, typer.Argument(help="Folder with qa.jsonl and corpus.jsonl (+ qrels.tsv).")],
    retrievers: Annotated[
        str, typer.Option("--retrievers", "-r", help="Comma-separated systems, as in eval ir.")
    ] = "bm25,o1",
    k: Annotated[int, typer.Option("-k", min=1, help="Contexts per question.")] = 3,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="Evaluate the first N answerable questions.")
    ] = None,
    generator: Annotated[
        str, typer.Option("--generator", help="Answering model (name or endpoint model).")
    ] = BASE_MODEL,
    generator_url: EndpointUrlOpt = None,
    judge: Annotated[str, typer.Option("--judge", help="Judge model for the LLM metrics.")] = BASE_MODEL,
    judge_url: EndpointUrlOpt = None,
    api_key_env: ApiKeyEnvOpt = None,
    llm_metrics: Annotated[
        bool, typer.Option("--llm-metrics/--no-llm-metrics", help="Also run the LLM-judged metrics.")
    ] = True,
    max_new_tokens: Annotated[
        int, typer.Option("--answer-tokens", min=1, help="Tokens per answer at most.")
    ] = 128,
    timeout: Annotated[
        int, typer.Option("--timeout", min=1, help="Seconds per judged sample (ragas RunConfig).")
    ] = 120,
    output: ReportOpt = None,
    num_thoughts: NumThoughtsOpt = None,
    seed: EvalSeedOpt = 0,
    model: ModelOptions = ModelOptions(),
    db: DbOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Retrieve contexts with each retriever, answer with an LLM, score with ragas, write a report.

    Resumable: answers and scores are kept in OUTPUT.partial.jsonl as they come, and a re-run of the same
    command takes them from there; the file goes once the report is written."""

    def body() -> None:
        from o1_rag.evaluation.data import load_qa
        from o1_rag.evaluation.llms import make_llm, ragas_embeddings, ragas_judge
        from o1_rag.evaluation.rag import evaluate_rag
        from o1_rag.evaluation.report import write_rag_report
        from o1_rag.evaluation.systems import parse_systems

        parse_systems(retrievers)
        load_qa(data_dir, limit)  # fail on bad input before loading any model
        target = report_target(output, "rag", data_dir)
        settings = model.eval_settings(db, num_thoughts=num_thoughts, seed=seed)
        api_key = api_key_from_env(api_key_env) if generator_url or (llm_metrics and judge_url) else None
        answerer = make_llm(generator, generator_url, max_new_tokens, api_key, model.device)
        judge_embeddings = ragas_embeddings()
        judge_llm = ragas_judge(judge, judge_url, api_key, model.device) if llm_metrics else None
        partial = target.with_name(f"{target.name}.partial.jsonl")  # answers and scores so far
        run_key = {"generator_url": generator_url, "answer_tokens": max_new_tokens, "judge_url": judge_url}
        with progress_bars() as update:
            result = evaluate_rag(
                data_dir,
                retrievers,
                settings,
                k=k,
                limit=limit,
                generator=answerer,
                generator_name=generator,
                judge=judge_llm,
                judge_name=judge if llm_metrics else None,
                judge_embeddings=judge_embeddings,
                timeout_s=timeout,
                progress=update,
                checkpoint=partial,
                run_key=run_key,
            )
        write_rag_report(result, target, command_line(ctx))
        partial.unlink(missing_ok=True)  # the report holds it all now
        metrics = list(dict.fromkeys(m for scores in result.scores.values() for m in scores))
        table = Table(title=clean(f"{result.dataset}: {result.num_questions} questions, top-{k} contexts"))
        table.add_column("retriever")
        for metric in metrics:
            table.add_column(metric, justify="right")
        for name in result.retrievers:
            table.add_row(clean(name), *(f"{result.scores[name].get(m, float('nan')):.3f}" for m in metrics))
        out.print(table)
        out.print(clean(f"report: {target / 'report.md'}"))

    run_command(verbose, body)
