"""``O1Embedding``: a LlamaIndex ``BaseEmbedding`` that thinks before embedding a query."""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from typing import Any

from llama_index.core.base.embeddings.base import BaseEmbedding, Embedding
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.events.base import BaseEvent
from llama_index.core.schema import BaseNode, MetadataMode
from pydantic import Field, PrivateAttr

from o1_rag.batching import MicroBatcher
from o1_rag.embedder import O1Embedder
from o1_rag.indexing import LLAMA_INDEX_NODE, AdoptReport, adopt_collection
from o1_rag.models import DEFAULT_MODEL
from o1_rag.search import check_query
from o1_rag.settings import O1Settings, reject_unknown
from o1_rag.store import DIM_KEY, FINGERPRINT_KEY, MODEL_KEY, O1Collection, open_client
from o1_rag.thinkers import CallableThinker, ThinkParams

dispatcher = get_dispatcher(__name__)
_THOUGHTS_LOCK = threading.Lock()


class O1ThoughtsEvent(BaseEvent):
    """Sent through LlamaIndex instrumentation each time a query is embedded: its thoughts (empty when it
    did not think)."""

    query: str
    thoughts: list[str]

    @classmethod
    def class_name(cls) -> str:
        return "O1ThoughtsEvent"


def llama_index_thinker(llm: Any, name: str | None = None) -> CallableThinker:
    """A LlamaIndex ``LLM`` as thinker: each query is sent ``num_thoughts`` times with the paper's prompt
    through ``llm.complete``; the LLM's own sampling settings apply. ``name`` keys the thought cache
    (default: the LLM's class and ``metadata.model_name``)."""
    if not hasattr(llm, "complete"):
        raise TypeError(f"llm must be a LlamaIndex LLM, not {type(llm).__name__}")
    if name is None:
        model_name = getattr(getattr(llm, "metadata", None), "model_name", None)
        name = f"llama-index:{type(llm).__name__}:{model_name or 'unknown'}"

    def generate(prompts: list[str], params: ThinkParams) -> list[str]:
        return [llm.complete(prompt).text for prompt in prompts]

    return CallableThinker(generate, name)


def stored_node(text: str, metadata: dict[str, Any]) -> BaseNode | None:
    """The node a LlamaIndex vector store wrote (its metadata, relationships and excluded keys, from
    ``_node_content``); None when no LlamaIndex store wrote this document or this LlamaIndex cannot read
    what it wrote."""
    if LLAMA_INDEX_NODE not in metadata:
        return None
    from llama_index.core.vector_stores.utils import metadata_dict_to_node

    try:
        return metadata_dict_to_node(metadata, text=text)
    except (ValueError, TypeError, KeyError):
        return None


def _embedded_text(text: str, metadata: dict[str, Any]) -> str:
    """The text LlamaIndex embedded for a stored document: a node's metadata and text, else the text."""
    node = stored_node(text, metadata)
    return text if node is None else node.get_content(metadata_mode=MetadataMode.EMBED)


class O1Embedding(O1Settings, BaseEmbedding):
    """O1 embedding for LlamaIndex: queries think first, texts (documents) do not.

    Embedding a query thinks (unless ``think="never"``): each query's thoughts are sent as an
    ``O1ThoughtsEvent`` through LlamaIndex instrumentation (add an event handler to the root dispatcher to
    see them). The thoughts behind the most recent queries are also kept in ``last_thoughts`` (query ->
    thoughts), so a
    caller can show what the thinking step wrote.

    Setup:
        ``make install`` at the repository root, or ``pip install -e integrations/llama-index``.

    Usage:
        .. code-block:: python

            from llama_index.core import Settings, VectorStoreIndex
            from llama_index.embeddings.o1rag import O1Embedding

            Settings.embed_model = O1Embedding()                       # o1-minilm: thinker + encoder
            Settings.embed_model = O1Embedding(llm=Settings.llm)       # the query engine's LLM thinks
            store = Settings.embed_model.chroma_vector_store("scifact-demo")   # made by `o1rag index`
            index = VectorStoreIndex.from_vector_store(store)
    """

    model_name: str = Field(
        default=DEFAULT_MODEL, description="Bundled alias, local folder or Hugging Face id."
    )
    llm: Any = Field(default=None, exclude=True, description="A LlamaIndex LLM that writes the thoughts.")
    thinker_name: str | None = Field(default=None, description="Names llm in the thought cache.")
    batch_window_ms: float = Field(default=20.0, ge=0)
    max_batch: int = Field(default=32, gt=0)
    keep_thoughts: int = Field(default=256, ge=0, description="How many recent queries last_thoughts keeps.")

    _embedder: O1Embedder = PrivateAttr()
    _batcher: MicroBatcher = PrivateAttr()
    _last_thoughts: OrderedDict = PrivateAttr(default_factory=OrderedDict)

    def __init__(self, embedder: O1Embedder | None = None, **kwargs: Any) -> None:
        reject_unknown(type(self), kwargs)
        super().__init__(**kwargs)
        thinker = llama_index_thinker(self.llm, self.thinker_name) if self.llm is not None else None
        self._embedder = embedder or self.load_embedder(self.model_name, thinker)
        if embedder is not None and thinker is not None:
            self._embedder.thinker = thinker
        self._batcher = MicroBatcher(self._query_batch, self.batch_window_ms / 1000, self.max_batch)
        self._last_thoughts = OrderedDict()

    def _pickled_private(self) -> dict[str, Any]:
        return {"embedder": self._embedder}

    def _restore(self, carried: dict[str, Any]) -> None:
        self._embedder = carried["embedder"]
        self._batcher = MicroBatcher(self._query_batch, self.batch_window_ms / 1000, self.max_batch)
        self._last_thoughts = OrderedDict()

    @classmethod
    def class_name(cls) -> str:
        return "O1Embedding"

    @property
    def embedder(self) -> O1Embedder:
        """The underlying ``O1Embedder``."""
        return self._embedder

    @property
    def last_thoughts(self) -> dict[str, list[str]]:
        """Thoughts of the most recent queries, oldest first."""
        with _THOUGHTS_LOCK:
            return dict(self._last_thoughts)

    def _query_batch(self, queries: list[str]) -> list[tuple[Embedding, list[str]]]:
        if self.think_choice() == "never":
            vectors = self._embedder.embed_queries(queries, think=False).tolist()
            return [(vector, []) for vector in vectors]
        vectors, thoughts = self._embedder.think_and_embed(
            queries, self.think_params(), use_cache=self.use_cache, query_weight=self.query_weight
        )
        with _THOUGHTS_LOCK:
            for query, per_query in zip(queries, thoughts, strict=True):
                self._last_thoughts.pop(query, None)
                self._last_thoughts[query] = per_query
            while len(self._last_thoughts) > self.keep_thoughts:
                self._last_thoughts.popitem(last=False)
        return list(zip(vectors.tolist(), thoughts, strict=True))

    def _get_query_embedding(self, query: str) -> Embedding:
        vector, thoughts = self._batcher.call(check_query(query))  # threads calling at once share calls
        dispatcher.event(O1ThoughtsEvent(query=query, thoughts=thoughts))
        return vector

    async def _aget_query_embedding(self, query: str) -> Embedding:
        vector, thoughts = await self._batcher.submit(check_query(query))
        dispatcher.event(O1ThoughtsEvent(query=query, thoughts=thoughts))
        return vector

    def _get_text_embedding(self, text: str) -> Embedding:
        return self._embedder.embed_documents([text])[0].tolist()

    def _get_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        return self._embedder.embed_documents(texts).tolist()

    async def _aget_text_embedding(self, text: str) -> Embedding:
        return await asyncio.to_thread(self._get_text_embedding, text)

    async def _aget_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        return await asyncio.to_thread(self._get_text_embeddings, texts)

    def chroma_vector_store(
        self, collection_name: str, persist_dir: str | None = None, client: Any = None, create: bool = False
    ) -> Any:
        """A ``ChromaVectorStore`` over an o1-rag collection, after the fingerprint check.

        With ``create=True`` a missing collection is created (cosine space, this embedder's fingerprint),
        for building a new index from documents.
        """
        from llama_index.vector_stores.chroma import ChromaVectorStore

        client = client if client is not None else open_client(persist_dir, create=create)
        fp = self._embedder.fingerprint
        if create:
            collection = O1Collection.create_or_open(
                client, collection_name, fp, self._embedder.dim, self._embedder.describe()
            )
        else:
            collection = O1Collection.open(client, collection_name, fp)
        return ChromaVectorStore(chroma_collection=collection.collection)

    def adopt(
        self,
        collection_name: str,
        persist_dir: str | None = None,
        client: Any = None,
        sample: int = 64,
        min_cosine: float = 0.999,
    ) -> AdoptReport:
        """Let this embedding search a collection a ``VectorStoreIndex`` built with another embedding of the
        same encoder (``o1_rag.indexing.adopt_collection``): the sampled nodes are embedded again as
        LlamaIndex embedded them (metadata with the text), and the encoder is recorded only if they match.
        """
        client = client if client is not None else open_client(persist_dir, create=False)
        collection = O1Collection.open(client, collection_name)
        return adopt_collection(collection, self._embedder, sample, min_cosine, embedded_text=_embedded_text)

    def as_retriever(self, collection_name: str, **kwargs: Any) -> Any:
        """An ``O1Retriever`` over the o1-rag collection ``collection_name`` with this embedding's thinking
        settings: the gate's ``think="auto"``, hybrid search with BM25 (``similarity_top_k``, ``persist_dir``,
        ``client``, ``hybrid``, ``feedback``, ``filters``, ``where``, ``vector_store_query_mode``,
        ``mmr_threshold``, ``mmr_prefetch_k``: see ``O1Retriever``)."""
        from llama_index.embeddings.o1rag.retriever import O1Retriever

        return O1Retriever(self, collection_name, **kwargs)

    def collection_metadata(self) -> dict[str, Any]:
        """Chroma metadata recording this embedder."""
        return {
            FINGERPRINT_KEY: self._embedder.fingerprint,
            DIM_KEY: self._embedder.dim,
            MODEL_KEY: self._embedder.describe(),
        }
