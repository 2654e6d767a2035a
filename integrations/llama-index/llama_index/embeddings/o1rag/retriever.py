"""``O1Retriever``: a LlamaIndex retriever over an o1-rag collection through the query pipeline of
``o1rag search`` (the gate's ``think="auto"``, hybrid search with BM25, optional feedback)."""

from __future__ import annotations

import logging
from typing import Any

from llama_index.core.callbacks.base import CallbackManager
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import BaseNode, NodeWithScore, QueryBundle, TextNode
from llama_index.core.vector_stores.types import (
    FilterCondition,
    FilterOperator,
    MetadataFilters,
    VectorStoreQueryMode,
)

from llama_index.embeddings.o1rag.base import O1Embedding, O1ThoughtsEvent, stored_node
from o1_rag.batching import MicroBatcher
from o1_rag.feedback import FEEDBACK_DOCS, check_feedback
from o1_rag.indexing import LLAMA_INDEX_NODE
from o1_rag.lexical import lexical_index
from o1_rag.search import QueryResult, check_query, search
from o1_rag.selection import FETCH_K, LAMBDA_MULT, Selection
from o1_rag.store import O1Collection, SearchHit, default_db_path, open_client

dispatcher = get_dispatcher(__name__)
logger = logging.getLogger(__name__)

_OPERATORS = {
    FilterOperator.EQ: "$eq",
    FilterOperator.NE: "$ne",
    FilterOperator.GT: "$gt",
    FilterOperator.GTE: "$gte",
    FilterOperator.LT: "$lt",
    FilterOperator.LTE: "$lte",
    FilterOperator.IN: "$in",
    FilterOperator.NIN: "$nin",
}


def chroma_where(filters: MetadataFilters) -> dict[str, Any]:
    """LlamaIndex ``MetadataFilters`` (nested, ``and`` / ``or``) as a Chroma ``where`` filter.

    Raises:
        ValueError: an operator or condition Chroma's metadata filter has no form for.
    """
    parts = []
    for item in filters.filters:
        if isinstance(item, MetadataFilters):
            parts.append(chroma_where(item))
            continue
        if item.operator not in _OPERATORS:
            known = ", ".join(op.value for op in _OPERATORS)
            raise ValueError(f"filter operator '{item.operator.value}' has no Chroma form: use {known}")
        parts.append({item.key: {_OPERATORS[item.operator]: item.value}})
    if not parts:
        raise ValueError("MetadataFilters holds no filter")
    if len(parts) == 1:
        return parts[0]
    condition = filters.condition or FilterCondition.AND
    if condition not in (FilterCondition.AND, FilterCondition.OR):
        raise ValueError(f"filter condition '{condition.value}' has no Chroma form: use and, or")
    return {f"${condition.value}": parts}


class O1Retriever(BaseRetriever):
    """Retrieve from a collection made by ``o1rag index`` (or by ``O1Embedding.chroma_vector_store`` with
    ``create=True``) as ``o1rag search`` does, where a ``VectorStoreIndex`` retriever only embeds and searches
    vectors:

    - ``think="auto"`` (the embedding's setting) lets the model's gate decide per query from the query-only
      hits whether to think (an embedding alone has no hits to judge from, so it thinks on every query);
    - ``hybrid=True`` (default) fuses the dense ranking with BM25's, built from the collection and kept in
      step with it; ``feedback=N`` adds pseudo-relevance feedback (off by default; see the README);
    - ``vector_store_query_mode="mmr"`` chooses ``similarity_top_k`` varied nodes from the
      ``mmr_prefetch_k`` best by maximal marginal relevance, ``mmr_threshold`` trading relevance (1)
      against variety (0), as LlamaIndex's vector stores name it (``o1_rag.selection``);
    - ``filters`` (LlamaIndex ``MetadataFilters``) or ``where`` (a Chroma filter) keep to matching nodes on
      both sides of a hybrid search.

    The thinking settings (``num_thoughts``, ``max_new_tokens``, ``query_weight``, ``use_cache`` ...) and
    the batching (``batch_window_ms``, ``max_batch``: concurrent queries share one batched think + search
    call) are those of ``embedding``. Each node carries the corpus id, ``score`` (fused, or the cosine without
    hybrid), ``metadata["dense_score"]``, ``metadata["lexical_score"]``, ``metadata["o1_thoughts"]`` and
    ``metadata["o1_thinking"]`` (whether and why the query thought), all kept out of the LLM's prompt; the
    thoughts also go out as an ``O1ThoughtsEvent``.

    Usage:
        .. code-block:: python

            from llama_index.core.query_engine import RetrieverQueryEngine
            from llama_index.embeddings.o1rag import O1Embedding

            retriever = O1Embedding().as_retriever("scifact", similarity_top_k=5)
            engine = RetrieverQueryEngine.from_args(retriever)  # answers with Settings.llm
    """

    def __init__(
        self,
        embedding: O1Embedding,
        collection_name: str,
        *,
        similarity_top_k: int = 4,
        persist_dir: str | None = None,
        client: Any = None,
        hybrid: bool = True,
        feedback: int = FEEDBACK_DOCS,
        where: dict[str, Any] | None = None,
        filters: MetadataFilters | None = None,
        vector_store_query_mode: str | VectorStoreQueryMode = VectorStoreQueryMode.DEFAULT,
        mmr_threshold: float | None = None,
        mmr_prefetch_k: int = FETCH_K,
        callback_manager: CallbackManager | None = None,
    ) -> None:
        if (
            not isinstance(similarity_top_k, int)
            or isinstance(similarity_top_k, bool)
            or similarity_top_k <= 0
        ):
            raise ValueError(f"similarity_top_k must be a whole number > 0, got {similarity_top_k!r}")
        self.embedding = embedding
        self.similarity_top_k = similarity_top_k
        self.hybrid = hybrid
        self.feedback = check_feedback(feedback)
        if filters is not None and where is not None:
            raise ValueError("give filters (LlamaIndex) or where (Chroma), not both")
        if filters is not None and not isinstance(filters, MetadataFilters):
            raise ValueError(f"filters must be a LlamaIndex MetadataFilters, got {type(filters).__name__}")
        self.where = chroma_where(filters) if filters is not None else where
        try:
            mode = VectorStoreQueryMode(vector_store_query_mode)
        except ValueError:
            mode = None
        if mode not in (VectorStoreQueryMode.DEFAULT, VectorStoreQueryMode.MMR):
            named = getattr(vector_store_query_mode, "value", vector_store_query_mode)
            raise ValueError(f"vector_store_query_mode {named!r} is not supported: use default, mmr")
        if mode != VectorStoreQueryMode.MMR and mmr_threshold is not None:
            raise ValueError("mmr_threshold goes with vector_store_query_mode='mmr'")
        self.selection = (
            Selection(mmr=LAMBDA_MULT if mmr_threshold is None else mmr_threshold, fetch_k=mmr_prefetch_k)
            if mode == VectorStoreQueryMode.MMR
            else Selection()
        )
        embedder = embedding.embedder
        self._lexical_db = None if client is not None else str(persist_dir or default_db_path())
        if client is None:
            client = open_client(persist_dir, create=False)
        self.collection = O1Collection.open(client, collection_name, embedder.fingerprint)
        self._batcher = MicroBatcher(
            self._search_batch, embedding.batch_window_ms / 1000, embedding.max_batch
        )
        super().__init__(callback_manager=callback_manager)

    def _search_batch(self, queries: list[str]) -> list[QueryResult]:
        e = self.embedding
        lexical = lexical_index(self.collection, self._lexical_db) if self.hybrid else None
        return search(
            e.embedder,
            self.collection,
            queries,
            k=self.similarity_top_k,
            think=e.think_choice(),
            params=e.think_params(),
            where=self.where,
            use_cache=e.use_cache,
            query_weight=e.query_weight,
            lexical=lexical,
            feedback=self.feedback,
            selection=self.selection,
        )

    @staticmethod
    def _node(hit: SearchHit) -> BaseNode:
        """The hit as a node: as a LlamaIndex vector store wrote it when one did (``stored_node``), else a
        ``TextNode`` with the stored metadata (without an unreadable serialised node)."""
        node = stored_node(hit.text, hit.metadata)
        if node is not None:
            return node
        if LLAMA_INDEX_NODE in hit.metadata:
            logger.warning("document %s: cannot rebuild its LlamaIndex node", hit.id)
        metadata = {k: v for k, v in hit.metadata.items() if k != LLAMA_INDEX_NODE}
        return TextNode(id_=hit.id, text=hit.text, metadata=metadata)

    @classmethod
    def _nodes(cls, result: QueryResult) -> list[NodeWithScore]:
        found = {
            "o1_thoughts": list(result.thoughts),
            "o1_thinking": result.decision.describe() if result.decision else "",
        }
        nodes = []
        for hit in result.hits:
            about = {**found, "dense_score": hit.dense_score, "lexical_score": hit.lexical_score}
            node = cls._node(hit)
            node.metadata.update(about)
            # what the retrieval found out is for the caller, not for the LLM's prompt or an embedding
            node.excluded_llm_metadata_keys = [*node.excluded_llm_metadata_keys, *about]
            node.excluded_embed_metadata_keys = [*node.excluded_embed_metadata_keys, *about]
            nodes.append(NodeWithScore(node=node, score=hit.score))
        return nodes

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        query = check_query(query_bundle.query_str)
        result = self._batcher.call(query)  # threads searching at once share batched calls
        dispatcher.event(O1ThoughtsEvent(query=query, thoughts=list(result.thoughts)))
        return self._nodes(result)

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        query = check_query(query_bundle.query_str)
        result = await self._batcher.submit(query)  # concurrent queries within the window share one call
        dispatcher.event(O1ThoughtsEvent(query=query, thoughts=list(result.thoughts)))
        return self._nodes(result)
