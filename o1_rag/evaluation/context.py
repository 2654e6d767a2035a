"""What the evaluation systems share: the settings (immutable configuration), the models loaded once per
run, and where progress goes.

``EvalSettings`` is plain configuration (what the CLI options say). ``EvalContext`` is one run's view of it:
the settings, a ``ModelPool`` that loads each embedder once and shares it between systems, and an optional
progress sink ``progress(label, done, total)``, passed explicitly by whoever starts the run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from o1_rag.data import Document
from o1_rag.errors import O1RagError
from o1_rag.feedback import FEEDBACK_DOCS
from o1_rag.models import DEFAULT_MODEL, o1rag_home
from o1_rag.retrievers import Ranking

Progress = Callable[[str, int, int], None]


class UnknownSystemError(O1RagError):
    """A system spec names no known system."""


class System(Protocol):
    """A retrieval system: rank the corpus for each query."""

    name: str

    def retrieve(self, corpus: list[Document], queries: dict[str, str], k: int) -> Ranking: ...


@dataclass(frozen=True)
class EvalSettings:
    """The evaluation's configuration: O1 model, thinking settings, where the caches and the Chroma store
    live. Immutable: derive a changed copy with ``dataclasses.replace``."""

    model: str = DEFAULT_MODEL
    adapter: str | None = None
    thinker: str | None = None
    thinker_url: str | None = None
    concurrency: int = 8  # requests in flight to thinker_url
    api_key_env: str | None = None
    encoder: str | None = None
    generator: str | None = None
    device: str = "auto"
    precision: str = "auto"  # how encoders compute (o1_rag.causal_lm.pick_precision)
    long_documents: str | None = None  # None: the model's own (o1_rag.encoders.windows)
    num_thoughts: int | None = None
    max_new_tokens: int | None = None
    temperature: float | None = None  # None: the model's
    seed: int | None = 0
    repetition_penalty: float | None = None
    agree: float | None = None  # early stop once two thoughts agree (cosine)
    db: str | None = None
    exact: bool = False
    feedback: int = FEEDBACK_DOCS  # the hybrids' pseudo-relevance feedback documents (o1_rag.feedback)

    def think_params(self, num_thoughts: int | None = None) -> Any:
        """The thinking settings of this evaluation (None fields: the model's defaults)."""
        from o1_rag.thinkers import ThinkParams

        return ThinkParams(
            num_thoughts or self.num_thoughts,
            self.max_new_tokens,
            self.temperature,
            seed=self.seed,
            repetition_penalty=self.repetition_penalty,
            agree=self.agree,
        )

    def cache_dir(self) -> Path:
        """Where corpus vectors of the dense baselines are cached (``$O1RAG_HOME/eval-cache``)."""
        path = o1rag_home() / "eval-cache"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def db_path(self) -> str:
        """The evaluation store's folder (``--db``, default ``$O1RAG_HOME/eval-db``)."""
        return self.db or str(o1rag_home() / "eval-db")


class ModelPool:
    """Loads each embedder an evaluation needs once; every system of the run shares it."""

    def __init__(self, settings: EvalSettings) -> None:
        self.settings = settings
        self._embedders: dict[tuple[str, str | None, str | None], Any] = {}

    def embedder(self, model: str, adapter: str | None = None, think_mode: str | None = None) -> Any:
        """The ``O1Embedder`` of (model, adapter, think mode), with the settings' thinker and encoder."""
        from o1_rag.embedder import O1Embedder
        from o1_rag.thinkers import thinker_from_options

        s = self.settings
        key = (model, adapter, think_mode)
        if key not in self._embedders:
            self._embedders[key] = O1Embedder.from_pretrained(
                model,
                adapter,
                thinker=thinker_from_options(s.thinker, s.thinker_url, s.api_key_env, s.concurrency),
                encoder=s.encoder,
                device=s.device,
                precision=s.precision,
                think_mode=think_mode,
                long_documents=s.long_documents,
            )
        return self._embedders[key]

    def writer(self, generator: str, encoder: Any) -> Any:
        """An ``O1Embedder`` whose chat thinker is the causal LM ``generator`` (HyDE's writer)."""
        from o1_rag.cache import ThoughtCache
        from o1_rag.embedder import O1Embedder
        from o1_rag.thinkers import LMThinker

        key = (f"hyde-writer:{generator}", None, "chat")
        if key not in self._embedders:
            thinker = LMThinker.from_pretrained(generator, mode="chat", device=self.settings.device)
            self._embedders[key] = O1Embedder(encoder, thinker, cache=ThoughtCache())
        return self._embedders[key]


@dataclass(frozen=True)
class EvalContext:
    """One evaluation run: its settings, the shared models and the progress sink (None: silent)."""

    settings: EvalSettings
    models: ModelPool
    progress: Progress | None = field(default=None, compare=False)

    @classmethod
    def create(cls, settings: EvalSettings | None = None, progress: Progress | None = None) -> EvalContext:
        """A fresh run context (its own model pool)."""
        settings = settings or EvalSettings()
        return cls(settings, ModelPool(settings), progress)

    @classmethod
    def of(cls, value: EvalContext | EvalSettings | None) -> EvalContext:
        """``value`` itself when it is a context, else a fresh context for those settings."""
        return value if isinstance(value, EvalContext) else cls.create(value)

    def tell(self, label: str, done: int, total: int) -> None:
        """Report progress, if anyone listens."""
        if self.progress is not None:
            self.progress(label, done, total)

    def sink(self, label: str) -> Callable[[int, int], None] | None:
        """A ``(done, total)`` callback reporting under ``label`` (None when nobody listens)."""
        if self.progress is None:
            return None
        progress = self.progress
        return lambda done, total: progress(label, done, total)
