"""``o1rag``: the command line. Wiring only: each command lives in the module of its group, parses its
options and calls the library."""

from __future__ import annotations

import typer

from o1_rag.cli import bench, evaluate, query, store, synth, train

app = typer.Typer(
    name="o1rag",
    help="Retrievers that think before they search: index a collection, then search it with thoughts.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help texts are plain: "[default: ...]" must not be read as markup
    add_completion=False,
)
eval_app = typer.Typer(
    help="Evaluate retrieval (IR metrics) and RAG quality (ragas); write reports.", no_args_is_help=True
)


def _print_version(value: bool) -> None:
    if value:
        from o1_rag import __version__

        typer.echo(f"o1rag {__version__}")
        raise typer.Exit()


@app.callback(no_args_is_help=True)
def _main(
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Retrievers that think before they search: index a collection, then search it with thoughts."""


app.command()(store.index)
app.command()(store.adopt)
app.command()(query.search)
app.command()(query.think)
app.command()(store.collections)
app.command()(store.delete)
app.add_typer(eval_app, name="eval")
eval_app.command("ir")(evaluate.eval_ir)
eval_app.command("table")(evaluate.eval_table)
eval_app.command("runs")(evaluate.eval_runs)
eval_app.command("frontier")(evaluate.eval_frontier)
eval_app.command("rag")(evaluate.eval_rag)
app.command()(synth.synth)
app.command("train")(train.train)
app.command("train-encoder")(train.train_encoder_cmd)
app.command("train-gate")(train.train_gate_cmd)
app.command()(bench.bench)


def main() -> None:
    """Console-script entry point."""
    app()


__all__ = ["app", "main"]
