"""``O1Retriever``: a LangChain retriever that thinks, embeds and queries a Chroma collection."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, Field, PrivateAttr

from langchain_o1rag.thinker import THOUGHTS_EVENT, langchain_thinker
from o1_rag.batching import MicroBatcher
from o1_rag.feedback import FEEDBACK_DOCS, check_feedback
from o1_rag.gate import think_choice
from o1_rag.lexical import lexical_index
from o1_rag.models import DEFAULT_MODEL
from o1_rag.search import QueryResult, check_query, search
from o1_rag.selection import FETCH_K, LAMBDA_MULT, Selection
from o1_rag.settings import O1Settings, reject_unknown
from o1_rag.store import O1Collection, default_db_path, open_client

SEARCH_KWARGS = ("k", "filter", "think", "hybrid", "feedback", "fetch_k", "lambda_mult", "score_threshold")
SEARCH_TYPES = ("similarity", "mmr", "similarity_score_threshold")


def check_search_kwargs(search_kwargs: Any) -> None:
    """``search_kwargs`` must be a dict of the per-call settings."""
    if not isinstance(search_kwargs, dict):
        raise ValueError(f"search_kwargs must be a dict, got {type(search_kwargs).__name__}")
    unknown = sorted(set(search_kwargs) - set(SEARCH_KWARGS))
    if unknown:
        raise ValueError(f"unknown search_kwargs key '{unknown[0]}': use {', '.join(SEARCH_KWARGS)}")


def _event(query: str, result: QueryResult) -> dict[str, Any]:
    thinking = result.decision.describe() if result.decision else ""
    return {"query": query, "thoughts": result.thoughts, "thinking": thinking}


class O1Retriever(O1Settings, BaseRetriever):
    """Retriever that thinks about the query before searching a Chroma collection built by o1-rag.

    Each returned ``Document`` has ``metadata["id"]`` (the corpus id), ``metadata["score"]`` (the fused
    score of hybrid search, the default, or the cosine similarity with ``hybrid=False``),
    ``metadata["dense_score"]`` (cosine similarity, None when only BM25 found it),
    ``metadata["lexical_score"]`` (BM25, None when only the dense side found it) and
    ``metadata["o1_thoughts"]`` (the thoughts behind the query embedding) and ``metadata["o1_thinking"]``
    (whether and why the query thought, e.g. ``auto: skipped thinking (gate p=0.31)``). Both are also sent
    to the callbacks as a custom event ``o1_thoughts``, so a tracer shows why a document came back.
    Concurrent ``ainvoke`` calls are gathered into one batched think + embed call; ``invoke`` calls from
    several threads at once (``retriever.batch(queries)``, a threaded server) share batched calls too: a
    lone call runs at once, and calls arriving while one runs go together into the next.

    Setup:
        ``make install`` at the repository root, then build a collection: ``o1rag index DATA --collection
        scifact``.

    Instantiate:
        .. code-block:: python

            from langchain_o1rag import O1Retriever

            retriever = O1Retriever(collection_name="scifact", k=5)            # default embedded Chroma
            retriever = O1Retriever(collection_name="scifact", persist_directory="./db", query_weight=0.5)
            retriever = O1Retriever(collection_name="scifact", llm=chat_model)  # the chain's LLM thinks

    ``search_type`` and ``search_kwargs`` read as those of LangChain's vector-store retrievers:
    ``"mmr"`` chooses ``k`` varied documents from the ``fetch_k`` best by maximal marginal relevance
    (``lambda_mult``: 1 relevance only, 0 variety only); ``"similarity_score_threshold"`` leaves out
    documents whose cosine similarity to the query vector is below ``score_threshold``
    (``o1_rag.selection``). Both work on the hybrid ranking too.

    Usage:
        .. code-block:: python

            docs = retriever.invoke("Cold exposure increases BAT recruitment.")
            docs[0].metadata["o1_thoughts"]
            docs = await retriever.ainvoke("...", k=3, filter={"title": "..."})
            varied = O1Retriever(collection_name="scifact", search_type="mmr", search_kwargs={"fetch_k": 30})
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, protected_namespaces=())

    embedder: Any = Field(default=None, exclude=True, description="A ready O1Embedder (else one is loaded).")
    model: str = Field(default=DEFAULT_MODEL, description="Bundled alias, local folder or Hugging Face id.")
    llm: Any = Field(
        default=None, exclude=True, description="A LangChain chat model / Runnable that writes the thoughts."
    )
    thinker_name: str | None = Field(default=None, description="Names llm in the thought cache.")
    collection_name: str | None = Field(default=None, description="Chroma collection built by o1-rag.")
    persist_directory: str | None = Field(
        default=None, description="Embedded Chroma folder (default o1rag's)."
    )
    client: Any = Field(default=None, exclude=True, description="A chromadb client (instead of a folder).")
    vectorstore: Any = Field(default=None, exclude=True, description="A langchain_chroma.Chroma store.")
    k: int = 4
    search_kwargs: dict[str, Any] = Field(
        default_factory=dict,
        description=f"Search settings in one dict, as LangChain's vector-store retrievers take them: "
        f"{', '.join(SEARCH_KWARGS)}.",
    )
    hybrid: bool = Field(
        default=True,
        description="Fuse the dense ranking with BM25's (the BM25 index is built from the collection).",
    )
    feedback: int = Field(
        default=FEEDBACK_DOCS,
        description="Hybrid: how many of the first fused ranking's best documents the dense query vector "
        "moves towards before the dense side searches again (pseudo-relevance feedback; 0 = off, the "
        "default; 3 helps topical searches with many relevant documents; o1_rag.feedback).",
    )
    filter: dict[str, Any] | None = Field(default=None, description="Chroma metadata filter (where).")
    search_type: str = Field(
        default="similarity",
        description="similarity (the ranking's first k), mmr (varied documents) or "
        "similarity_score_threshold (documents at least score_threshold similar to the query).",
    )
    fetch_k: int = Field(default=FETCH_K, description="mmr: the best documents it chooses k from.")
    lambda_mult: float = Field(default=LAMBDA_MULT, description="mmr: 1 = relevance only, 0 = variety only.")
    score_threshold: float | None = Field(
        default=None, description="Least cosine similarity to the query vector of a returned document."
    )
    batch_window_ms: float = 20.0
    max_batch: int = 32

    _collection: O1Collection = PrivateAttr()
    _lexical_db: str | None = PrivateAttr(default=None)
    _batcher: MicroBatcher = PrivateAttr()

    def __init__(self, **kwargs: Any) -> None:
        reject_unknown(type(self), kwargs)
        search_kwargs = kwargs.get("search_kwargs") or {}
        check_search_kwargs(search_kwargs)
        for key, value in search_kwargs.items():  # LangChain's convention: search settings in one dict
            if key in kwargs and kwargs[key] != value:
                raise ValueError(f"'{key}' is given twice, as an argument and in search_kwargs")
            kwargs[key] = value
        super().__init__(**kwargs)
        self._setup()  # outside pydantic validation, so a user mistake stays a one-line ValueError

    @classmethod
    def from_documents(
        cls,
        documents: Iterable[Document],
        *,
        collection_name: str,
        persist_directory: str | None = None,
        client: Any = None,
        prune: bool = False,
        batch_size: int = 32,
        **kwargs: Any,
    ) -> O1Retriever:
        """Index ``documents`` into the o1-rag collection ``collection_name`` (created if new) and return a
        retriever over it, as ``BM25Retriever.from_documents`` does for its own index.

        Indexing is o1-rag's: only documents that are new or whose text or metadata changed are embedded
        (a document's ``id``, else a digest of its text and metadata, identifies it), ``prune=True`` also
        removes the collection's documents that ``documents`` no longer holds, and the BM25 side is
        built from the collection (here, when the retriever searches hybrid, so the first search does not
        wait for it). ``metadata["title"]`` becomes the title; other metadata Chroma can
        store (strings, numbers, booleans) is kept and filterable. ``kwargs`` are the retriever's own
        (``model``, ``k``, ``search_type`` ...).
        """
        from langchain_o1rag.documents import corpus_documents
        from o1_rag.indexing import index_documents

        corpus, _ = corpus_documents(documents)
        embedder = kwargs.pop("embedder", None)
        if embedder is None:
            loading = {key: kwargs[key] for key in O1Settings.model_fields if key in kwargs}
            embedder = O1Settings(**loading).load_embedder(kwargs.get("model", DEFAULT_MODEL))
        store = client if client is not None else open_client(persist_directory)  # created if new
        target = O1Collection.create_or_open(
            store, collection_name, embedder.fingerprint, embedder.dim, embedder.describe()
        )
        index_documents(embedder, target, corpus, batch_size=batch_size, prune=prune)
        retriever = cls(
            embedder=embedder,
            collection_name=collection_name,
            persist_directory=persist_directory,
            client=client,
            **kwargs,
        )
        retriever._follow_lexical()
        return retriever

    @classmethod
    def from_texts(
        cls,
        texts: Iterable[str],
        metadatas: Iterable[dict[str, Any]] | None = None,
        ids: Iterable[str] | None = None,
        **kwargs: Any,
    ) -> O1Retriever:
        """``from_documents`` for plain texts, with optional metadata and ids (one per text)."""
        texts = list(texts)
        metas = list(metadatas) if metadatas is not None else [{} for _ in texts]
        names = list(ids) if ids is not None else [None] * len(texts)
        if not len(texts) == len(metas) == len(names):
            raise ValueError(
                f"{len(texts)} texts, {len(metas)} metadatas and {len(names)} ids: give one each"
            )
        documents = [
            Document(page_content=t, metadata=m, id=i) for t, m, i in zip(texts, metas, names, strict=True)
        ]
        return cls.from_documents(documents, **kwargs)

    def add_documents(
        self, documents: Iterable[Document], *, ids: Sequence[str] | None = None, batch_size: int = 32
    ) -> list[str]:
        """Embed ``documents`` into the retriever's collection and return their ids, in order (as
        ``VectorStoreRetriever.add_documents`` does); the next search sees them, on the BM25 side too (a
        hybrid retriever brings its BM25 side up to date here, so the next search does not wait for it).

        Ids, titles and metadata are read as in ``from_documents`` (``ids``, one per document, replace
        the documents' own); a document already stored under its id is embedded again only when its text
        or metadata changed.

        Raises:
            ValueError: ``ids`` not one per document, a document with no text, or two different documents
                under one id.
        """
        from langchain_o1rag.documents import corpus_documents
        from o1_rag.indexing import index_documents

        docs = list(documents)
        if ids is not None:
            ids = list(ids)
            if len(ids) != len(docs):
                raise ValueError(f"{len(docs)} documents and {len(ids)} ids: give one id per document")
            docs = [doc.model_copy(update={"id": name}) for doc, name in zip(docs, ids, strict=True)]
        corpus, names = corpus_documents(docs)
        index_documents(self.embedder, self._collection, corpus, batch_size=batch_size)
        self._follow_lexical()
        return names

    async def aadd_documents(
        self, documents: Iterable[Document], *, ids: Sequence[str] | None = None, batch_size: int = 32
    ) -> list[str]:
        """``add_documents`` in a worker thread (embedding is compute-bound)."""
        from langchain_core.runnables.config import run_in_executor

        return await run_in_executor(None, self.add_documents, documents, ids=ids, batch_size=batch_size)

    def delete(self, ids: Sequence[str]) -> None:
        """Remove the documents with these ids from the collection (ids it does not hold are ignored); the
        next search no longer returns them, on the BM25 side either (brought up to date here when hybrid).

        Raises:
            ValueError: ``ids`` is a single string or holds something that is not a string.
        """
        if isinstance(ids, str) or not all(isinstance(name, str) for name in ids):
            raise ValueError("delete takes a list of document ids (strings)")
        self._collection.delete(list(dict.fromkeys(ids)))
        self._follow_lexical()

    def _follow_lexical(self) -> None:
        """Bring the BM25 side up to date after a change, when the retriever searches hybrid by default."""
        if self.hybrid:
            lexical_index(self._collection, self._lexical_db)

    @classmethod
    def is_lc_serializable(cls) -> bool:
        """``langchain_core.load.dumps`` writes the constructor arguments (objects such as an ``llm`` or a
        ready ``embedder`` are left out as not serialisable); ``loads(..., allowed_objects=[O1Retriever],
        valid_namespaces=["langchain_o1rag"])`` builds the retriever again."""
        return True

    @classmethod
    def get_lc_namespace(cls) -> list[str]:
        return ["langchain_o1rag", "retrievers"]

    def _restore(self, carried: dict[str, Any]) -> None:
        self._lexical_db = None
        self._setup()

    def _setup(self) -> None:
        self._settings({}, None)  # the retriever's own search settings, checked once up front
        thinker = langchain_thinker(self.llm, self.thinker_name) if self.llm is not None else None
        if self.embedder is None:
            self.embedder = self.load_embedder(self.model, thinker)
        elif thinker is not None:
            self.embedder.thinker = thinker
        if self.vectorstore is not None:
            # langchain_chroma keeps its chromadb collection and client in these attributes
            store = self.vectorstore
            self._collection = O1Collection(store._collection, getattr(store, "_client", None))
            self._collection.check(self.embedder.fingerprint)
        else:
            if not self.collection_name:
                raise ValueError("give collection_name (with persist_directory or client) or a vectorstore")
            client = self.client
            if client is None:
                client = open_client(self.persist_directory, create=False)
            if self.client is None:
                self._lexical_db = str(self.persist_directory or default_db_path())
            self._collection = O1Collection.open(client, self.collection_name, self.embedder.fingerprint)
        self._batcher = MicroBatcher(self._search_batch, self.batch_window_ms / 1000, self.max_batch)

    def _settings(self, given: dict[str, Any], search_kwargs: dict[str, Any] | None) -> tuple[Any, ...]:
        """The call's settings (``given``: its keyword arguments, None where not given; ``search_kwargs``
        over them) on top of the retriever's, checked, as a hashable tuple that also groups batched
        calls."""
        if search_kwargs:
            check_search_kwargs(search_kwargs)
            given = {**given, **search_kwargs}
        s = {key: getattr(self, key) if given.get(key) is None else given[key] for key in SEARCH_KWARGS}
        if s["k"] <= 0:
            raise ValueError(f"k must be > 0, got {s['k']}")
        where = self.filter if given.get("filter") is None else given["filter"]
        return (
            s["k"],
            json.dumps(where, sort_keys=True) if where else None,
            self.think_choice() if given.get("think") is None else think_choice(given["think"]),
            s["hybrid"],
            check_feedback(s["feedback"]),
            self._selection(s["fetch_k"], s["lambda_mult"], s["score_threshold"]),
        )

    @staticmethod
    def _per_call(selection: dict[str, Any]) -> dict[str, Any]:
        """The per-call ``fetch_k``, ``lambda_mult`` and ``score_threshold``; any other name is an error."""
        unknown = sorted(set(selection) - {"fetch_k", "lambda_mult", "score_threshold"})
        if unknown:
            raise ValueError(
                f"unknown argument '{unknown[0]}': use {', '.join(SEARCH_KWARGS)} or search_kwargs"
            )
        return selection

    def _selection(self, fetch_k: int, lambda_mult: float, score_threshold: float | None) -> Selection:
        if self.search_type not in SEARCH_TYPES:
            raise ValueError(f"unknown search_type '{self.search_type}': use {', '.join(SEARCH_TYPES)}")
        if self.search_type == "similarity_score_threshold" and score_threshold is None:
            raise ValueError("search_type 'similarity_score_threshold' needs a score_threshold")
        if self.search_type == "mmr":
            return Selection(mmr=lambda_mult, fetch_k=fetch_k, min_score=score_threshold)
        return Selection(min_score=score_threshold)

    def _search_batch(self, items: list[tuple[str, tuple[Any, ...]]]) -> list[QueryResult]:
        # the batcher groups by settings: all items share them
        k, where, think, hybrid, feedback, selection = items[0][1]
        lexical = lexical_index(self._collection, self._lexical_db) if hybrid else None
        return search(
            self.embedder,
            self._collection,
            [q for q, _ in items],
            k=k,
            think=think,
            params=self.think_params(),
            where=json.loads(where) if where else None,
            use_cache=self.use_cache,
            query_weight=self.query_weight,
            lexical=lexical,
            feedback=feedback,
            selection=selection,
        )

    @staticmethod
    def _documents(result: QueryResult) -> list[Document]:
        return [
            Document(
                id=hit.id,
                page_content=hit.text,
                metadata={
                    **hit.metadata,
                    "id": hit.id,
                    "score": hit.score,
                    "dense_score": hit.dense_score,
                    "lexical_score": hit.lexical_score,
                    "o1_thoughts": list(result.thoughts),
                    "o1_thinking": result.decision.describe() if result.decision else "",
                },
            )
            for hit in result.hits
        ]

    def _get_relevant_documents(
        self,
        query: str,
        *,
        run_manager: CallbackManagerForRetrieverRun,
        k: int | None = None,
        filter: dict[str, Any] | None = None,
        think: bool | str | None = None,
        hybrid: bool | None = None,
        feedback: int | None = None,
        search_kwargs: dict[str, Any] | None = None,
        **selection: Any,
    ) -> list[Document]:
        given = {"k": k, "filter": filter, "think": think, "hybrid": hybrid, "feedback": feedback}
        settings = self._settings({**given, **self._per_call(selection)}, search_kwargs)
        result = self._batcher.call((check_query(query), settings), group=settings)
        run_manager.get_child().on_custom_event(THOUGHTS_EVENT, _event(query, result))
        return self._documents(result)

    async def _aget_relevant_documents(
        self,
        query: str,
        *,
        run_manager: AsyncCallbackManagerForRetrieverRun,
        k: int | None = None,
        filter: dict[str, Any] | None = None,
        think: bool | str | None = None,
        hybrid: bool | None = None,
        feedback: int | None = None,
        search_kwargs: dict[str, Any] | None = None,
        **selection: Any,
    ) -> list[Document]:
        given = {"k": k, "filter": filter, "think": think, "hybrid": hybrid, "feedback": feedback}
        settings = self._settings({**given, **self._per_call(selection)}, search_kwargs)
        result = await self._batcher.submit((check_query(query), settings), group=settings)
        await run_manager.get_child().on_custom_event(THOUGHTS_EVENT, _event(query, result))
        return self._documents(result)
