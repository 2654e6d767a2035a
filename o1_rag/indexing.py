"""Indexing a corpus into a collection: what to embed (new documents, changed texts), what to remove, and
the resumable embed-and-write loop. Chroma itself is ``o1_rag.store``."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

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
    """Compare a corpus (``{id: text_digest(text)}``) with what ``collection`` stores: the ids to add, the
    stored ids whose text changed, and (``prune``) the stored ids the corpus no longer holds."""
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
    plan = plan_index(collection, {d.id: text_digest(d.full_text()) for d in docs}, prune)
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
        collection.upsert([d.id for d in batch], vectors, texts, [{"title": d.title} for d in batch])
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
