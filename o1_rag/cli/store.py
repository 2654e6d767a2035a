"""Store commands: ``index`` (embed a corpus into a collection, locally or on Ray), ``adopt`` (a collection
another tool built) and ``collections``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from o1_rag.cli._common import EncoderOpt, NoLexicalOpt, VerboseOpt, clean, err, out, run_command
from o1_rag.cli._groups import ModelOptions, StoreOptions, with_groups
from o1_rag.data import CHUNK_WORDS


@with_groups
def index(
    data_dir: Annotated[
        Path,
        typer.Argument(help="BEIR-format folder holding corpus.jsonl, or a folder of text files (--glob)."),
    ],
    collection: Annotated[
        str | None, typer.Option("--collection", "-c", help="[default: folder name]")
    ] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="Index only the first N documents.")
    ] = None,
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=1, help="Documents embedded and written per step.")
    ] = 32,
    globs: Annotated[
        list[str] | None,
        typer.Option(
            "--glob",
            help="Index the text files under DATA_DIR matching this pattern (repeatable, e.g. '**/*.md'), "
            "cut into passages of at most --chunk-words words.",
        ),
    ] = None,
    chunk_words: Annotated[
        int, typer.Option("--chunk-words", min=1, help="With --glob: the most words of a passage.")
    ] = CHUNK_WORDS,
    model: ModelOptions = ModelOptions(),
    encoder: EncoderOpt = None,
    store: StoreOptions = StoreOptions(),
    no_lexical: NoLexicalOpt = False,
    prune: Annotated[
        bool,
        typer.Option(
            "--prune", help="Also remove the collection's documents that the corpus no longer holds."
        ),
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
    interruption; a re-run also embeds again the documents whose text changed); with --ray, on a Ray
    cluster."""

    def body() -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        from o1_rag.data import load_corpus, load_text_files
        from o1_rag.indexing import check_prune, index_documents
        from o1_rag.store import O1Collection, check_name

        name = check_name(collection or data_dir.resolve().name)
        check_prune(prune, limit)
        if globs and ray_address is not None:
            raise ValueError("--glob cannot be used with --ray: the Ray workers read a BEIR corpus.jsonl")
        if globs:
            docs = load_text_files(data_dir, list(globs), chunk_words)[:limit]
        elif ray_address is None:
            docs = load_corpus(data_dir)[:limit]
        else:
            from o1_rag.ray_index import connect

            connect(ray_address)  # fails fast (install hint, unreachable cluster) before loading a model
        client = store.client()
        embedder = model.embedder(encoder=encoder, think=False, cache=False)
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
                report = index_documents(
                    embedder, target, docs, batch_size=batch_size, progress=progress, prune=prune
                )
            else:
                from o1_rag.ray_index import EncoderSpec, ServerTarget, index_on_ray

                host, port = store.chroma_host, store.chroma_port
                server = ServerTarget(name, host, port) if host or port else None
                report = index_on_ray(
                    EncoderSpec(
                        model.model,
                        model.adapter,
                        encoder,
                        model.device,
                        embedder.fingerprint,
                        model.precision,
                        model.long_documents,
                    ),
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
                    prune=prune,
                )
            if not no_lexical:
                from o1_rag.lexical import lexical_folder, sync_lexical

                lex_task = bar.add_task("BM25 index (from the collection)", total=None, rate="")
                sync_lexical(
                    target,
                    lexical_folder(target, store.lexical_db()),
                    progress=lambda done, total: bar.update(lex_task, completed=done, total=total),
                )
        out.print(
            clean(
                f"collection {name}: {target.count()} documents "
                f"({report.added} added, {report.updated} updated, {report.skipped} unchanged, "
                f"{report.removed} removed; {report.docs_per_second:.1f} docs/s); "
                f"embedder {embedder.describe()}"
            )
        )

    run_command(verbose, body)


@with_groups
def adopt(
    collection: Annotated[str, typer.Argument(help="A collection another tool built in the database.")],
    store: StoreOptions = StoreOptions(),
    model: ModelOptions = ModelOptions(),
    encoder: EncoderOpt = None,
    sample: Annotated[
        int, typer.Option("--sample", min=1, help="Stored documents embedded again to check the encoder.")
    ] = 64,
    min_cosine: Annotated[
        float,
        typer.Option(
            "--min-cosine", min=0.01, max=1.0, help="Least cosine between a stored vector and the encoder's."
        ),
    ] = 0.999,
    no_lexical: NoLexicalOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Search a Chroma collection built by another tool (LangChain, chromadb) with thinking: check on a
    sample that its vectors are the encoder's (e.g. --encoder all-minilm-l6-v2), then record the encoder
    in it and build its BM25 index. Nothing is re-embedded. Run it again after the other tool replaced
    documents in place, so the BM25 index reads them again. (A LlamaIndex one: O1Embedding.adopt.)"""

    def body() -> None:
        from o1_rag.indexing import adopt_collection
        from o1_rag.store import O1Collection

        client = store.client(create=False)
        target = O1Collection.open(client, collection)
        embedder = model.embedder(encoder=encoder, think=False, cache=False)
        report = adopt_collection(target, embedder, sample=sample, min_cosine=min_cosine)
        if not no_lexical:
            from o1_rag.lexical import lexical_folder, sync_lexical

            sync_lexical(target, lexical_folder(target, store.lexical_db()))
        checked = (
            "already recorded; the BM25 index reads the stored texts again"
            if report.already
            else f"{report.sampled} sampled vectors agree, least cosine {report.least_cosine:.4f}"
        )
        out.print(
            clean(
                f"collection {target.name}: {report.count} documents, encoder {embedder.describe()} "
                f"({checked}); search it with the same --model/--encoder"
            )
        )

    run_command(verbose, body)


@with_groups
def delete(
    collection: Annotated[str, typer.Argument(help="The collection to delete.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    store: StoreOptions = StoreOptions(),
    verbose: VerboseOpt = False,
) -> None:
    """Delete a collection o1rag made or adopted, with its BM25 index (asks first unless --yes)."""

    def body() -> None:
        from o1_rag.indexing import drop_collection
        from o1_rag.store import O1Collection

        client = store.client(create=False)
        target = O1Collection.open(client, collection)  # a missing one fails before the question
        question = f"Delete collection {collection} ({target.count()} documents) and its BM25 index?"
        if not yes and not typer.confirm(clean(question), default=False):
            raise ValueError("not deleted (answer y, or pass --yes)")
        count = drop_collection(client, collection, store.lexical_db())
        out.print(clean(f"deleted collection {collection} ({count} documents) and its BM25 index"))

    run_command(verbose, body)


@with_groups
def collections(store: StoreOptions = StoreOptions(), verbose: VerboseOpt = False) -> None:
    """List the collections of a Chroma database with their size and embedder."""

    def body() -> None:
        from o1_rag.store import O1Collection

        client = store.client(create=False)
        table = Table()
        for column in ("collection", "documents", "fingerprint", "embedder"):
            table.add_column(column)
        for item in sorted(client.list_collections(), key=lambda c: c.name):
            opened = O1Collection.open(client, item.name)
            meta = opened.collection.metadata or {}
            table.add_row(
                clean(opened.name),
                str(opened.count()),
                clean(opened.fingerprint or "-"),
                clean(meta.get("o1rag:model", "-")),
            )
        out.print(table)

    run_command(verbose, body)
