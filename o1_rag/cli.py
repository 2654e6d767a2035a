"""``o1rag``: the command line. It parses options and calls the library; nothing more."""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from o1_rag.errors import O1RagError
from o1_rag.models import BASE_MODEL, DEFAULT_MODEL

app = typer.Typer(
    name="o1rag",
    help="Retrievers that think before they search: index a collection, then search it with thoughts.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help texts are plain: "[default: ...]" must not be read as markup
    add_completion=False,
)
# Text from data and users (documents, queries, thoughts, names, paths, error messages) is printed as plain
# text: no markup is read from any string, and control characters are made visible (see ``_clean``).
out = Console(markup=False, highlight=False)
err = Console(stderr=True, markup=False, highlight=False)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _clean(value: object) -> str:
    """``value`` as text with control characters (ESC, CR, ...) shown as ``\\xNN`` instead of sent."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(value))


def _styled(label: str, style: str, text: object) -> Text:
    """``label`` in ``style``, then ``text`` as plain, cleaned text."""
    return Text.assemble((label, style), " ", _clean(text))


T = TypeVar("T")

ModelOpt = Annotated[
    str, typer.Option("--model", "-m", help="Bundled alias, local folder or Hugging Face id.")
]
AdapterOpt = Annotated[str | None, typer.Option("--adapter", help="Folder of a peft LoRA adapter.")]
DbOpt = Annotated[
    Path | None, typer.Option("--db", help="Embedded Chroma folder [default: $O1RAG_HOME/chroma].")
]
HostOpt = Annotated[str | None, typer.Option("--chroma-host", help="Use a running Chroma server instead.")]
PortOpt = Annotated[int | None, typer.Option("--chroma-port", help="Port of the Chroma server.")]
DeviceOpt = Annotated[str, typer.Option("--device", help="auto, cpu, cuda, cuda:1 ...")]
ThinkModeOpt = Annotated[
    str | None,
    typer.Option(
        "--think-mode",
        help="native (continue <thought>) or chat (the chat template); default: the model's o1 config.",
    ),
]
NoCacheOpt = Annotated[bool, typer.Option("--no-cache", help="Neither read nor write the thought cache.")]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Log more.")]
NumThoughtsOpt = Annotated[
    int | None,
    typer.Option("--num-thoughts", "-n", help="Thoughts sampled per query [default: the model's, else 3]."),
]
MaxNewOpt = Annotated[
    int | None,
    typer.Option("--max-new-tokens", help="Tokens per thought at most [default: the model's, else 64]."),
]
ThinkerOpt = Annotated[
    str | None,
    typer.Option(
        "--thinker",
        help="Who writes the thoughts: a causal LM (alias, folder, HF id), or the model name at "
        "--thinker-url [default: the model's own].",
    ),
]
ThinkerUrlOpt = Annotated[
    str | None,
    typer.Option("--thinker-url", help="OpenAI-compatible base URL of a thinker (e.g. http://host:8000/v1)."),
]
ConcurrencyOpt = Annotated[
    int,
    typer.Option(
        "--concurrency",
        min=1,
        help="Requests in flight at once to the server of --thinker-url / --expert-url.",
    ),
]
ApiKeyEnvOpt = Annotated[
    str | None,
    typer.Option(
        "--api-key-env",
        help="Name of an environment variable whose value is sent as the API key to the endpoint(s) given "
        "by URL; without it no key is sent.",
    ),
]
EncoderOpt = Annotated[
    str | None,
    typer.Option(
        "--encoder",
        help="A sentence-transformers encoder (all-minilm-l6-v2, folder, HF id) [default: the model's].",
    ),
]
TempOpt = Annotated[float, typer.Option("--temperature", help="Sampling temperature (0 = greedy).")]
TopPOpt = Annotated[float, typer.Option("--top-p", help="Nucleus sampling mass.")]
RepPenOpt = Annotated[
    float | None,
    typer.Option(
        "--repetition-penalty", help="Penalise repeated tokens in thoughts (1 = none; default: the model's)."
    ),
]
SeedOpt = Annotated[int | None, typer.Option("--seed", help="Make sampling reproducible.")]


def _setup_logging(verbose: bool) -> None:
    from rich.logging import RichHandler

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    logging.basicConfig(
        level=logging.WARNING, format="%(message)s", handlers=[RichHandler(console=err, show_path=False)]
    )
    logging.getLogger("o1_rag").setLevel(logging.DEBUG if verbose else logging.INFO)
    for noisy in ("bm25s", "httpx", "chromadb", "sentence_transformers"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        import transformers

        transformers.logging.set_verbosity_error()
        transformers.logging.disable_progress_bar()
    except ImportError:  # pragma: no cover - transformers is a dependency
        pass


def _is_connection_error(exc: BaseException) -> bool:
    """A Chroma server or an endpoint went away (httpx's transport errors, sqlite's read-only errors)."""
    import sqlite3

    try:
        import httpx
    except ImportError:  # pragma: no cover - chromadb depends on httpx
        return isinstance(exc, sqlite3.OperationalError)
    return isinstance(exc, (httpx.TransportError, sqlite3.OperationalError))


@contextmanager
def _user_errors() -> Iterator[None]:
    """Turn user mistakes into one line on stderr and exit code 1 (130 on Ctrl-C)."""
    try:
        yield
    except (O1RagError, ValueError) as exc:
        err.print(_styled("error:", "bold red", exc), soft_wrap=True)
        raise typer.Exit(1) from None
    except ModuleNotFoundError as exc:
        err.print(
            _styled(
                "error:",
                "bold red",
                f"this command needs the module '{exc.name}': pip install 'o1-rag[eval]'",
            ),
            soft_wrap=True,
        )
        raise typer.Exit(1) from None
    except OSError as exc:  # a path the user named: permissions, read-only folders, a file in the way
        err.print(_styled("error:", "bold red", exc), soft_wrap=True)
        raise typer.Exit(1) from None
    except Exception as exc:
        if not _is_connection_error(exc):
            raise
        err.print(_styled("error:", "bold red", f"lost the connection to a server ({exc}); re-run to resume"))
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        err.print("interrupted; work written so far is kept (re-run to resume)")
        raise typer.Exit(130) from None


def _run(verbose: bool, body: Callable[[], T]) -> T:
    _setup_logging(verbose)
    with _user_errors():
        return body()


@contextmanager
def _progress() -> Iterator[Callable[[str, int, int], None]]:
    """A rich progress display; yields ``update(label, done, total)`` (one bar per label)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    tasks: dict[str, Any] = {}
    with Progress(
        TextColumn("{task.description}", style="bold", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
    ) as bar:

        def update(label: str, done: int, total: int) -> None:
            if label not in tasks:
                tasks[label] = bar.add_task(label, total=total)
            bar.update(tasks[label], completed=done, total=total)

        yield update


def _embedder(
    model: str,
    adapter: str | None,
    device: str,
    no_cache: bool,
    think_mode: str | None = None,
    thinker: str | None = None,
    thinker_url: str | None = None,
    encoder: str | None = None,
    think: bool = True,
    api_key_env: str | None = None,
    concurrency: int = 8,
) -> Any:
    from o1_rag.embedder import O1Embedder
    from o1_rag.prompts import THINK_MODES
    from o1_rag.thinkers import thinker_from_options

    if think_mode is not None and think_mode not in THINK_MODES:
        raise ValueError(f"--think-mode must be one of {', '.join(THINK_MODES)}, got '{think_mode}'")
    return O1Embedder.from_pretrained(
        model,
        adapter,
        thinker=thinker_from_options(thinker, thinker_url, api_key_env, concurrency) if think else False,
        encoder=encoder,
        device=device,
        cache=not no_cache,
        think_mode=think_mode,
    )


def _lexical_db(db: str | None, host: str | None, port: int | None) -> Path | None:
    """The embedded database folder whose lexical indexes sit beside it (None for a server)."""
    from o1_rag.store import default_db_path

    if host or port:
        return None
    return Path(db) if db is not None else default_db_path()


def _api_key(variable: str | None) -> str | None:
    """The value of the environment variable named by ``--api-key-env`` (None when not asked)."""
    if variable is None:
        return None
    value = os.environ.get(variable)
    if not value:
        raise ValueError(f"--api-key-env {variable}: that environment variable is not set")
    return value


def _think_params(
    num_thoughts: int | None,
    max_new_tokens: int | None,
    temperature: float,
    top_p: float,
    seed: int | None,
    repetition_penalty: float | None = None,
) -> Any:
    from o1_rag.embedder import ThinkParams

    return ThinkParams(num_thoughts, max_new_tokens, temperature, top_p, seed, repetition_penalty)


@app.command()
def index(
    data_dir: Annotated[Path, typer.Argument(help="BEIR-format folder holding corpus.jsonl.")],
    collection: Annotated[
        str | None, typer.Option("--collection", "-c", help="[default: folder name]")
    ] = None,
    limit: Annotated[int | None, typer.Option("--limit", help="Index only the first N documents.")] = None,
    batch_size: Annotated[
        int, typer.Option("--batch-size", help="Documents embedded and written per step.")
    ] = 32,
    model: ModelOpt = DEFAULT_MODEL,
    adapter: AdapterOpt = None,
    encoder: EncoderOpt = None,
    db: DbOpt = None,
    chroma_host: HostOpt = None,
    chroma_port: PortOpt = None,
    device: DeviceOpt = "auto",
    no_lexical: Annotated[
        bool, typer.Option("--no-lexical", help="Skip the BM25 index that hybrid search uses.")
    ] = False,
    ray_address: Annotated[
        str | None,
        typer.Option(
            "--ray",
            metavar="ADDRESS",
            help="Embed on Ray: 'local' (this machine), 'auto', HOST:PORT or ray://HOST:10001 "
            "(needs o1-rag[ray]).",
        ),
    ] = None,
    ray_actors: Annotated[
        int, typer.Option("--ray-actors", min=1, help="Encoder actors (one model each) with --ray.")
    ] = 2,
    ray_cpus: Annotated[
        float, typer.Option("--ray-cpus", min=0.01, help="CPUs reserved per actor with --ray.")
    ] = 1.0,
    ray_gpus: Annotated[
        float | None,
        typer.Option(
            "--ray-gpus", min=0, help="GPUs per actor with --ray [default: 1 if the cluster has GPUs]."
        ),
    ] = None,
    verbose: VerboseOpt = False,
) -> None:
    """Embed a corpus into a Chroma collection and keep its BM25 index in step (resumable: re-run after an
    interruption); with --ray, on a Ray cluster."""

    def body() -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        from o1_rag.data import load_corpus
        from o1_rag.store import O1Collection, check_name, index_documents, open_client

        if limit is not None and limit <= 0:
            raise ValueError(f"--limit must be > 0, got {limit}")
        if batch_size <= 0:
            raise ValueError(f"--batch-size must be > 0, got {batch_size}")
        name = check_name(collection or data_dir.resolve().name)
        if ray_address is None:
            docs = load_corpus(data_dir)[:limit]
        else:
            from o1_rag.ray_index import connect

            connect(ray_address)  # fails fast (install hint, unreachable cluster) before loading a model
        client = open_client(db, chroma_host, chroma_port)
        embedder = _embedder(model, adapter, device, no_cache=True, encoder=encoder, think=False)
        target = O1Collection.create_or_open(
            client, name, embedder.fingerprint, embedder.dim, embedder.describe()
        )
        columns = (
            TextColumn("{task.description}", style="bold", markup=False),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}", markup=False),
            TimeRemainingColumn(),
        )
        with Progress(*columns, console=err, transient=False) as bar:
            task = bar.add_task(f"indexing {name}", total=None, rate="")

            def progress(done: int, total: int) -> None:
                speed = bar.tasks[0].speed
                bar.update(task, completed=done, total=total, rate=f"{speed:.1f} docs/s" if speed else "")

            if ray_address is None:
                report = index_documents(embedder, target, docs, batch_size=batch_size, progress=progress)
            else:
                from o1_rag.ray_index import EncoderSpec, ServerTarget, index_on_ray

                server = ServerTarget(name, chroma_host, chroma_port) if chroma_host or chroma_port else None
                report = index_on_ray(
                    EncoderSpec(model, adapter, encoder, device, embedder.fingerprint),
                    target,
                    data_dir,
                    address=ray_address,
                    actors=ray_actors,
                    batch_size=batch_size,
                    cpus_per_actor=ray_cpus,
                    gpus_per_actor=ray_gpus,
                    limit=limit,
                    server=server,
                    progress=progress,
                )
            if not no_lexical:
                from o1_rag.lexical import lexical_folder, sync_lexical

                lex_task = bar.add_task("BM25 index (from the collection)", total=None, rate="")
                sync_lexical(
                    target,
                    lexical_folder(target, _lexical_db(db, chroma_host, chroma_port)),
                    progress=lambda done, total: bar.update(lex_task, completed=done, total=total),
                )
        out.print(
            _clean(
                f"collection {name}: {target.count()} documents "
                f"({report.added} added at {report.docs_per_second:.1f} docs/s, "
                f"{report.skipped} already stored); "
                f"embedder {embedder.describe()}"
            )
        )

    _run(verbose, body)


@app.command()
def search(
    text: Annotated[str, typer.Argument(help="The query.")],
    collection: Annotated[str, typer.Option("--collection", "-c", help="Collection to search.")],
    k: Annotated[int, typer.Option("-k", "--top-k", help="How many documents to return.")] = 10,
    think: Annotated[
        str,
        typer.Option(
            "--think",
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
    show_thoughts: Annotated[bool, typer.Option("--show-thoughts", help="Print the thoughts used.")] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object instead of a table.")
    ] = False,
    num_thoughts: NumThoughtsOpt = None,
    max_new_tokens: MaxNewOpt = None,
    temperature: TempOpt = 0.1,
    top_p: TopPOpt = 0.9,
    seed: SeedOpt = None,
    repetition_penalty: RepPenOpt = None,
    query_weight: Annotated[
        float | None,
        typer.Option(
            "--query-weight",
            help="Mix the query-only embedding into the thought average (0-1; default: the model's, else 0).",
        ),
    ] = None,
    think_mode: ThinkModeOpt = None,
    model: ModelOpt = DEFAULT_MODEL,
    adapter: AdapterOpt = None,
    thinker: ThinkerOpt = None,
    thinker_url: ThinkerUrlOpt = None,
    api_key_env: ApiKeyEnvOpt = None,
    concurrency: ConcurrencyOpt = 8,
    encoder: EncoderOpt = None,
    db: DbOpt = None,
    chroma_host: HostOpt = None,
    chroma_port: PortOpt = None,
    device: DeviceOpt = "auto",
    no_cache: NoCacheOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Think about the query, embed it and print the best documents of a collection."""

    def body() -> None:
        from o1_rag import search as pipeline
        from o1_rag.store import O1Collection, open_client

        pipeline.check_query(text)
        if k <= 0:
            raise ValueError(f"-k must be > 0, got {k}")
        params = _think_params(num_thoughts, max_new_tokens, temperature, top_p, seed, repetition_penalty)
        if query_weight is not None and not 0.0 <= query_weight <= 1.0:
            raise ValueError(f"--query-weight must be in [0, 1], got {query_weight}")
        from o1_rag.gate import think_choice

        mode = "never" if no_think else think_choice(think)
        target = O1Collection.open(open_client(db, chroma_host, chroma_port, create=False), collection)
        embedder = _embedder(
            model,
            adapter,
            device,
            no_cache,
            think_mode,
            thinker,
            thinker_url,
            encoder,
            think=mode != "never",
            api_key_env=api_key_env,
            concurrency=concurrency,
        )
        if query_weight is not None:
            embedder.query_weight = query_weight
        target.check(embedder.fingerprint)
        lexical = None
        if hybrid:
            from o1_rag.lexical import lexical_index

            lexical = lexical_index(target, _lexical_db(db, chroma_host, chroma_port))
        [result] = pipeline.search(
            embedder,
            target,
            [text],
            k=k,
            think=mode,
            params=params,
            use_cache=not no_cache,
            lexical=lexical,
        )
        if as_json:
            payload = {
                "query": result.query,
                "collection": collection,
                "fingerprint": embedder.fingerprint,
                "thoughts": result.thoughts,
                "thinking": result.decision.describe() if result.decision else "",
                "hybrid": hybrid,
                "hits": [
                    {
                        "rank": r,
                        "id": h.id,
                        "score": h.score,
                        "dense_score": h.dense_score,
                        "lexical_score": h.lexical_score,
                        "title": h.metadata.get("title", ""),
                        "text": h.text,
                    }
                    for r, h in enumerate(result.hits, start=1)
                ],
            }
            sys.stdout.write(json.dumps(payload, ensure_ascii=False) + "\n")
            return
        if show_thoughts:
            if result.decision is not None:
                out.print(_styled("thinking:", "bold cyan", result.decision.describe()))
            for i, thought in enumerate(result.thoughts, start=1):
                out.print(_styled(f"thought {i}:", "bold cyan", thought))
        table = Table(title=_clean(f"{collection}: {text}"), title_justify="left")
        table.add_column("#", justify="right")
        table.add_column("fused" if hybrid else "cosine", justify="right")
        if hybrid:
            table.add_column("cosine", justify="right")
            table.add_column("bm25", justify="right")
        table.add_column("id")
        table.add_column("document", overflow="fold")
        for rank, hit in enumerate(result.hits, start=1):
            snippet = " ".join(hit.text.split())
            sides = [
                "-" if value is None else f"{value:.{digits}f}"
                for value, digits in ((hit.dense_score, 4), (hit.lexical_score, 2))
            ]
            table.add_row(
                str(rank),
                f"{hit.score:.4f}",
                *(sides if hybrid else []),
                _clean(hit.id),
                _clean(snippet[:160] + ("…" if len(snippet) > 160 else "")),
            )
        out.print(table)

    _run(verbose, body)


@app.command()
def think(
    text: Annotated[str, typer.Argument(help="The query to think about.")],
    num_thoughts: NumThoughtsOpt = None,
    max_new_tokens: MaxNewOpt = None,
    temperature: TempOpt = 0.1,
    top_p: TopPOpt = 0.9,
    seed: SeedOpt = None,
    repetition_penalty: RepPenOpt = None,
    think_mode: ThinkModeOpt = None,
    model: ModelOpt = DEFAULT_MODEL,
    adapter: AdapterOpt = None,
    thinker: ThinkerOpt = None,
    thinker_url: ThinkerUrlOpt = None,
    api_key_env: ApiKeyEnvOpt = None,
    concurrency: ConcurrencyOpt = 8,
    device: DeviceOpt = "auto",
    no_cache: NoCacheOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Print the thoughts the model writes for a query."""

    def body() -> None:

        from o1_rag.search import check_query

        check_query(text)
        params = _think_params(num_thoughts, max_new_tokens, temperature, top_p, seed, repetition_penalty)
        embedder = _embedder(
            model,
            adapter,
            device,
            no_cache,
            think_mode,
            thinker,
            thinker_url,
            api_key_env=api_key_env,
            concurrency=concurrency,
        )
        [thoughts] = embedder.think([text], params=params, use_cache=not no_cache)
        for i, thought in enumerate(thoughts, start=1):
            out.print(_styled(f"thought {i}:", "bold cyan", thought))

    _run(verbose, body)


@app.command()
def collections(
    db: DbOpt = None,
    chroma_host: HostOpt = None,
    chroma_port: PortOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """List the collections of a Chroma database with their size and embedder."""

    def body() -> None:
        from o1_rag.store import O1Collection, open_client

        client = open_client(db, chroma_host, chroma_port, create=False)
        table = Table()
        for column in ("collection", "documents", "fingerprint", "embedder"):
            table.add_column(column)
        for item in sorted(client.list_collections(), key=lambda c: c.name):
            opened = O1Collection.open(client, item.name)
            meta = opened.collection.metadata or {}
            table.add_row(
                _clean(opened.name),
                str(opened.count()),
                _clean(opened.fingerprint or "-"),
                _clean(meta.get("o1rag:model", "-")),
            )
        out.print(table)

    _run(verbose, body)


eval_app = typer.Typer(
    help="Evaluate retrieval (IR metrics) and RAG quality (ragas); write reports.", no_args_is_help=True
)
app.add_typer(eval_app, name="eval")


def _command_line(ctx: typer.Context) -> str:
    """The command as the user could retype it: the arguments and the options given explicitly."""
    import shlex

    words = ["o1rag", *ctx.command_path.split()[1:]]
    for param in ctx.command.params:
        source = ctx.get_parameter_source(param.name)
        value = ctx.params.get(param.name)
        if source is None or source.name not in ("COMMANDLINE", "ENVIRONMENT"):
            continue
        if param.param_type_name == "argument":
            words.append(str(value))
        elif getattr(param, "is_flag", False):
            names = param.opts if value or not param.secondary_opts else param.secondary_opts
            words.append(names[0])
        else:
            words += [param.opts[0], str(value)]
    return " ".join(shlex.quote(w) for w in words)


@eval_app.command("ir")
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
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="[default: evals/reports/<name>]")
    ] = None,
    limit_queries: Annotated[
        int | None, typer.Option("--limit-queries", help="Evaluate the first N.")
    ] = None,
    exact: Annotated[
        bool, typer.Option("--exact", help="Exact in-memory search for the O1 systems.")
    ] = False,
    generator: Annotated[
        str | None,
        typer.Option(
            "--generator", help="Causal LM writing HyDE passages [default: the evaluated model's thinker]."
        ),
    ] = None,
    num_thoughts: NumThoughtsOpt = None,
    max_new_tokens: MaxNewOpt = None,
    seed: Annotated[int, typer.Option("--seed", help="Sampling seed for thoughts and passages.")] = 0,
    repetition_penalty: RepPenOpt = None,
    model: ModelOpt = DEFAULT_MODEL,
    adapter: AdapterOpt = None,
    thinker: ThinkerOpt = None,
    thinker_url: ThinkerUrlOpt = None,
    api_key_env: ApiKeyEnvOpt = None,
    concurrency: ConcurrencyOpt = 8,
    encoder: EncoderOpt = None,
    db: DbOpt = None,
    device: DeviceOpt = "auto",
    verbose: VerboseOpt = False,
) -> None:
    """Score several retrieval systems on one collection (nDCG@10, Recall@100, MRR@10) and write a report."""

    def body() -> None:
        from o1_rag.evaluation.ir import METRICS, evaluate_ir
        from o1_rag.evaluation.report import check_report_target, write_ir_report
        from o1_rag.evaluation.systems import EvalSettings

        if output is not None:
            check_report_target(output)  # before any work: never after a long evaluation
        settings = EvalSettings(
            model=model,
            adapter=adapter,
            thinker=thinker,
            thinker_url=thinker_url,
            api_key_env=api_key_env,
            concurrency=concurrency,
            encoder=encoder,
            generator=generator,
            device=device,
            num_thoughts=num_thoughts,
            max_new_tokens=max_new_tokens,
            seed=seed,
            repetition_penalty=repetition_penalty,
            db=str(db) if db else None,
            exact=exact,
        )
        with _progress() as update:
            settings.progress = update
            result = evaluate_ir(data_dir, systems, settings, baseline=baseline, limit_queries=limit_queries)
        target = output or Path("evals") / "reports" / f"ir-{result.dataset}"
        write_ir_report(result, target, _command_line(ctx))
        table = Table(
            title=_clean(f"{result.dataset}: {result.num_queries} queries, {result.num_docs} documents")
        )
        for column in ("system", *METRICS, f"p vs {result.baseline}"):
            table.add_column(column, justify="left" if column == "system" else "right")
        for system in result.systems:
            p = result.p_values.get(system, {}).get("ndcg@10")
            table.add_row(
                _clean(system),
                *(f"{result.scores[system][m]:.3f}" for m in METRICS),
                "-" if p is None else f"{p:.3g}",
            )
        out.print(table)
        for system, note in result.notes.items():
            out.print(_clean(f"{system}: {note}"))
        out.print(_clean(f"report: {target / 'report.md'}"))

    _run(verbose, body)


@eval_app.command("table")
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
        summary = summarize(list(reports), metric, columns, pair)
        typer.echo(summary.markdown(), nl=False)

    _run(verbose, body)


@eval_app.command("frontier")
def eval_frontier(
    ctx: typer.Context,
    data_dir: Annotated[Path, typer.Argument(help="BEIR folder (corpus, queries, qrels).")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="[default: evals/reports/frontier-<name>]")
    ] = None,
    thoughts: Annotated[str, typer.Option("--thoughts", help="Thoughts per query to try, e.g. 1,3.")] = "1,3",
    tokens: Annotated[str, typer.Option("--tokens", help="Tokens per thought to try, e.g. 16,48.")] = "16,48",
    latency_queries: Annotated[
        int, typer.Option("--latency-queries", help="Queries timed one by one per setting.")
    ] = 6,
    limit_queries: Annotated[
        int | None, typer.Option("--limit-queries", help="Score the first N judged queries.")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Sampling seed for thoughts.")] = 0,
    model: ModelOpt = DEFAULT_MODEL,
    adapter: AdapterOpt = None,
    db: DbOpt = None,
    device: DeviceOpt = "auto",
    verbose: VerboseOpt = False,
) -> None:
    """Plot nDCG@10 against mean and p95 search latency for think never/auto/always, thinking budgets, dense
    and hybrid; the default setting is marked."""

    def body() -> None:
        from o1_rag.evaluation.frontier import evaluate_frontier, write_frontier_report
        from o1_rag.evaluation.report import check_report_target
        from o1_rag.evaluation.systems import EvalSettings

        if output is not None:
            check_report_target(output)

        def numbers(text: str, option: str) -> tuple[int, ...]:
            try:
                values = tuple(int(v) for v in text.split(",") if v.strip())
            except ValueError:
                raise ValueError(f"{option} takes whole numbers separated by commas, got '{text}'") from None
            if not values or min(values) <= 0:
                raise ValueError(f"{option} takes positive numbers, got '{text}'")
            return values

        grid = numbers(thoughts, "--thoughts"), numbers(tokens, "--tokens")
        settings = EvalSettings(
            model=model, adapter=adapter, device=device, seed=seed, db=str(db) if db else None
        )
        with _progress() as update:
            settings.progress = update
            result = evaluate_frontier(data_dir, settings, *grid, latency_queries, limit_queries, update)
        target = output or Path("evals") / "reports" / f"frontier-{result.dataset}"
        write_frontier_report(result, target, _command_line(ctx))
        table = Table(title=_clean(f"{result.dataset}: quality against latency"))
        for column in ("setting", "nDCG@10", "mean ms", "p95 ms", "thought on"):
            table.add_column(column, justify="left" if column == "setting" else "right")
        for p in result.points:
            table.add_row(
                _clean(p.label + (" (default)" if p.default else "")),
                f"{p.ndcg:.3f}",
                f"{p.mean_ms:.0f}",
                f"{p.p95_ms:.0f}",
                f"{p.thought_share:.0%}",
            )
        out.print(table)
        out.print(_clean(f"report: {target / 'report.md'}"))

    _run(verbose, body)


@eval_app.command("rag")
def eval_rag(
    ctx: typer.Context,
    data_dir: Annotated[Path, typer.Argument(help="Folder with qa.jsonl and corpus.jsonl (+ qrels.tsv).")],
    retrievers: Annotated[
        str, typer.Option("--retrievers", "-r", help="Comma-separated systems, as in eval ir.")
    ] = "bm25,o1",
    k: Annotated[int, typer.Option("-k", help="Contexts per question.")] = 3,
    limit: Annotated[
        int | None, typer.Option("--limit", help="Evaluate the first N answerable questions.")
    ] = None,
    generator: Annotated[
        str, typer.Option("--generator", help="Answering model (name or endpoint model).")
    ] = BASE_MODEL,
    generator_url: Annotated[
        str | None, typer.Option("--generator-url", help="OpenAI-compatible base URL.")
    ] = None,
    judge: Annotated[str, typer.Option("--judge", help="Judge model for the LLM metrics.")] = BASE_MODEL,
    judge_url: Annotated[str | None, typer.Option("--judge-url", help="OpenAI-compatible base URL.")] = None,
    api_key_env: ApiKeyEnvOpt = None,
    llm_metrics: Annotated[
        bool, typer.Option("--llm-metrics/--no-llm-metrics", help="Also run the LLM-judged metrics.")
    ] = True,
    max_new_tokens: Annotated[int, typer.Option("--answer-tokens", help="Tokens per answer at most.")] = 128,
    timeout: Annotated[
        int, typer.Option("--timeout", help="Seconds per judged sample (ragas RunConfig).")
    ] = 120,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="[default: evals/reports/<name>]")
    ] = None,
    num_thoughts: NumThoughtsOpt = None,
    seed: Annotated[int, typer.Option("--seed", help="Sampling seed for thoughts.")] = 0,
    model: ModelOpt = DEFAULT_MODEL,
    adapter: AdapterOpt = None,
    db: DbOpt = None,
    device: DeviceOpt = "auto",
    verbose: VerboseOpt = False,
) -> None:
    """Retrieve contexts with each retriever, answer with an LLM, score with ragas, write a report."""

    def body() -> None:
        from o1_rag.encoders import resolve_encoder_path
        from o1_rag.evaluation.llms import endpoint_llm, local_llm
        from o1_rag.evaluation.rag import evaluate_rag, load_qa
        from o1_rag.evaluation.report import check_report_target, write_rag_report
        from o1_rag.evaluation.systems import EvalSettings, parse_systems

        parse_systems(retrievers)
        load_qa(data_dir, limit)  # fail on bad input before loading any model
        if output is not None:
            check_report_target(output)
        if k <= 0:
            raise ValueError(f"-k must be > 0, got {k}")
        settings = EvalSettings(
            model=model,
            adapter=adapter,
            device=device,
            num_thoughts=num_thoughts,
            seed=seed,
            db=str(db) if db else None,
        )
        answerer = (
            endpoint_llm(generator_url, generator, max_new_tokens, _api_key(api_key_env))
            if generator_url
            else local_llm(generator, max_new_tokens, device=device)
        )
        from langchain_huggingface import HuggingFaceEmbeddings
        from ragas.embeddings import LangchainEmbeddingsWrapper

        # The bundled MiniLM embeds answers for the offline semantic-similarity metric (and the judge's).
        judge_embeddings = LangchainEmbeddingsWrapper(
            HuggingFaceEmbeddings(model_name=resolve_encoder_path("all-minilm-l6-v2")[0])
        )
        judge_llm = None
        if llm_metrics:
            from ragas.llms import LangchainLLMWrapper

            judge_llm = LangchainLLMWrapper(
                endpoint_llm(judge_url, judge, 512, _api_key(api_key_env))
                if judge_url
                else local_llm(judge, 256, device=device)
            )
        with _progress() as update:
            settings.progress = update
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
            )
        target = output or Path("evals") / "reports" / f"rag-{result.dataset}"
        write_rag_report(result, target, _command_line(ctx))
        metrics = list(dict.fromkeys(m for scores in result.scores.values() for m in scores))
        table = Table(title=_clean(f"{result.dataset}: {result.num_questions} questions, top-{k} contexts"))
        table.add_column("retriever")
        for metric in metrics:
            table.add_column(metric, justify="right")
        for name in result.retrievers:
            table.add_row(_clean(name), *(f"{result.scores[name].get(m, float('nan')):.3f}" for m in metrics))
        out.print(table)
        out.print(_clean(f"report: {target / 'report.md'}"))

    _run(verbose, body)


@app.command()
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
    expert_url: Annotated[
        str | None, typer.Option("--expert-url", help="OpenAI-compatible base URL.")
    ] = None,
    api_key_env: ApiKeyEnvOpt = None,
    concurrency: ConcurrencyOpt = 8,
    expert_model: Annotated[
        str, typer.Option("--expert-model", help="Model name at --expert-url.")
    ] = "default",
    candidates: Annotated[int, typer.Option("-k", "--candidates", help="Candidate thoughts per query.")] = 3,
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
    rule: Annotated[str, typer.Option("--vote", help="soft (sum of softmaxes) or hard (majority).")] = "soft",
    negatives: Annotated[
        int, typer.Option("--negatives", min=0, help="Hard negatives per query (BM25).")
    ] = 7,
    limit: Annotated[int | None, typer.Option("--limit", help="Only the first N queries.")] = None,
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens", help="Tokens per candidate.")] = 128,
    example_chars: Annotated[
        int, typer.Option("--example-chars", help="Characters kept of each in-context example passage.")
    ] = 600,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Local expert generation batch.")] = 32,
    chunk: Annotated[int, typer.Option("--chunk", help="Queries per written chunk (resume unit).")] = 16,
    export: Annotated[
        Path | None,
        typer.Option("--export-ids", help="Also write a copy without the collection's texts (shareable)."),
    ] = None,
    temperature: Annotated[float, typer.Option("--temperature", help="Expert sampling temperature.")] = 0.7,
    seed: Annotated[int, typer.Option("--seed", help="Seed for examples and sampling.")] = 0,
    device: DeviceOpt = "auto",
    verbose: VerboseOpt = False,
) -> None:
    """Draft candidate thoughts with an expert LLM and keep the one a retrieval committee votes for."""

    def body() -> None:
        from o1_rag.synthesis.committee import BM25Member, DenseMember
        from o1_rag.synthesis.expert import EndpointExpert, LocalExpert
        from o1_rag.synthesis.pipeline import export_ids, load_training_queries, synthesize

        if rule not in ("soft", "hard"):
            raise ValueError(f"--vote must be soft or hard, got '{rule}'")
        if limit is not None and limit <= 0:
            raise ValueError(f"--limit must be > 0, got {limit}")
        sizes = (("--example-chars", example_chars), ("--batch-size", batch_size), ("--chunk", chunk))
        for name, value in sizes:
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        items, corpus = load_training_queries(source, queries_file, qrels_file, answers)
        items = items[:limit]
        members: list[Any] = [
            DenseMember(m, None if device == "auto" else device) for m in (dense or ["all-minilm-l6-v2"])
        ]
        bm25 = BM25Member(corpus)
        if not no_bm25:
            members.append(bm25)
        drafter = (
            EndpointExpert(
                expert_url,
                expert_model,
                max_new_tokens,
                temperature,
                api_key=_api_key(api_key_env),
                workers=concurrency,
            )
            if expert_url
            else LocalExpert(expert, device, max_new_tokens, temperature, batch_size=batch_size)
        )
        with _progress() as progress:
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
            _clean(
                f"{output}: {written} new records ({len(items)} queries; committee: "
                f"{', '.join(m.name for m in members)})"
            )
        )
        if export is not None:
            if not source.is_dir():
                raise ValueError("--export-ids needs a BEIR folder source (the copy names its collection)")
            count = export_ids(output, export, source.resolve().name, queries_file, answers)
            out.print(_clean(f"{export}: {count} records without collection texts"))

    _run(verbose, body)


ResumeOpt = Annotated[bool, typer.Option("--resume", help="Continue from the last checkpoint.")]
OutputDirOpt = Annotated[str | None, typer.Option("--output-dir", help="Override [training] output_dir.")]
MaxStepsOpt = Annotated[int | None, typer.Option("--max-steps", help="Override [training] max_steps.")]
TrainDeviceOpt = Annotated[str | None, typer.Option("--device", help="Override [training] device.")]
DataRootOpt = Annotated[
    Path | None, typer.Option("--data-root", help="Override [data] data_root (collections folder).")
]


def _recipe_overrides(
    output_dir: str | None, max_steps: int | None, device: str | None, data_root: Path | None
) -> dict[str, Any]:
    return {
        "output_dir": output_dir,
        "max_steps": max_steps,
        "device": device,
        "data_root": str(data_root.resolve()) if data_root else None,
    }


@app.command()
def train(
    config: Annotated[Path, typer.Option("--config", "-c", help="A TOML recipe (see train/).")],
    resume: ResumeOpt = False,
    output_dir: OutputDirOpt = None,
    max_steps: MaxStepsOpt = None,
    device: TrainDeviceOpt = None,
    data_root: DataRootOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Train an O1 LoRA adapter (joint LM + contrastive loss) from synthesized thoughts."""

    def body() -> None:
        from o1_rag.training.recipe import load_recipe
        from o1_rag.training.recipe import train as run

        recipe = load_recipe(config, _recipe_overrides(output_dir, max_steps, device, data_root))
        folder = run(recipe, resume=resume)
        out.print(_clean(f"adapter saved to {folder}; use it with --adapter {folder}"))

    _run(verbose, body)


@app.command("train-encoder")
def train_encoder_cmd(
    config: Annotated[Path, typer.Option("--config", "-c", help="A TOML encoder recipe (see train/).")],
    resume: ResumeOpt = False,
    output_dir: OutputDirOpt = None,
    max_steps: MaxStepsOpt = None,
    device: TrainDeviceOpt = None,
    data_root: DataRootOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Fine-tune the encoder of a thinker + encoder model on query + thought (a LoRA adapter)."""

    def body() -> None:
        from o1_rag.training.encoder import load_encoder_recipe, train_encoder

        recipe = load_encoder_recipe(config, _recipe_overrides(output_dir, max_steps, device, data_root))
        folder = train_encoder(recipe, resume=resume)
        out.print(_clean(f"encoder adapter saved to {folder}; use it with --encoder {folder}"))

    _run(verbose, body)


@app.command("train-gate")
def train_gate_cmd(
    data_dir: Annotated[
        Path,
        typer.Argument(help="BEIR folder of training queries with judgements (see train/heldout.py)."),
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="The gate file to write (o1_gate.json).")],
    limit_queries: Annotated[
        int | None, typer.Option("--limit-queries", help="Train on the first N judged queries.")
    ] = None,
    threshold: Annotated[
        float, typer.Option("--threshold", help="Think when the gate's probability reaches this.")
    ] = 0.5,
    model: ModelOpt = DEFAULT_MODEL,
    adapter: AdapterOpt = None,
    db: DbOpt = None,
    device: DeviceOpt = "auto",
    verbose: VerboseOpt = False,
) -> None:
    """Fit the think="auto" gate: where thinking raised nDCG@10 over the query-only search, from the
    query-only hits (no generation at search time)."""

    def body() -> None:
        from o1_rag.evaluation.systems import EvalSettings
        from o1_rag.gate import GATE_FILE, GateError, ThinkGate
        from o1_rag.training.gate import train_gate

        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"--threshold must be in [0, 1], got {threshold}")
        if output.is_dir() or (output.exists() and output.name != GATE_FILE):
            raise ValueError(
                f"--output {output}: give a path ending in {GATE_FILE} (existing files are kept)"
            )
        if output.exists():
            try:
                ThinkGate.load(output)
            except GateError:
                raise ValueError(f"--output {output} exists and is not a gate: it is kept") from None
        settings = EvalSettings(model=model, adapter=adapter, device=device, db=str(db) if db else None)
        settings.exact = True
        with _progress() as update:
            report = train_gate(data_dir, settings, limit_queries, threshold, progress=update)
        report.gate.save(output)
        out.print(
            _clean(
                f"gate saved to {output}: {report.queries} queries, thinking helped {report.helped}, "
                f"hurt {report.hurt}, changed nothing on {report.unchanged}; the gate would think on "
                f"{report.would_think} of {report.queries}"
            )
        )

    _run(verbose, body)


@app.command()
def bench(
    suites: Annotated[
        str, typer.Option("--suites", help="Comma-separated: core, compare, langchain, train, think, ray.")
    ] = "core,compare,langchain",
    data: Annotated[
        Path | None, typer.Option("--data", help="BEIR folder for texts [default: generated].")
    ] = None,
    docs: Annotated[int, typer.Option("--docs", help="Documents to index.")] = 48,
    max_new_tokens: MaxNewOpt = 32,
    model: ModelOpt = DEFAULT_MODEL,
    adapter: AdapterOpt = None,
    device: DeviceOpt = "auto",
    verbose: VerboseOpt = False,
) -> None:
    """Speed benchmarks, printed as ratios against baselines measured in the same run."""

    def body() -> None:
        from o1_rag.evaluation.bench import run_bench

        if docs <= 0:
            raise ValueError(f"--docs must be > 0, got {docs}")
        title, rows = run_bench(
            [s.strip() for s in suites.split(",") if s.strip()],
            data,
            model,
            adapter,
            docs,
            max_new_tokens,
            device,
        )
        table = Table(title=_clean(title), title_justify="left")
        for column in ("measure", "o1-rag", "baseline", "ratio", "target"):
            table.add_column(column)
        for row in rows:
            table.add_row(*(_clean(v) for v in (row.measure, row.value, row.baseline, row.ratio, row.target)))
        out.print(table)

    _run(verbose, body)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
