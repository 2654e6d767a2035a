"""``o1rag synth``: training data from an expert's drafts and a retrieval committee's vote."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from o1_rag.cli._common import (
    ApiKeyEnvOpt,
    ConcurrencyOpt,
    DeviceOpt,
    EndpointUrlOpt,
    VerboseOpt,
    api_key_from_env,
    clean,
    out,
    progress_bars,
    run_command,
)
from o1_rag.models import BASE_MODEL


def synth(
    source: Annotated[
        Path, typer.Argument(help="BEIR folder (queries + qrels + corpus) or jsonl of {query, positive}.")
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="jsonl to write (appended; resumable).")],
    queries_file: Annotated[
        str, typer.Option("--queries-file", help="Queries file in a BEIR folder.")
    ] = "queries.jsonl",
    qrels_file: Annotated[
        str, typer.Option("--qrels-file", help="Judgements file in a BEIR folder.")
    ] = "qrels.tsv",
    expert: Annotated[
        str, typer.Option("--expert", help="Local expert model (alias, folder, HF id).")
    ] = BASE_MODEL,
    expert_url: EndpointUrlOpt = None,
    api_key_env: ApiKeyEnvOpt = None,
    concurrency: ConcurrencyOpt = 8,
    expert_model: Annotated[
        str, typer.Option("--expert-model", help="Model name at --expert-url.")
    ] = "default",
    candidates: Annotated[
        int, typer.Option("-k", "--candidates", min=1, help="Candidate thoughts per query.")
    ] = 3,
    answers: Annotated[
        str | None,
        typer.Option(
            "--answers",
            help="QA jsonl in the BEIR folder (e.g. qa.jsonl): its reference answers join the vote.",
        ),
    ] = None,
    dense: Annotated[
        list[str] | None, typer.Option("--dense", help="Dense committee member (repeatable).")
    ] = None,
    no_bm25: Annotated[bool, typer.Option("--no-bm25", help="Leave BM25 out of the committee.")] = False,
    rule: Annotated[
        Literal["soft", "hard"],
        typer.Option(
            "--vote",
            help="soft (sum of softmaxes) or hard (majority).",
        ),
    ] = "soft",
    negatives: Annotated[
        int, typer.Option("--negatives", min=0, help="Hard negatives per query (BM25).")
    ] = 7,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Only the first N queries.")] = None,
    max_new_tokens: Annotated[
        int, typer.Option("--max-new-tokens", min=1, help="Tokens per candidate.")
    ] = 128,
    example_chars: Annotated[
        int,
        typer.Option("--example-chars", min=1, help="Characters kept of each in-context example passage."),
    ] = 600,
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=1, help="Local expert generation batch.")
    ] = 32,
    chunk: Annotated[
        int, typer.Option("--chunk", min=1, help="Queries per written chunk (resume unit).")
    ] = 16,
    export: Annotated[
        Path | None,
        typer.Option("--export-ids", help="Also write a copy without the collection's texts (shareable)."),
    ] = None,
    temperature: Annotated[
        float, typer.Option("--temperature", min=0.0, help="Expert sampling temperature.")
    ] = 0.7,
    seed: Annotated[int, typer.Option("--seed", help="Seed for examples and sampling.")] = 0,
    device: DeviceOpt = "auto",
    verbose: VerboseOpt = False,
) -> None:
    """Draft candidate thoughts with an expert LLM and keep the one a retrieval committee votes for."""

    def body() -> None:
        from o1_rag.synthesis.committee import make_committee
        from o1_rag.synthesis.expert import make_expert
        from o1_rag.synthesis.pipeline import export_ids, load_training_queries, synthesize

        items, corpus = load_training_queries(source, queries_file, qrels_file, answers)
        items = items[:limit]
        members, bm25 = make_committee(corpus, dense, bm25=not no_bm25, device=device)
        drafter = make_expert(
            expert,
            expert_url,
            expert_model,
            max_new_tokens,
            temperature,
            device=device,
            batch_size=batch_size,
            api_key=api_key_from_env(api_key_env) if expert_url else None,
            concurrency=concurrency,
        )
        with progress_bars() as progress:
            written = synthesize(
                items,
                corpus,
                drafter,
                members,
                output,
                k=candidates,
                rule=rule,
                num_negatives=negatives,
                example_chars=example_chars,
                chunk=chunk,
                seed=seed,
                bm25=bm25,
                progress=lambda done, total: progress("synthesizing", done, total),
            )
        out.print(
            clean(
                f"{output}: {written} new records ({len(items)} queries; committee: "
                f"{', '.join(m.name for m in members)})"
            )
        )
        if export is not None:
            if not source.is_dir():
                raise ValueError("--export-ids needs a BEIR folder source (the copy names its collection)")
            count = export_ids(output, export, source.resolve().name, queries_file, answers)
            out.print(clean(f"{export}: {count} records without collection texts"))

    run_command(verbose, body)
