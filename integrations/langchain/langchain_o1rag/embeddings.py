"""``O1Embeddings``: LangChain ``Embeddings`` backed by an ``O1Embedder``."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from langchain_core.callbacks.manager import adispatch_custom_event, dispatch_custom_event
from langchain_core.embeddings import Embeddings
from pydantic import ConfigDict, Field, PrivateAttr

from langchain_o1rag.thinker import THOUGHTS_EVENT, langchain_thinker
from o1_rag.batching import MicroBatcher
from o1_rag.models import DEFAULT_MODEL
from o1_rag.search import check_query
from o1_rag.settings import O1Settings, reject_unknown
from o1_rag.store import DIM_KEY, FINGERPRINT_KEY


class O1Embeddings(O1Settings, Embeddings):
    """O1 embeddings: ``embed_query`` thinks first (unless ``think=False``), ``embed_documents`` does not.

    Setup:
        ``make install`` at the repository root, or ``pip install -e integrations/langchain``.

    Instantiate:
        .. code-block:: python

            from langchain_o1rag import O1Embeddings

            embeddings = O1Embeddings()                      # o1-minilm: the bundled thinker + encoder
            embeddings = O1Embeddings(llm=chat_model)        # the chain's own LLM writes the thoughts

    Usage:
        .. code-block:: python

            from langchain_chroma import Chroma

            store = Chroma("notes", embedding_function=embeddings, persist_directory="./db",
                           collection_metadata=embeddings.collection_metadata())
            store.add_texts(["Aspirin thins the blood."])
            store.similarity_search("does aspirin prevent clots?", k=1)
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, protected_namespaces=())

    embedder: Any = Field(default=None, exclude=True, description="A ready O1Embedder (else one is loaded).")
    model: str = Field(default=DEFAULT_MODEL, description="Bundled alias, local folder or Hugging Face id.")
    llm: Any = Field(
        default=None, exclude=True, description="A LangChain chat model / Runnable that writes the thoughts."
    )
    thinker_name: str | None = Field(default=None, description="Names llm in the thought cache.")
    batch_window_ms: float = Field(default=20.0, description="How long concurrent aembed_query calls gather.")
    max_batch: int = 32

    _batcher: MicroBatcher = PrivateAttr()

    def __init__(self, **kwargs: Any) -> None:
        reject_unknown(type(self), kwargs)
        super().__init__(**kwargs)
        self._setup()  # outside pydantic validation, so a user mistake stays a one-line ValueError

    def _restore(self, carried: dict[str, Any]) -> None:
        self._setup()

    def _setup(self) -> None:
        thinker = langchain_thinker(self.llm, self.thinker_name) if self.llm is not None else None
        if self.embedder is None:
            self.embedder = self.load_embedder(self.model, thinker)
        elif thinker is not None:
            self.embedder.thinker = thinker
        self._batcher = MicroBatcher(self._embed_query_batch, self.batch_window_ms / 1000, self.max_batch)

    def params(self) -> Any:
        """The generation settings as ``ThinkParams``."""
        return self.think_params()

    def collection_metadata(self) -> dict[str, Any]:
        """Chroma collection metadata recording this embedder and cosine space (pass it when creating a
        collection)."""
        return {
            FINGERPRINT_KEY: self.embedder.fingerprint,
            DIM_KEY: self.embedder.dim,
            "hnsw:space": "cosine",
        }

    def _embed_query_batch(self, queries: list[str]) -> list[tuple[list[float], list[str]]]:
        if self.think_choice() == "never":
            vectors = self.embedder.embed_queries(queries, think=False).tolist()
            return [(vector, []) for vector in vectors]
        vectors, thoughts = self.embedder.think_and_embed(
            queries, self.think_params(), use_cache=self.use_cache, query_weight=self.query_weight
        )
        return list(zip(vectors.tolist(), thoughts, strict=True))

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed documents without thinking."""
        return self.embedder.embed_documents(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        """Think about the query (unless ``think="never"``), then embed it; the thoughts go to the
        callbacks of the run this is part of as the custom event ``o1_thoughts``."""
        vector, thoughts = self._batcher.call(check_query(text))  # threads calling at once share calls
        with contextlib.suppress(RuntimeError):  # outside a run there are no callbacks to tell
            dispatch_custom_event(THOUGHTS_EVENT, {"query": text, "thoughts": thoughts})
        return vector

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed documents in a worker thread."""
        return await asyncio.to_thread(self.embed_documents, texts)

    async def aembed_query(self, text: str) -> list[float]:
        """Embed a query off the event loop; concurrent calls share one batched think + embed. The thoughts
        go to the run's callbacks as ``o1_thoughts``."""
        vector, thoughts = await self._batcher.submit(check_query(text))
        with contextlib.suppress(RuntimeError):
            await adispatch_custom_event(THOUGHTS_EVENT, {"query": text, "thoughts": thoughts})
        return vector
