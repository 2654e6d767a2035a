"""Indexing a corpus into a collection: what to embed (new documents, changed texts), what to remove, and
the resumable embed-and-write loop; adopting a collection another tool built. Chroma itself is
``o1_rag.store``."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from o1_rag.errors import FingerprintMismatchError, StoreError
from o1_rag.store import O1Collection, text_digest

if TYPE_CHECKING:
    from o1_rag.data import Document

logger = logging.getLogger(__name__)


@dataclass
class IndexReport:
    """What an indexing run did: ``added`` new documents, ``updated`` stored ones whose text changed (both
    embedded), left ``skipped`` unchanged ones, ``removed`` stored ones the corpus no longer holds."""

    total: int
    skipped: int
    added: int
    seconds: float
    updated: int = 0
    removed: int = 0

    @property
    def docs_per_second(self) -> float:
        embedded = self.added + self.updated
        return embedded / self.seconds if self.seconds > 0 else 0.0


@dataclass
class IndexPlan:
    """What indexing a corpus into a collection has to do (``plan_index``)."""

    new: set[str]
    changed: set[str]
    gone: list[str]

    @property
    def todo(self) -> set[str]:
        return self.new | self.changed


def check_prune(prune: bool, limit: int | None) -> None:
    """Pruning removes what the corpus does not hold, so a run over part of a corpus must not prune."""
    if prune and limit is not None:
        raise ValueError("--prune removes what the corpus does not hold: it cannot be used with --limit")


def plan_index(collection: O1Collection, digests: dict[str, str], prune: bool = False) -> IndexPlan:
    """Compare a corpus (``{id: text_digest(text, metadata)}``) with what ``collection`` stores: the ids to
    add, the stored ids whose text or metadata changed, and (``prune``) the stored ids the corpus no longer
    holds."""
    if prune and not digests:
        raise ValueError("no documents to index: pruning would empty the collection (nothing was changed)")
    stored = collection.stored_ids() if collection.count() else set()
    kept = [doc_id for doc_id in digests if doc_id in stored]
    stored_digests = collection.text_digests(kept)
    return IndexPlan(
        new=set(digests) - stored,
        changed={doc_id for doc_id in kept if stored_digests.get(doc_id) != digests[doc_id]},
        gone=sorted(stored - set(digests)) if prune else [],
    )


def index_documents(
    embedder: Any,
    collection: O1Collection,
    documents: Iterable[Document],
    batch_size: int = 64,
    progress: Callable[[int, int], None] | None = None,
    prune: bool = False,
) -> IndexReport:
    """Embed and upsert the documents not yet in ``collection`` and those whose text changed, batch by batch.

    Each batch is written as soon as it is embedded, so a killed run loses at most one batch and the next
    run skips every stored, unchanged document: after any interruption, re-running ends with every
    document exactly once, with its current text.

    Args:
        embedder: an ``O1Embedder`` (anything with ``embed_documents`` and ``fingerprint``).
        progress: called as ``progress(done_in_this_run, to_do_in_this_run)``; first with ``(0, n)``.
        prune: also remove the stored documents that ``documents`` no longer holds (all of them: do not
            pass a slice of a corpus).
    """
    collection.check(embedder.fingerprint)
    docs = list(documents)
    plan = plan_index(collection, {d.id: text_digest(d.full_text(), d.metadata) for d in docs}, prune)
    todo = [d for d in docs if d.id in plan.todo]
    started = time.perf_counter()
    done = 0
    logger.info(
        "indexing %d documents into %s (%d new, %d changed, %d unchanged, %d to remove)",
        len(todo),
        collection.name,
        len(plan.new),
        len(plan.changed),
        len(docs) - len(todo),
        len(plan.gone),
    )
    if plan.changed:
        collection.bump_revision()
    collection.delete(plan.gone)
    if progress is not None:
        progress(0, len(todo))
    # Length-sorted work inside each write batch keeps padding low without delaying writes.
    for start in range(0, len(todo), batch_size):
        batch = todo[start : start + batch_size]
        texts = [d.full_text() for d in batch]
        vectors = embedder.embed_documents(texts)
        collection.upsert([d.id for d in batch], vectors, texts, [d.stored_metadata() for d in batch])
        done += len(batch)
        logger.debug("stored %d/%d", done, len(todo))
        if progress is not None:
            progress(done, len(todo))
    seconds = time.perf_counter() - started
    logger.info("indexed %d documents (%d already stored) in %.1fs", done, len(docs) - len(todo), seconds)
    return IndexReport(
        total=len(docs),
        skipped=len(docs) - len(todo),
        added=len(plan.new),
        seconds=seconds,
        updated=len(plan.changed),
        removed=len(plan.gone),
    )


LLAMA_INDEX_NODE = "_node_content"  # the metadata key where LlamaIndex's vector stores keep a node


@dataclass
class AdoptReport:
    """What ``adopt_collection`` checked: ``sampled`` stored documents embedded again, the least cosine
    between a stored vector and the encoder's, and whether the collection already had this fingerprint."""

    count: int
    sampled: int
    least_cosine: float
    already: bool = False


def _sample_ids(collection: O1Collection, sample: int) -> list[str]:
    ids = sorted(collection.stored_ids())
    step = max(1, len(ids) // sample)
    return ids[::step][:sample]


def adopt_collection(
    collection: O1Collection,
    embedder: Any,
    sample: int = 64,
    min_cosine: float = 0.999,
    embedded_text: Callable[[str, dict[str, Any]], str] | None = None,
) -> AdoptReport:
    """Let o1-rag search a Chroma collection that another tool built (LangChain, LlamaIndex, plain chromadb)
    with the same encoder: embed ``sample`` of its stored texts again, and record ``embedder``'s fingerprint
    in the collection only if every stored vector points where the encoder's does (cosine >= ``min_cosine``).

    Nothing is re-embedded or rewritten besides the collection's metadata (three keys added).
    ``embedded_text(text, metadata)`` gives the text the other tool embedded for a stored document when it
    was not the stored text alone (LlamaIndex embeds a node's metadata with its text:
    ``O1Embedding.adopt`` passes that).

    Raises:
        FingerprintMismatchError: o1-rag already recorded another encoder, or the vectors do not match.
        StoreError: the collection is empty, stores no texts, or holds vectors of another dimension.
    """
    if sample < 1 or not 0.0 < min_cosine <= 1.0:
        raise ValueError("sample must be >= 1 and min_cosine in (0, 1]")
    count = collection.count()
    if collection.fingerprint is not None:
        collection.check(embedder.fingerprint)  # another o1-rag encoder: the usual mismatch message
        # adopting again says the other tool may have replaced documents in place (same ids, same count):
        # a raised revision makes every BM25 side built from the collection read its texts again
        collection.bump_revision()
        return AdoptReport(count, 0, 1.0, already=True)
    if count == 0:
        raise StoreError(f"collection '{collection.name}' is empty: build it with `o1rag index` instead")
    got = collection.collection.get(
        ids=_sample_ids(collection, sample), include=["documents", "embeddings", "metadatas"]
    )
    texts, stored = got["documents"] or [], np.asarray(got["embeddings"], dtype=np.float32)
    metadatas = [dict(m or {}) for m in (got["metadatas"] or [None] * len(texts))]
    if not texts or any(not t for t in texts):
        raise StoreError(
            f"collection '{collection.name}' stores no text for some documents: o1-rag needs the texts "
            "(for BM25 and results); index the corpus with `o1rag index` instead"
        )
    if stored.shape[1] != embedder.dim:
        raise StoreError(
            f"collection '{collection.name}' holds {stored.shape[1]}-dimensional vectors but encoder "
            f"{embedder.describe()} makes {embedder.dim}-dimensional ones: name the encoder that built it"
        )
    norms = np.linalg.norm(stored, axis=1)
    if collection.space != "cosine" and np.abs(norms - 1.0).max() > 0.01:
        raise StoreError(
            f"collection '{collection.name}' ({collection.space} distance) holds vectors that are not unit "
            "length: its scores would not be cosine similarities; index the corpus with `o1rag index`"
        )
    if embedded_text is not None:
        texts = [embedded_text(text, meta) for text, meta in zip(texts, metadatas, strict=True)]
    fresh = embedder.embed_documents(list(texts))
    cosines = np.sum(fresh * stored / np.maximum(norms, 1e-12)[:, None], axis=1)
    least = float(cosines.min())
    if least < min_cosine:
        written_by_llamaindex = embedded_text is None and any(LLAMA_INDEX_NODE in m for m in metadatas)
        hint = (
            "; LlamaIndex wrote it, and it embeds a node's metadata with its text: adopt it with "
            "O1Embedding(...).adopt(name) from llama-index-embeddings-o1rag"
            if written_by_llamaindex
            else ""
        )
        raise FingerprintMismatchError(
            f"collection '{collection.name}' was not built by encoder {embedder.describe()}: the least "
            f"cosine between a stored vector and the encoder's over {len(texts)} sampled documents is "
            f"{least:.4f} (at least {min_cosine} needed); adopt it with the encoder that built it "
            f"(--encoder){hint}"
        )
    collection.record_fingerprint(embedder.fingerprint, embedder.dim, f"{embedder.describe()} (adopted)")
    logger.info(
        "adopted %s: %d sampled vectors agree (least cosine %.5f)", collection.name, len(texts), least
    )
    return AdoptReport(count, len(texts), least)


def drop_collection(client: Any, name: str, db: str | Path | None = None) -> int:
    """Delete the collection ``name`` and its BM25 index (``db``: the embedded database's folder, as for
    ``lexical.lexical_folder``); returns how many documents it held.

    Raises:
        StoreError: no such collection, or one o1-rag neither made nor adopted (it is left to the tool that
            made it).
    """
    from o1_rag.lexical import drop_lexical, lexical_folder

    target = O1Collection.open(client, name)
    if target.fingerprint is None:
        raise StoreError(
            f"collection '{name}' was not made or adopted by o1rag: delete it with the tool that made it"
        )
    count = target.count()
    folder = lexical_folder(target, db)
    client.delete_collection(name)
    drop_lexical(folder)
    logger.info("deleted collection %s (%d documents) and its BM25 index %s", name, count, folder)
    return count
