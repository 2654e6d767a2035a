"""Option groups: options that several commands take together, declared once.

A group is a frozen dataclass declared with ``@option_group`` whose fields are annotated with
``_common``'s option aliases. A command names it as one parameter (``store: StoreOptions = StoreOptions()``)
and is wrapped by ``with_groups``: Typer then sees each field as an option of its own (the same flags, help
and defaults as if written out), and the command's body gets one group value built from them. The group also
says what its options are for (``StoreOptions.client()``, ``SamplingOptions.params()``), so that wiring
lives beside the declaration.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from o1_rag.cli._common import (
    AdapterOpt,
    AgreeOpt,
    ApiKeyEnvOpt,
    ConcurrencyOpt,
    DbOpt,
    DeviceOpt,
    HostOpt,
    LongDocumentsOpt,
    MaxNewOpt,
    ModelOpt,
    NumThoughtsOpt,
    PortOpt,
    PrecisionOpt,
    RepPenOpt,
    SeedOpt,
    TempOpt,
    ThinkerOpt,
    ThinkerUrlOpt,
    TopPOpt,
)
from o1_rag.models import DEFAULT_MODEL

F = TypeVar("F", bound=Callable[..., Any])
G = TypeVar("G", bound=type)
OPTION_GROUPS: set[type] = set()


def option_group(cls: G) -> G:
    """Declare ``cls`` (a frozen dataclass) an option group, whose fields ``with_groups`` spreads into
    options."""
    if not dataclasses.is_dataclass(cls) or not cls.__dataclass_params__.frozen:  # type: ignore[attr-defined]
        raise TypeError(f"{cls.__name__}: an option group is a frozen dataclass")
    OPTION_GROUPS.add(cls)
    return cls


def with_groups(command: F) -> F:
    """``command`` with each parameter whose type is an option group spread into the group's options (for
    Typer) and gathered back into one group value when it runs."""
    signature = inspect.signature(command, eval_str=True)
    groups = {
        name: param.annotation
        for name, param in signature.parameters.items()
        if param.annotation in OPTION_GROUPS
    }
    params: list[inspect.Parameter] = []
    for name, param in signature.parameters.items():
        if name not in groups:
            params.append(param)
            continue
        hints = typing.get_type_hints(groups[name], include_extras=True)
        params += [
            inspect.Parameter(f.name, param.kind, default=f.default, annotation=hints[f.name])
            for f in dataclasses.fields(groups[name])
        ]
    names = [p.name for p in params]
    if len(names) != len(set(names)):
        raise TypeError(f"{command.__name__}: an option group repeats a parameter of the command")

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        for name, group in groups.items():
            kwargs[name] = group(**{f.name: kwargs.pop(f.name) for f in dataclasses.fields(group)})
        return command(*args, **kwargs)

    run.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
    return typing.cast(F, run)


@option_group
@dataclass(frozen=True)
class ModelOptions:
    """Which O1 model, and where it runs."""

    model: ModelOpt = DEFAULT_MODEL
    adapter: AdapterOpt = None
    device: DeviceOpt = "auto"
    precision: PrecisionOpt = "auto"
    long_documents: LongDocumentsOpt = None

    def embedder(
        self,
        *,
        thinker: ThinkerOptions | None = None,
        encoder: str | None = None,
        think: bool = True,
        cache: bool = True,
        think_mode: str | None = None,
    ) -> Any:
        """The ``O1Embedder`` these options name; ``think=False`` loads no thinker at all."""
        from o1_rag.embedder import O1Embedder

        return O1Embedder.from_pretrained(
            self.model,
            self.adapter,
            thinker=(thinker.build() if thinker else None) if think else False,
            encoder=encoder,
            device=self.device,
            precision=self.precision,
            cache=cache,
            think_mode=think_mode,
            long_documents=self.long_documents,
        )

    def eval_settings(self, db: Path | None, thinker: ThinkerOptions | None = None, **fields: Any) -> Any:
        """``EvalSettings`` for this model (and thinker), the Chroma folder ``db`` and ``fields``."""
        from o1_rag.evaluation.context import EvalSettings

        named = dataclasses.asdict(thinker) if thinker is not None else {}
        return EvalSettings(
            model=self.model,
            adapter=self.adapter,
            device=self.device,
            precision=self.precision,
            long_documents=self.long_documents,
            db=str(db) if db else None,
            **named,
            **fields,
        )


@option_group
@dataclass(frozen=True)
class ThinkerOptions:
    """Who writes the thoughts when not the model's own thinker: a causal LM or an OpenAI-compatible URL."""

    thinker: ThinkerOpt = None
    thinker_url: ThinkerUrlOpt = None
    api_key_env: ApiKeyEnvOpt = None
    concurrency: ConcurrencyOpt = 8

    def build(self) -> Any:
        """The thinker these options name, or None for the model's own."""
        from o1_rag.thinkers import thinker_from_options

        return thinker_from_options(self.thinker, self.thinker_url, self.api_key_env, self.concurrency)


@option_group
@dataclass(frozen=True)
class SamplingOptions:
    """How thoughts are sampled (each left unset takes the model's default)."""

    num_thoughts: NumThoughtsOpt = None
    max_new_tokens: MaxNewOpt = None
    temperature: TempOpt = None
    top_p: TopPOpt = 0.9
    seed: SeedOpt = None
    repetition_penalty: RepPenOpt = None
    agree: AgreeOpt = None

    def params(self) -> Any:
        """These options as the library's ``ThinkParams``."""
        from o1_rag.thinkers import ThinkParams

        return ThinkParams(**dataclasses.asdict(self))


@option_group
@dataclass(frozen=True)
class StoreOptions:
    """Where the collections live: an embedded Chroma folder, or a Chroma server."""

    db: DbOpt = None
    chroma_host: HostOpt = None
    chroma_port: PortOpt = None

    def client(self, create: bool = True) -> Any:
        from o1_rag.store import open_client

        return open_client(self.db, self.chroma_host, self.chroma_port, create=create)

    def lexical_db(self) -> Path | None:
        """The embedded database folder whose lexical indexes sit beside it (None for a server)."""
        from o1_rag.store import default_db_path

        if self.chroma_host or self.chroma_port:
            return None
        return Path(self.db) if self.db is not None else default_db_path()
