"""Query commands: ``search`` and ``think``."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.table import Table

from o1_rag.cli._common import (
    EncoderOpt,
    FeedbackOpt,
    NoCacheOpt,
    ThinkModeOpt,
    VerboseOpt,
    clean,
    err,
    out,
    progress_bars,
    run_command,
    styled,
)
from o1_rag.cli._groups import ModelOptions, SamplingOptions, StoreOptions, ThinkerOptions, with_groups
from o1_rag.feedback import FEEDBACK_DOCS
from o1_rag.gate import THINK_CHOICES
from o1_rag.selection import FETCH_K


@with_groups
def search(
    text: Annotated[str | None, typer.Argument(help="The query (or --queries FILE, or -i).")] = None,
    collection: Annotated[
        str, typer.Option("--collection", "-c", help="Collection to search (required).")
    ] = "",
    queries_file: Annotated[
        Path | None,
        typer.Option(
            "--queries",
            help="Search every query of a file instead: a BEIR folder or .jsonl ({_id, text}), or text with "
            "one query per line; batched, written to --output as JSON lines (resumable).",
        ),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="With --queries: the JSON-lines file to append to.")
    ] = None,
    interactive: Annotated[
        bool,
        typer.Option(
            "--interactive",
            "-i",
            help="Search each line typed (or piped) on standard input, with the models loaded once; "
            "Ctrl-D ends.",
        ),
    ] = False,
    ids_only: Annotated[
        bool, typer.Option("--ids-only", help="With --queries: leave the documents' titles and texts out.")
    ] = False,
    k: Annotated[int, typer.Option("-k", "--top-k", min=1, help="How many documents to return.")] = 10,
    think: Annotated[
        Literal[THINK_CHOICES],  # the choices are the library's
        typer.Option(
            "--think",
            case_sensitive=False,
            help="auto: think only where the model's gate expects it to help; always; never.",
        ),
    ] = "auto",
    no_think: Annotated[bool, typer.Option("--no-think", help="Same as --think never.")] = False,
    hybrid: Annotated[
        bool,
        typer.Option(
            "--hybrid/--no-hybrid", help="Fuse the dense ranking with BM25's (built from the collection)."
        ),
    ] = True,
    feedback: FeedbackOpt = FEEDBACK_DOCS,
    where: Annotated[
        str | None,
        typer.Option(
            "--where",
            metavar="JSON",
            help='Only documents whose metadata match this Chroma filter, e.g. \'{"title": "notes.md"}\' '
            "(on both sides of hybrid search).",
        ),
    ] = None,
    mmr: Annotated[
        float | None,
        typer.Option(
            "--mmr",
            metavar="LAMBDA",
            min=0.0,
            max=1.0,
            help="Choose varied hits by maximal marginal relevance: 1 = relevance only, 0 = variety only "
            "(0.5 is LangChain's default).",
        ),
    ] = None,
    fetch_k: Annotated[
        int, typer.Option("--fetch-k", min=1, help="With --mmr: the best documents it chooses from.")
    ] = FETCH_K,
    min_score: Annotated[
        float | None,
        typer.Option(
            "--min-score",
            min=-1.0,
            max=1.0,
            help="Leave out hits whose cosine similarity to the query vector is below this.",
        ),
    ] = None,
    show_thoughts: Annotated[bool, typer.Option("--show-thoughts", help="Print the thoughts used.")] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a JSON object (a line per query) instead of a table.")
    ] = False,
    sampling: SamplingOptions = SamplingOptions(),
    query_weight: Annotated[
        float | None,
        typer.Option(
            "--query-weight",
            min=0.0,
            max=1.0,
            help="Mix the query-only embedding into the thought average (0-1; default: the model's, else 0).",
        ),
    ] = None,
    think_mode: ThinkModeOpt = None,
    model: ModelOptions = ModelOptions(),
    thinker: ThinkerOptions = ThinkerOptions(),
    encoder: EncoderOpt = None,
    store: StoreOptions = StoreOptions(),
    no_cache: NoCacheOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Think about the query, embed it and print the best documents of a collection; with --queries, search
    every query of a file in batches into a JSON-lines file."""

    def body() -> None:
        from o1_rag import search as pipeline
        from o1_rag.data import read_query_file
        from o1_rag.gate import think_choice
        from o1_rag.selection import Selection
        from o1_rag.store import O1Collection, parse_where

        if not collection:
            raise ValueError("give the collection to search: --collection NAME")
        if [text is not None, queries_file is not None, interactive].count(True) != 1:
            raise ValueError(
                "give the query as TEXT, a file of queries with --queries, or --interactive (one of them)"
            )
        if queries_file is None and (output is not None or ids_only):
            raise ValueError("--output and --ids-only go with --queries")
        if queries_file is not None and output is None:
            raise ValueError("--queries needs --output FILE (JSON lines, appended; a re-run resumes)")
        if queries_file is not None and (as_json or show_thoughts):
            raise ValueError(
                "--queries writes JSON lines to --output: --json and --show-thoughts are for one query"
            )
        batch = read_query_file(queries_file) if queries_file is not None else None
        if text is not None:
            pipeline.check_query(text)
        selection = Selection(mmr=mmr, fetch_k=fetch_k, min_score=min_score)
        metadata_filter = parse_where(where) if where is not None else None
        params = sampling.params()
        mode = "never" if no_think else think_choice(think)
        target = O1Collection.open(store.client(create=False), collection)
        embedder = model.embedder(
            thinker=thinker,
            encoder=encoder,
            think=mode != "never",
            cache=not no_cache,
            think_mode=think_mode,
        )
        if query_weight is not None:
            embedder.query_weight = query_weight
        target.check(embedder.fingerprint)
        lexical = None
        if hybrid:
            from o1_rag.lexical import lexical_index

            lexical = lexical_index(target, store.lexical_db())
        how = {
            "k": k,
            "think": mode,
            "params": params,
            "use_cache": not no_cache,
            "lexical": lexical,
            "feedback": feedback,
            "selection": selection,
            "where": metadata_filter,
        }
        if batch is not None and output is not None:
            _search_file(embedder, target, batch, output, texts=not ids_only, **how)
            return

        def show(query: str, result: Any) -> None:
            """One query's result: a JSON object (one line) or the thoughts and a table."""
            if as_json:
                found = result.to_dict()
                payload = {
                    "query": found["query"],
                    "collection": collection,
                    "fingerprint": embedder.fingerprint,
                    "thoughts": found["thoughts"],
                    "thinking": found["thinking"],
                    "hybrid": hybrid,
                    "feedback": feedback if hybrid else 0,
                    "where": metadata_filter,
                    "mmr": mmr,
                    "fetch_k": fetch_k if mmr is not None else None,
                    "min_score": min_score,
                    "hits": found["hits"],
                }
                sys.stdout.write(json.dumps(payload, ensure_ascii=False) + "\n")
                sys.stdout.flush()
                return
            if show_thoughts:
                if result.decision is not None:
                    out.print(styled("thinking:", "bold cyan", result.decision.describe()))
                for i, thought in enumerate(result.thoughts, start=1):
                    out.print(styled(f"thought {i}:", "bold cyan", thought))
            out.print(_hits_table(f"{collection}: {query}", result.hits, hybrid, mmr, fetch_k))

        if not interactive:
            [result] = pipeline.search(embedder, target, [text or ""], **how)
            show(text or "", result)
            return
        for query in _typed_queries():
            [result] = pipeline.search(embedder, target, [query], **how)
            show(query, result)

    run_command(verbose, body)


def _hits_table(title: str, hits: list[Any], hybrid: bool, mmr: float | None, fetch_k: int) -> Table:
    """The hits of one search as a table: rank, scores (fused, cosine and BM25 when hybrid), id, snippet."""
    order = f" (chosen by MMR, lambda {mmr:g}, from the best {fetch_k})" if mmr is not None else ""
    table = Table(title=clean(title + order), title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("fused" if hybrid else "cosine", justify="right")
    if hybrid:
        table.add_column("cosine", justify="right")
        table.add_column("bm25", justify="right")
    table.add_column("id")
    table.add_column("document", overflow="fold")
    for rank, hit in enumerate(hits, start=1):
        snippet = " ".join(hit.text.split())
        sides = [
            "-" if value is None else f"{value:.{digits}f}"
            for value, digits in ((hit.dense_score, 4), (hit.lexical_score, 2))
        ]
        table.add_row(
            str(rank),
            f"{hit.score:.4f}",
            *(sides if hybrid else []),
            clean(hit.id),
            clean(snippet[:160] + ("…" if len(snippet) > 160 else "")),
        )
    return table


def _typed_queries() -> Iterator[str]:
    """The non-empty lines of standard input, stripped, until its end (Ctrl-D) or Ctrl-C; at a terminal each
    is prompted for on standard error, so that standard output holds the results only."""
    at_terminal = sys.stdin.isatty()
    while True:
        if at_terminal:
            err.print("query> ", end="")
        try:
            line = sys.stdin.readline()
        except KeyboardInterrupt:
            line = ""
        if not line:
            if at_terminal:
                err.print()
            return
        if line.strip():
            yield line.strip()


def _search_file(
    embedder: Any, target: Any, queries: dict[str, str], output: Path, texts: bool, **how: Any
) -> None:
    """``o1rag search --queries``: every query into ``output`` (``how``: ``search``'s settings), with a
    progress bar and a summary line."""
    from o1_rag.bulk import search_to_file

    label = f"searching {target.name}"
    with progress_bars() as update:  # the bar shows once the output file is read and found to be a run
        report = search_to_file(
            embedder,
            target,
            queries,
            output,
            texts=texts,
            progress=lambda done, total: update(label, done, total),
            **how,
        )
    out.print(
        clean(
            f"{output}: {report.searched} queries searched ({report.skipped} already there), thought on "
            f"{report.thought} of {report.searched}; {report.queries_per_second:.1f} queries/s"
        )
    )


@with_groups
def think(
    text: Annotated[str, typer.Argument(help="The query to think about.")],
    sampling: SamplingOptions = SamplingOptions(),
    think_mode: ThinkModeOpt = None,
    model: ModelOptions = ModelOptions(),
    thinker: ThinkerOptions = ThinkerOptions(),
    no_cache: NoCacheOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Print the thoughts the model writes for a query."""

    def body() -> None:
        from o1_rag.search import check_query

        check_query(text)
        embedder = model.embedder(thinker=thinker, cache=not no_cache, think_mode=think_mode)
        [thoughts] = embedder.think([text], params=sampling.params(), use_cache=not no_cache)
        for i, thought in enumerate(thoughts, start=1):
            out.print(styled(f"thought {i}:", "bold cyan", thought))

    run_command(verbose, body)
