"""``O1Embeddings``: LangChain ``Embeddings`` backed by an ``O1Embedder``."""

from __future__ import annotations

import asyncio
from typing import Any

from langchain_core.embeddings import Embeddings
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from o1_rag.batching import MicroBatcher
from o1_rag.embedder import O1Embedder, ThinkParams
from o1_rag.models import DEFAULT_MODEL
from o1_rag.search import check_query
from o1_rag.store import DIM_KEY, FINGERPRINT_KEY


class O1Embeddings(BaseModel, Embeddings):
    """O1 embeddings: ``embed_query`` thinks first (unless ``think=False``), ``embed_documents`` does not.

    Setup:
        ``make install`` at the repository root, or ``pip install -e integrations/langchain``.

    Instantiate:
        .. code-block:: python

            from langchain_o1rag import O1Embeddings

            embeddings = O1Embeddings(model="smollm2-135m-instruct", num_thoughts=3)

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
    adapter: str | None = Field(default=None, description="Folder of a peft LoRA adapter.")
    device: str = "auto"
    think: bool = Field(default=True, description="Think before embedding a query.")
    num_thoughts: int = 3
    max_new_tokens: int = 64
    temperature: float = 0.1
    top_p: float = 0.9
    seed: int | None = None
    use_cache: bool = Field(default=True, description="Use the persistent thought cache.")
    batch_window_ms: float = Field(default=20.0, description="How long concurrent aembed_query calls gather.")
    max_batch: int = 32

    _batcher: MicroBatcher = PrivateAttr()

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._setup()  # outside pydantic validation, so a user mistake stays a one-line ValueError

    def _setup(self) -> None:
        self.params()  # validate settings before loading anything
        if self.embedder is None:
            self.embedder = O1Embedder.from_pretrained(self.model, self.adapter, device=self.device)
        self._batcher = MicroBatcher(self._embed_query_batch, self.batch_window_ms / 1000, self.max_batch)

    def params(self) -> ThinkParams:
        """The generation settings as ``ThinkParams``."""
        return ThinkParams(self.num_thoughts, self.max_new_tokens, self.temperature, self.top_p, self.seed)

    def collection_metadata(self) -> dict[str, Any]:
        """Chroma collection metadata recording this embedder (pass it when creating a collection)."""
        return {FINGERPRINT_KEY: self.embedder.fingerprint, DIM_KEY: self.embedder.dim}

    def _embed_query_batch(self, queries: list[str]) -> list[list[float]]:
        if not self.think:
            return self.embedder.embed_queries(queries, think=False).tolist()
        vectors, _ = self.embedder.think_and_embed(queries, self.params(), use_cache=self.use_cache)
        return vectors.tolist()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed documents without thinking."""
        return self.embedder.embed_documents(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        """Think about the query (unless ``think=False``), then embed it."""
        return self._embed_query_batch([check_query(text)])[0]

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed documents in a worker thread."""
        return await asyncio.to_thread(self.embed_documents, texts)

    async def aembed_query(self, text: str) -> list[float]:
        """Embed a query off the event loop; concurrent calls share one batched think + embed."""
        return await self._batcher.submit(check_query(text))
