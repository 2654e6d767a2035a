"""Retrieval systems compared by ``o1rag eval ir``, behind one small interface.

Spec strings: ``bm25``, ``dense`` or ``dense:<sentence-transformers model>``, ``hyde`` (the generator writes
one hypothetical passage; its dense embedding is averaged with the query's; the generator defaults to the
O1 model's own thinker, so HyDE and O1 are measured with the same writer), ``o1-nothink`` and ``o1``
(the O1 embedder with the query-only ``v_q`` or with thinking, searched through Chroma), and ``o1-mix`` or
``o1-mix:<w>`` (thinking, with ``v_q`` mixed in at weight ``w`` in [0, 1], default 0.5; ``o1-mix:0`` is the
paper's pure thought average; same thoughts as ``o1``); ``o1-native`` and ``o1-chat`` think with the given
prompt. ``o1`` uses the model's own defaults: its think mode (``native`` for O1-trained models, the chat
template otherwise) and its query weight (0 unless the adapter sets one). Documents are embedded the same
way in every mode. Hybrid systems fuse a dense ranking with BM25's (``o1_rag.lexical.fuse``):
``bm25+dense`` (the bundled MiniLM), ``o1-hybrid`` and ``o1-nothink-hybrid`` (the O1 embedder with and
without thinking). ``o1-auto`` (and ``o1-auto-hybrid``) think only where the model's gate expects thinking to
help (``think="auto"``); the report says on how many queries they thought.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from o1_rag.cache import ThoughtCache
from o1_rag.data import Document
from o1_rag.encoders import BUNDLED_ENCODER
from o1_rag.errors import O1RagError
from o1_rag.models import DEFAULT_MODEL, o1rag_home
from o1_rag.retrievers import BM25Retriever, DenseRetriever, Ranking, corpus_digest, exact_search

logger = logging.getLogger(__name__)

DEFAULT_DENSE = BUNDLED_ENCODER
SYSTEM_NAMES = (
    "bm25",
    "bm25+dense",
    "o1-hybrid",
    "o1-nothink-hybrid",
    "o1-auto",
    "o1-auto-hybrid",
    "dense",
    "hyde",
    "o1-nothink",
    "o1",
    "o1-mix",
    "o1-native",
    "o1-chat",
)


class UnknownSystemError(O1RagError):
    """A system spec names no known system."""


class System(Protocol):
    """A retrieval system: rank the corpus for each query."""

    name: str

    def retrieve(self, corpus: list[Document], queries: dict[str, str], k: int) -> Ranking: ...


@dataclass(frozen=True)
class EvalSettings:
    """What the systems share: O1 model, thinking settings, where caches and the Chroma store live.

    Immutable: derive a changed copy with ``dataclasses.replace`` (the copies share the loaded models)."""

    model: str = DEFAULT_MODEL
    adapter: str | None = None
    thinker: str | None = None
    thinker_url: str | None = None
    concurrency: int = 8  # requests in flight to thinker_url
    api_key_env: str | None = None
    encoder: str | None = None
    generator: str | None = None
    device: str = "auto"
    num_thoughts: int | None = None
    max_new_tokens: int | None = None
    seed: int | None = 0
    repetition_penalty: float | None = None
    db: str | None = None
    exact: bool = False
    dataset: str = "data"
    progress: Callable[[str, int, int], None] | None = None
    _embedders: dict[tuple[str, str | None, str | None], Any] = field(default_factory=dict)

    def embedder(self, model: str, adapter: str | None = None, think_mode: str | None = None) -> Any:
        """One shared ``O1Embedder`` per (model, adapter, think mode), with the settings' thinker and
        encoder."""
        from o1_rag.embedder import O1Embedder
        from o1_rag.thinkers import thinker_from_options

        key = (model, adapter, think_mode)
        if key not in self._embedders:
            self._embedders[key] = O1Embedder.from_pretrained(
                model,
                adapter,
                thinker=thinker_from_options(
                    self.thinker, self.thinker_url, self.api_key_env, self.concurrency
                ),
                encoder=self.encoder,
                device=self.device,
                think_mode=think_mode,
            )
        return self._embedders[key]

    def think_params(self, num_thoughts: int | None = None) -> Any:
        """The thinking settings of this evaluation (None fields: the model's defaults)."""
        from o1_rag.embedder import ThinkParams

        return ThinkParams(
            num_thoughts or self.num_thoughts,
            self.max_new_tokens,
            seed=self.seed,
            repetition_penalty=self.repetition_penalty,
        )

    def cache_dir(self) -> Path:
        path = o1rag_home() / "eval-cache"
        path.mkdir(parents=True, exist_ok=True)
        return path


class BM25System:
    """bm25s (Lucene variant), English stop words, Snowball stemming (``o1_rag.retrievers.BM25Retriever``)."""

    name = "bm25"

    def __init__(self) -> None:
        self._retriever: BM25Retriever | None = None

    def lexical(self, corpus: list[Document]) -> BM25Retriever:
        """The BM25 retriever of ``corpus`` (built once per corpus)."""
        if self._retriever is None or self._retriever.digest != corpus_digest(corpus):
            self._retriever = BM25Retriever(corpus)
        return self._retriever

    def search(self, corpus: list[Document], queries: dict[str, str], k: int) -> dict[str, Any]:
        """Each query's ``LexicalHits``."""
        qids = list(queries)
        hits = self.lexical(corpus).search([queries[q] for q in qids], k)
        return dict(zip(qids, hits, strict=True))

    def retrieve(self, corpus: list[Document], queries: dict[str, str], k: int) -> Ranking:
        return {
            qid: dict(zip(hits.ids, hits.scores, strict=True))
            for qid, hits in self.search(corpus, queries, k).items()
        }


class HybridSystem:
    """A dense system's ranking fused with BM25's (``o1_rag.lexical.fuse``): ``bm25+dense``,
    ``o1-hybrid``, ``o1-nothink-hybrid``."""

    def __init__(self, name: str, dense: Any) -> None:
        self.name = name
        self.dense = dense
        self.lexical = BM25System()

    @property
    def thoughts(self) -> dict[str, list[str]]:
        return getattr(self.dense, "thoughts", {})

    @property
    def note(self) -> str:
        return getattr(self.dense, "note", "")

    def retrieve(self, corpus: list[Document], queries: dict[str, str], k: int) -> Ranking:
        from o1_rag.lexical import FUSION_DEPTH, fuse

        depth = max(k, FUSION_DEPTH)
        dense = self.dense.retrieve(corpus, queries, depth)
        lexical = self.lexical.search(corpus, queries, depth)
        ranking: Ranking = {}
        for qid in queries:
            ordered = sorted(dense.get(qid, {}).items(), key=lambda item: -item[1])
            ranking[qid] = {hit.id: hit.score for hit in fuse(ordered, lexical[qid], k, depth)}
        return ranking


class DenseSystem:
    """A sentence-transformers bi-encoder (default: the bundled all-MiniLM-L6-v2), corpus vectors cached."""

    def __init__(self, model: str, settings: EvalSettings) -> None:
        from o1_rag.errors import ModelNotFoundError

        self.name = "dense" if model == DEFAULT_DENSE else f"dense:{model}"
        try:
            self.encoder = DenseRetriever(model, device=settings.device, cache_dir=settings.cache_dir())
        except ModelNotFoundError as exc:
            raise UnknownSystemError(f"cannot load dense model '{model}': {exc}") from None

    def query_vectors(self, queries: list[str]) -> np.ndarray:
        return self.encoder.encode(queries)

    def retrieve(self, corpus: list[Document], queries: dict[str, str], k: int) -> Ranking:
        qids = list(queries)
        docs = self.encoder.corpus_vectors(corpus)
        return exact_search(
            self.query_vectors([queries[q] for q in qids]), docs, [d.id for d in corpus], qids, k
        )


class HydeSystem(DenseSystem):
    """HyDE: the generator writes one hypothetical passage per query; the dense embeddings of the query and
    the passage are averaged (as LangChain's and LlamaIndex's HyDE do).

    The generator is ``--generator`` (a causal LM, prompted through its chat template) or, by default, the
    thinker of the evaluated O1 model: then HyDE and O1 differ only in how the text becomes a vector.
    """

    def __init__(self, model: str, settings: EvalSettings) -> None:
        super().__init__(model, settings)
        self.name = "hyde" if model == DEFAULT_DENSE else f"hyde:{model}"
        self.settings = settings
        self.passages: dict[str, str] = {}

    def writer(self) -> Any:
        """An ``O1Embedder`` whose thinker writes the passages (its cache keeps them)."""
        from o1_rag.embedder import O1Embedder
        from o1_rag.thinkers import LMThinker

        s = self.settings
        if s.generator is None:
            own = s.embedder(s.model, s.adapter)
            return O1Embedder(self.encoder.encoder, own.thinker, cache=own.cache)
        key = (f"hyde-writer:{s.generator}", None, "chat")
        if key not in s._embedders:
            thinker = LMThinker.from_pretrained(s.generator, mode="chat", device=s.device)
            s._embedders[key] = O1Embedder(self.encoder.encoder, thinker, cache=ThoughtCache())
        return s._embedders[key]

    def query_vectors(self, queries: list[str]) -> np.ndarray:
        from o1_rag.encoders import normalise_rows

        passages = self.writer().think(queries, params=self.settings.think_params(num_thoughts=1))
        self.passages.update({q: p[0] for q, p in zip(queries, passages, strict=True)})
        both = self.encoder.encode(list(queries)) + self.encoder.encode(
            [p[0] or q for q, p in zip(queries, passages, strict=True)]
        )
        return normalise_rows(both)


class O1System:
    """The O1 embedder, with (``o1``, ``o1-mix``) or without (``o1-nothink``) thinking, through the Chroma
    store."""

    def __init__(
        self,
        think: bool | str,
        settings: EvalSettings,
        query_weight: float | None = None,
        think_mode: str | None = None,
    ) -> None:
        self.name = {"auto": "o1-auto", False: "o1-nothink"}.get(think, "o1")
        if query_weight is not None:
            self.name = "o1-mix" if query_weight == 0.5 else f"o1-mix:{query_weight:g}"
        if think_mode is not None:
            self.name = f"o1-{think_mode}"
        self.think = think
        self.think_mode = think_mode
        self.query_weight = query_weight
        self.settings = settings
        self.thoughts: dict[str, list[str]] = {}
        self.decisions: dict[str, Any] = {}  # query id -> GateDecision (auto)

    @property
    def note(self) -> str:
        """How often ``o1-auto`` thought."""
        if self.think != "auto" or not self.decisions:
            return ""
        thought = sum(d.think for d in self.decisions.values())
        return f"thought on {thought} of {len(self.decisions)} queries"

    def db_path(self) -> str:
        """The evaluation store's folder (``--db``, default ``$O1RAG_HOME/eval-db``)."""
        return self.settings.db or str(o1rag_home() / "eval-db")

    def client(self) -> Any:
        """The Chroma client of the evaluation store."""
        from o1_rag.store import open_client

        return open_client(self.db_path())

    def index(self, embedder: Any, corpus: list[Document]) -> Any:
        """The collection holding ``corpus`` for ``embedder``, indexed (resumably) when needed."""
        from o1_rag.store import O1Collection, index_documents

        name = f"eval-{corpus_digest(corpus)}-{embedder.fingerprint}"
        collection = O1Collection.create_or_open(
            self.client(), name, embedder.fingerprint, embedder.dim, embedder.describe()
        )
        progress = self.settings.progress
        callback = (lambda done, total: progress(f"{self.name}: index", done, total)) if progress else None
        index_documents(embedder, collection, corpus, progress=callback)
        return collection

    def retrieve(self, corpus: list[Document], queries: dict[str, str], k: int) -> Ranking:
        s = self.settings
        embedder = s.embedder(s.model, s.adapter)
        collection = self.index(embedder, corpus)  # the think mode changes queries only, not documents
        if self.think_mode is not None:
            embedder = s.embedder(s.model, s.adapter, self.think_mode)
        progress = s.progress
        embedder.progress = (
            (lambda done, total: progress(f"{self.name}: thinking", done, total)) if progress else None
        )
        try:
            return self._retrieve(embedder, collection, queries, k)
        finally:
            embedder.progress = None

    def _retrieve(self, embedder: Any, collection: Any, queries: dict[str, str], k: int) -> Ranking:
        s = self.settings
        qids = list(queries)
        texts = [queries[q] for q in qids]
        stored = None
        if s.exact:
            stored = collection.collection.get(include=["embeddings"], limit=collection.count())
            stored = (np.asarray(stored["embeddings"], dtype=np.float32), list(stored["ids"]))

        def run(vectors: np.ndarray, depth: int) -> Ranking:
            if stored is not None:
                return exact_search(vectors, stored[0], stored[1], qids, depth)
            hits = collection.search(vectors, k=depth)
            return {qid: {h.id: h.score for h in row} for qid, row in zip(qids, hits, strict=True)}

        if self.think == "auto":
            return self._auto(embedder, texts, qids, run, k)
        if self.think:
            vectors, thoughts = embedder.think_and_embed(
                texts, s.think_params(), query_weight=self.query_weight
            )
            self.thoughts.update(zip(qids, thoughts, strict=True))
        else:
            vectors = embedder.embed_queries(texts, think=False)
        return run(vectors, k)

    def _auto(
        self, embedder: Any, texts: list[str], qids: list[str], run: Callable[..., Ranking], k: int
    ) -> Ranking:
        """``think="auto"``: the gate decides from the query-only hits which queries think."""
        from o1_rag.gate import TOP
        from o1_rag.search import think_where_gated

        vectors = embedder.embed_queries(texts, think=False)
        probe = run(vectors, max(TOP, k))
        tops = [sorted(probe[qid].values(), reverse=True) for qid in qids]
        vectors, thoughts, decisions = think_where_gated(
            embedder, texts, vectors, tops, self.settings.think_params(), query_weight=self.query_weight
        )
        self.decisions.update(zip(qids, decisions, strict=True))
        self.thoughts.update((qid, t) for qid, t in zip(qids, thoughts, strict=True) if t)
        if not any(d.think for d in decisions):
            return probe
        return run(vectors, k)


def build_system(spec: str, settings: EvalSettings) -> System:
    """A system from its spec string (see the module docstring)."""
    name, _, arg = spec.strip().partition(":")
    name = name.lower()
    if name == "bm25" and not arg:
        return BM25System()
    if name == "bm25+dense" and not arg:
        return HybridSystem("bm25+dense", DenseSystem(DEFAULT_DENSE, settings))
    if name in {"o1-hybrid", "o1-nothink-hybrid", "o1-auto-hybrid"} and not arg:
        think = {"o1-hybrid": True, "o1-nothink-hybrid": False}.get(name, "auto")
        return HybridSystem(name, O1System(think, settings))
    if name in {"dense", "hyde"}:
        cls = DenseSystem if name == "dense" else HydeSystem
        return cls(arg or DEFAULT_DENSE, settings)
    if name in {"o1", "o1-nothink"} and not arg:
        return O1System(name == "o1", settings)
    if name == "o1-auto" and not arg:
        return O1System("auto", settings)
    if name in {"o1-native", "o1-chat"} and not arg:
        return O1System(True, settings, think_mode=name.removeprefix("o1-"))
    if name == "o1-mix":
        try:
            weight = float(arg) if arg else 0.5
        except ValueError:
            weight = -1.0
        if not 0.0 <= weight <= 1.0:
            raise UnknownSystemError(f"'{spec}': the o1-mix weight must be a number in [0, 1]")
        return O1System(True, settings, weight)
    raise UnknownSystemError(
        f"unknown system '{spec}': choose from bm25, bm25+dense, o1-hybrid, o1-nothink-hybrid, o1-auto, "
        "o1-auto-hybrid, "
        "dense[:MODEL], hyde[:MODEL], o1-nothink, o1, "
        "o1-mix[:W], o1-native, o1-chat"
    )


def parse_systems(specs: str) -> list[str]:
    """Split a comma-separated spec list, rejecting empties and unknown names before any work starts."""
    items = [s.strip() for s in specs.split(",") if s.strip()]
    if not items:
        raise UnknownSystemError("no systems given: e.g. --systems bm25,dense,hyde,o1-nothink,o1")
    for item in items:
        base = item.partition(":")[0].lower()
        if (
            base not in SYSTEM_NAMES
            or base == "o1-mix"
            or (
                base in {"bm25", "o1", "o1-nothink", "o1-auto", "o1-native", "o1-chat", "bm25+dense"}
                and ":" in item
            )
            or (base.endswith("-hybrid") and ":" in item)
        ):
            build_system(item, EvalSettings())  # raises the clear error
    if len(set(items)) != len(items):
        raise UnknownSystemError(f"a system is named twice in '{specs}'")
    return items
