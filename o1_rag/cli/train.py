"""Training commands: ``train``, ``train-encoder`` and ``train-gate``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from o1_rag.cli._common import (
    DataRootOpt,
    DbOpt,
    LimitQueriesOpt,
    MaxStepsOpt,
    OutputDirOpt,
    ResumeOpt,
    TrainDeviceOpt,
    VerboseOpt,
    clean,
    out,
    progress_bars,
    recipe_overrides,
    run_command,
)
from o1_rag.cli._groups import ModelOptions, with_groups

RecipeOpt = Annotated[Path, typer.Option("--config", "-c", help="A TOML recipe (see train/).")]


def _recipe_command(trainer: str, doc: str) -> Callable[..., None]:
    """A command that runs one of the two recipe trainers: ``joint`` (``o1rag train``: an O1 LoRA adapter)
    or ``encoder`` (``o1rag train-encoder``: the encoder of a thinker + encoder model)."""

    def command(
        config: RecipeOpt,
        resume: ResumeOpt = False,
        output_dir: OutputDirOpt = None,
        max_steps: MaxStepsOpt = None,
        device: TrainDeviceOpt = None,
        data_root: DataRootOpt = None,
        verbose: VerboseOpt = False,
    ) -> None:
        def body() -> None:
            from accelerate import PartialState

            overrides = recipe_overrides(output_dir, max_steps, device, data_root)
            if trainer == "joint":
                from o1_rag.training.joint import train as run
                from o1_rag.training.recipe import load_recipe

                folder = run(load_recipe(config, overrides), resume=resume)
                out.print(clean(f"adapter saved to {folder}; use it with --adapter {folder}"))
            else:
                from o1_rag.training.encoder import load_encoder_recipe, train_encoder

                folder = train_encoder(load_encoder_recipe(config, overrides), resume=resume)
                out.print(clean(f"encoder adapter saved to {folder}; use it with --encoder {folder}"))
            # under torchrun: shut the process group down, or a process may abort in its threads at exit
            PartialState().destroy_process_group()

        run_command(verbose, body)

    command.__doc__ = doc
    command.__name__ = command.__qualname__ = "train" if trainer == "joint" else "train_encoder"
    return command


train = _recipe_command(
    "joint", "Train an O1 LoRA adapter (joint LM + contrastive loss) from synthesized thoughts."
)
train_encoder_cmd = _recipe_command(
    "encoder", "Fine-tune the encoder of a thinker + encoder model on query + thought (a LoRA adapter)."
)


@with_groups
def train_gate_cmd(
    data_dir: Annotated[
        Path,
        typer.Argument(help="BEIR folder of training queries with judgements (see train/heldout.py)."),
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="The gate file to write (o1_gate.json).")],
    limit_queries: LimitQueriesOpt = None,
    threshold: Annotated[
        float,
        typer.Option("--threshold", min=0.0, max=1.0, help="Think when the gate's probability reaches this."),
    ] = 0.5,
    model: ModelOptions = ModelOptions(),
    db: DbOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Fit the think="auto" gate: where thinking lowered the relevant documents' rank against the
    query-only search, predicted from the query-only hits (no generation at search time)."""

    def body() -> None:
        from o1_rag.gate import GATE_FILE, GateError, ThinkGate
        from o1_rag.training.gate import train_gate

        if output.is_dir() or (output.exists() and output.name != GATE_FILE):
            raise ValueError(
                f"--output {output}: give a path ending in {GATE_FILE} (existing files are kept)"
            )
        if output.exists():
            try:
                ThinkGate.load(output)
            except GateError:
                raise ValueError(f"--output {output} exists and is not a gate: it is kept") from None
        settings = model.eval_settings(db, exact=True)
        with progress_bars() as update:
            report = train_gate(data_dir, settings, limit_queries, threshold, progress=update)
        report.gate.save(output)
        out.print(
            clean(
                f"gate saved to {output}: {report.queries} queries, thinking helped {report.helped}, "
                f"hurt {report.hurt}, changed nothing on {report.unchanged}; the gate would think on "
                f"{report.would_think} of {report.queries}"
            )
        )

    run_command(verbose, body)
