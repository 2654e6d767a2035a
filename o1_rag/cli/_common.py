"""What every command shares: the consoles, option types, logging, the error funnel and small helpers.

Text from data and users (documents, queries, thoughts, names, paths, error messages) is printed as plain
text: no markup is read from any string, and control characters are made visible (see ``clean``).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import typer
from rich.console import Console
from rich.text import Text

from o1_rag.causal_lm import PRECISIONS
from o1_rag.encoders.windows import LONG_DOCUMENTS
from o1_rag.errors import O1RagError
from o1_rag.prompts import THINK_MODES

out = Console(markup=False, highlight=False)


err = Console(stderr=True, markup=False, highlight=False)


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def clean(value: object) -> str:
    """``value`` as text with control characters (ESC, CR, ...) shown as ``\\xNN`` instead of sent."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(value))


def styled(label: str, style: str, text: object) -> Text:
    """``label`` in ``style``, then ``text`` as plain, cleaned text."""
    return Text.assemble((label, style), " ", clean(text))


T = TypeVar("T")


ModelOpt = Annotated[
    str, typer.Option("--model", "-m", help="Bundled alias, local folder or Hugging Face id.")
]


AdapterOpt = Annotated[str | None, typer.Option("--adapter", help="Folder of a peft LoRA adapter.")]


DbOpt = Annotated[
    Path | None, typer.Option("--db", help="Embedded Chroma folder [default: $O1RAG_HOME/chroma].")
]


HostOpt = Annotated[str | None, typer.Option("--chroma-host", help="Use a running Chroma server instead.")]


PortOpt = Annotated[
    int | None, typer.Option("--chroma-port", min=1, max=65535, help="Port of the Chroma server.")
]


DeviceOpt = Annotated[str, typer.Option("--device", help="auto, cpu, cuda, cuda:1 ...")]


LongDocumentsOpt = Annotated[
    Literal[LONG_DOCUMENTS] | None,  # the choices are the library's
    typer.Option(
        "--long-documents",
        help="How a sentence-transformers encoder embeds a document longer than its input: windows (all of "
        "it, as overlapping windows) or truncate (its start only). Default: the model's own (windows for "
        "o1-minilm); with --encoder, that encoder's own (truncate unless it names an alias).",
        show_default=False,
    ),
]


PrecisionOpt = Annotated[
    Literal[PRECISIONS],  # the choices are the library's
    typer.Option(
        "--precision",
        help="How the encoder computes, and a separate thinker's weights: auto (bfloat16 where the CPU or "
        "GPU does it natively), float32, bfloat16.",
    ),
]


ThinkModeOpt = Annotated[
    Literal[THINK_MODES] | None,  # the choices are the library's
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


EndpointUrlOpt = Annotated[  # named by its parameter: --generator-url, --judge-url, --expert-url
    str | None, typer.Option(help="OpenAI-compatible base URL (instead of a local model).")
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
NoLexicalOpt = Annotated[
    bool, typer.Option("--no-lexical", help="Skip the BM25 index that hybrid search uses.")
]


TempOpt = Annotated[
    float | None,
    typer.Option(
        "--temperature", min=0.0, help="Sampling temperature, 0 = greedy [default: the model's, else 0.1]."
    ),
]


TopPOpt = Annotated[float, typer.Option("--top-p", min=0.0, max=1.0, help="Nucleus sampling mass.")]


RepPenOpt = Annotated[
    float | None,
    typer.Option(
        "--repetition-penalty", help="Penalise repeated tokens in thoughts (1 = none; default: the model's)."
    ),
]


FeedbackOpt = Annotated[
    int,
    typer.Option(
        "--feedback",
        min=0,
        help="Hybrid: move the dense query vector towards this many best fused documents and search the "
        "dense side again (pseudo-relevance feedback; 0 = off; 3 helps topical searches with many "
        "relevant documents).",
    ),
]
SeedOpt = Annotated[int | None, typer.Option("--seed", help="Make sampling reproducible.")]
AgreeOpt = Annotated[
    float | None,
    typer.Option(
        "--agree",
        min=0.0,
        max=1.0,
        help="Early stop: sample thoughts two, then one at a time, and stop once two agree (their vectors "
        "within this cosine, e.g. 0.95) [default: off].",
    ),
]


def setup_logging(verbose: bool) -> None:
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


def is_connection_error(exc: BaseException) -> bool:
    """A Chroma server or an endpoint went away (httpx's transport errors, sqlite's read-only errors)."""
    import sqlite3

    try:
        import httpx
    except ImportError:  # pragma: no cover - chromadb depends on httpx
        return isinstance(exc, sqlite3.OperationalError)
    return isinstance(exc, (httpx.TransportError, sqlite3.OperationalError))


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn user mistakes into one line on stderr and exit code 1 (130 on Ctrl-C)."""
    try:
        yield
    except (O1RagError, ValueError) as exc:
        err.print(styled("error:", "bold red", exc), soft_wrap=True)
        raise typer.Exit(1) from None
    except ModuleNotFoundError as exc:
        err.print(
            styled(
                "error:",
                "bold red",
                f"this command needs the module '{exc.name}': pip install 'o1-rag[eval]'",
            ),
            soft_wrap=True,
        )
        raise typer.Exit(1) from None
    except OSError as exc:  # a path the user named: permissions, read-only folders, a file in the way
        err.print(styled("error:", "bold red", exc), soft_wrap=True)
        raise typer.Exit(1) from None
    except Exception as exc:
        if not is_connection_error(exc):
            raise
        err.print(styled("error:", "bold red", f"lost the connection to a server ({exc}); re-run to resume"))
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        err.print("interrupted; work written so far is kept (re-run to resume)")
        raise typer.Exit(130) from None


def run_command(verbose: bool, body: Callable[[], T]) -> T:
    setup_logging(verbose)
    with user_errors():
        return body()


@contextmanager
def progress_bars() -> Iterator[Callable[[str, int, int], None]]:
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


def api_key_from_env(variable: str | None) -> str | None:
    """The value of the environment variable named by ``--api-key-env`` (None when not asked)."""
    if variable is None:
        return None
    value = os.environ.get(variable)
    if not value:
        raise ValueError(f"--api-key-env {variable}: that environment variable is not set")
    return value


def command_line(ctx: typer.Context) -> str:
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


LimitQueriesOpt = Annotated[
    int | None, typer.Option("--limit-queries", min=1, help="Use the first N judged queries only.")
]


ResumeOpt = Annotated[bool, typer.Option("--resume", help="Continue from the last checkpoint.")]


OutputDirOpt = Annotated[str | None, typer.Option("--output-dir", help="Override [training] output_dir.")]


MaxStepsOpt = Annotated[int | None, typer.Option("--max-steps", help="Override [training] max_steps.")]


TrainDeviceOpt = Annotated[str | None, typer.Option("--device", help="Override [training] device.")]


DataRootOpt = Annotated[
    Path | None, typer.Option("--data-root", help="Override [data] data_root (collections folder).")
]


def recipe_overrides(
    output_dir: str | None, max_steps: int | None, device: str | None, data_root: Path | None
) -> dict[str, Any]:
    return {
        "output_dir": output_dir,
        "max_steps": max_steps,
        "device": device,
        "data_root": str(data_root.resolve()) if data_root else None,
    }
