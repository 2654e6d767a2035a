"""Chroma as the vector store: embedded (``PersistentClient``) by default, or an existing server.

Collections use cosine space and no embedding function: Chroma never embeds text itself (it would try to
download a model); o1-rag always passes embeddings. Collection metadata records the embedder fingerprint
and dimension, and opening a collection with another embedder fails with both fingerprints named. It also
records a revision, raised whenever stored documents are replaced or removed (a BM25 index built from the
collection names the revision it mirrors).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from o1_rag.data import METADATA_RESERVED
from o1_rag.errors import FingerprintMismatchError, StoreError
from o1_rag.models import o1rag_home

logger = logging.getLogger(__name__)

FINGERPRINT_KEY = "o1rag:fingerprint"
DIM_KEY = "o1rag:dim"
MODEL_KEY = "o1rag:model"
REVISION_KEY = "o1rag:revision"  # bumped before stored documents change or go, so a BM25 copy knows
_NAME_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{1,510})[A-Za-z0-9]$")


def default_db_path() -> Path:
    """``$O1RAG_DB`` or ``$O1RAG_HOME/chroma``."""
    import os

    return Path(os.environ["O1RAG_DB"]) if os.environ.get("O1RAG_DB") else o1rag_home() / "chroma"


def open_client(
    path: str | Path | None = None, host: str | None = None, port: int | None = None, create: bool = True
) -> Any:
    """An embedded Chroma client at ``path`` or, with ``host``/``port``, a client of a running server.

    The embedded client uses chromadb's default settings, as ``langchain_chroma`` and LlamaIndex's Chroma
    store do, so one folder can be opened by o1-rag and by them in the same process (chromadb keeps one
    instance per folder and refuses a second with other settings). With ``create=False`` a missing folder
    is an error instead of a new, empty database (a misspelt path should not look like an empty index).
    """
    import chromadb
    from chromadb.config import Settings

    settings = Settings(anonymized_telemetry=False)
    if host or port:
        try:
            return chromadb.HttpClient(host=host or "localhost", port=int(port or 8000), settings=settings)
        except Exception as exc:  # connection refused, bad host...
            raise StoreError(
                f"cannot reach Chroma server at {host or 'localhost'}:{port or 8000}: {exc}"
            ) from None
    target = Path(path) if path is not None else default_db_path()
    if target.exists() and not target.is_dir():
        raise StoreError(f"--db {target} exists and is not a directory")
    if not create and not target.is_dir():
        raise StoreError(
            f"no Chroma database at {target}: the folder does not exist (check the path, or build one "
            "with `o1rag index`)"
        )
    target.mkdir(parents=True, exist_ok=True)
    try:
        return chromadb.PersistentClient(path=str(target), settings=Settings())
    except ValueError as exc:  # the folder is already open in this process with other settings
        raise StoreError(f"cannot open the Chroma database at {target}: {exc}") from None


def check_name(name: str) -> str:
    """Chroma's collection-name rule, as a clear error."""
    if not _NAME_RE.match(name or "") or ".." in name:
        raise StoreError(
            f"invalid collection name '{name}': use 3-512 characters from [A-Za-z0-9._-], "
            "starting and ending with a letter or digit"
        )
    return name


def parse_where(text: str) -> dict[str, Any]:
    """A Chroma metadata filter (``where``) written as JSON, e.g. ``{"title": "notes.md"}`` or
    ``{"year": {"$gte": 2020}}``; anything but a JSON object is a clear error (Chroma checks the rest)."""
    try:
        where = json.loads(text)
    except json.JSONDecodeError as exc:
        raise StoreError(f"the filter is not valid JSON ({exc.msg} at column {exc.colno}): {text}") from None
    if not isinstance(where, dict) or not where:
        raise StoreError(f'the filter must be a non-empty JSON object such as {{"title": "x"}}, got {text}')
    return where


@dataclass
class SearchHit:
    """One retrieved document. ``score`` is the cosine similarity, or the fused score of a hybrid search,
    which also gives each side's own score (``None``: that side did not return the document)."""

    id: str
    score: float
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)
    dense_score: float | None = None
    lexical_score: float | None = None


class O1Collection:
    """A Chroma collection tied to one embedder fingerprint.

    Use ``O1Collection.create_or_open`` for indexing and ``O1Collection.open`` for searching.
    """

    def __init__(self, collection: Any, client: Any = None) -> None:
        self.collection = collection
        self.client = client  # known when opened by name: lets ``refresh`` read the record again

    def refresh(self) -> None:
        """Read the collection's record (fingerprint, revision ...) from the store again: another process
        may have changed it since this object was opened (chromadb keeps the record it was given). A no-op
        when the client is unknown.

        Raises:
            StoreError: the collection was deleted meanwhile.
            FingerprintMismatchError: it was built again by another embedder.
        """
        if self.client is not None:
            self.collection = type(self).open(self.client, self.name, self.fingerprint).collection

    @property
    def name(self) -> str:
        return str(self.collection.name)

    @property
    def fingerprint(self) -> str | None:
        return (self.collection.metadata or {}).get(FINGERPRINT_KEY)

    @property
    def space(self) -> str:
        """The collection's distance: ``cosine`` (o1-rag's), ``l2`` (Chroma's default) or ``ip``."""
        configuration = getattr(self.collection, "configuration", None) or {}
        hnsw = configuration.get("hnsw") if isinstance(configuration, dict) else None
        space = (hnsw or {}).get("space") or (self.collection.metadata or {}).get("hnsw:space") or "l2"
        return str(space)

    def cosine(self, distance: float) -> float:
        """The cosine similarity behind a Chroma distance (o1-rag's vectors are unit length)."""
        return 1.0 - distance / 2.0 if self.space == "l2" else 1.0 - distance

    @property
    def dim(self) -> int | None:
        value = (self.collection.metadata or {}).get(DIM_KEY)
        return int(value) if value is not None else None

    @property
    def revision(self) -> int:
        """Raised each time stored documents are replaced or removed (0 for a collection never changed)."""
        return int((self.collection.metadata or {}).get(REVISION_KEY) or 0)

    def record_fingerprint(self, fingerprint: str, dim: int, model: str) -> None:
        """Record the encoder that built the vectors (``indexing.adopt_collection`` checks it first)."""
        self._modify({FINGERPRINT_KEY: fingerprint, DIM_KEY: dim, MODEL_KEY: model})

    def _modify(self, changes: dict[str, Any]) -> None:
        # an old collection's hnsw:space may not be passed again, even unchanged (its configuration keeps it)
        metadata = {k: v for k, v in (self.collection.metadata or {}).items() if not k.startswith("hnsw:")}
        self.collection.modify(metadata={**metadata, **changes})

    def bump_revision(self) -> None:
        """Record that stored documents are about to change (call before the writes: a run killed halfway
        still leaves the revision raised, so copies built from the collection are rebuilt)."""
        self._modify({REVISION_KEY: self.revision + 1})

    @classmethod
    def open(cls, client: Any, name: str, fingerprint: str | None = None) -> O1Collection:
        """Open an existing collection; with ``fingerprint``, fail unless it matches.

        Raises:
            StoreError: the collection does not exist.
            FingerprintMismatchError: it was built by another embedder.
        """
        check_name(name)
        from chromadb.errors import NotFoundError

        try:
            collection = client.get_collection(name, embedding_function=None)
        except (NotFoundError, ValueError):
            existing = sorted(c.name for c in client.list_collections())
            hint = f" (existing: {', '.join(existing)})" if existing else " (the database holds none)"
            raise StoreError(
                f"collection '{name}' does not exist{hint}; build it with `o1rag index`"
            ) from None
        opened = cls(collection, client)
        if fingerprint is not None:
            opened.check(fingerprint)
        return opened

    @classmethod
    def create_or_open(
        cls, client: Any, name: str, fingerprint: str, dim: int, model: str = ""
    ) -> O1Collection:
        """Open ``name`` (checking the fingerprint) or create it in cosine space for this embedder."""
        check_name(name)
        collection = client.get_or_create_collection(
            name,
            metadata={FINGERPRINT_KEY: fingerprint, DIM_KEY: dim, MODEL_KEY: model},
            configuration={"hnsw": {"space": "cosine"}},
            embedding_function=None,
        )
        opened = cls(collection, client)
        if opened.fingerprint is None and opened.collection.count() == 0:
            opened.record_fingerprint(fingerprint, dim, model)
        opened.check(fingerprint)
        return opened

    def check(self, fingerprint: str) -> None:
        """Raise ``FingerprintMismatchError`` unless the collection was built by ``fingerprint``."""
        stored = self.fingerprint
        if stored is None and self.count() > 0:
            raise FingerprintMismatchError(
                f"collection '{self.name}' was not made by o1rag (it records no encoder); if it stores its "
                f"texts and was embedded by an encoder o1rag can load, `o1rag adopt {self.name} --encoder "
                "ENCODER` checks that and lets o1rag search it"
            )
        if stored != fingerprint:
            built_by = (self.collection.metadata or {}).get(MODEL_KEY) or "unknown model"
            raise FingerprintMismatchError(
                f"collection '{self.name}' was indexed by embedder {stored or 'unknown'} "
                f"({built_by}) but the current embedder is {fingerprint}; use the same "
                "--model/--adapter/--encoder/--long-documents, or index into a new collection"
            )

    def count(self) -> int:
        return int(self.collection.count())

    def stored_ids(self, page: int = 5000) -> set[str]:
        """Every id in the collection (paged)."""
        ids: set[str] = set()
        offset = 0
        while True:
            batch = self.collection.get(include=[], limit=page, offset=offset)["ids"]
            ids.update(batch)
            if len(batch) < page:
                return ids
            offset += page

    def iter_stored(
        self, ids: Sequence[str], page: int = 2000, metadata: bool = False
    ) -> Iterator[dict[str, tuple[str, dict[str, Any]]]]:
        """The stored ``(text, metadata)`` of ``ids``, one page at a time (metadata read only when asked,
        else ``{}``; an id the collection does not hold, or holds without text, has ``""``)."""
        include = ["documents", "metadatas"] if metadata else ["documents"]
        for start in range(0, len(ids), page):
            chunk = list(ids[start : start + page])
            got = self.collection.get(ids=chunk, include=include)
            metas = (got.get("metadatas") if metadata else None) or [None] * len(got["ids"])
            texts = got["documents"] or [None] * len(got["ids"])
            by_id = {i: (t or "", dict(m or {})) for i, t, m in zip(got["ids"], texts, metas, strict=True)}
            yield {doc_id: by_id.get(doc_id, ("", {})) for doc_id in chunk}

    def iter_texts(self, ids: Sequence[str], page: int = 2000) -> Iterator[dict[str, str]]:
        """The stored texts of ``ids``, one ``{id: text}`` page at a time (``iter_stored``)."""
        for stored in self.iter_stored(ids, page):
            yield {doc_id: text for doc_id, (text, _) in stored.items()}

    def text_digests(self, ids: Sequence[str]) -> dict[str, str]:
        """``text_digest`` of the stored text and metadata of each of ``ids``."""
        return {
            doc_id: text_digest(text, meta)
            for stored in self.iter_stored(ids, metadata=True)
            for doc_id, (text, meta) in stored.items()
        }

    def delete(self, ids: Sequence[str], page: int = 2000) -> None:
        """Remove ``ids`` (raising the revision first)."""
        if not ids:
            return
        self.bump_revision()
        for start in range(0, len(ids), page):
            self.collection.delete(ids=list(ids[start : start + page]))

    def vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """The stored vectors of those of ``ids`` the collection holds."""
        if not ids:
            return {}
        got = self.collection.get(ids=list(ids), include=["embeddings"])
        return {
            doc_id: np.asarray(vector, dtype=np.float32)
            for doc_id, vector in zip(got["ids"], got["embeddings"], strict=True)
        }

    def upsert(
        self,
        ids: Sequence[str],
        embeddings: np.ndarray,
        texts: Sequence[str],
        metadatas: Sequence[dict[str, Any]],
    ) -> None:
        """Insert or replace records (embeddings always given: Chroma never embeds)."""
        if embeddings.shape[0] != len(ids):
            raise ValueError(f"{embeddings.shape[0]} embeddings for {len(ids)} ids")
        if self.dim is not None and embeddings.shape[1] != self.dim:
            raise ValueError(f"embedding dimension {embeddings.shape[1]} != collection dimension {self.dim}")
        self.collection.upsert(
            ids=list(ids), embeddings=embeddings, documents=list(texts), metadatas=list(metadatas)
        )

    def search(
        self, query_embeddings: np.ndarray, k: int = 10, where: dict[str, Any] | None = None
    ) -> list[list[SearchHit]]:
        """Top-``k`` hits per query embedding; score = cosine similarity, whatever the collection's space."""
        if k <= 0:
            raise ValueError(f"k must be > 0, got {k}")
        if query_embeddings.ndim != 2 or query_embeddings.shape[0] == 0:
            return []
        n = min(k, self.count())
        if n == 0:
            return [[] for _ in range(query_embeddings.shape[0])]
        result = self.collection.query(
            query_embeddings=query_embeddings,
            n_results=n,
            where=where,
            include=["documents", "metadatas", "distances"],
        )
        hits: list[list[SearchHit]] = []
        for row in range(query_embeddings.shape[0]):
            metadatas = (
                result["metadatas"][row] if result.get("metadatas") else [None] * len(result["ids"][row])
            )
            hits.append(
                [
                    SearchHit(doc_id, cos, text or "", dict(meta or {}), cos)
                    for doc_id, cos, text, meta in zip(
                        result["ids"][row],
                        [self.cosine(float(d)) for d in result["distances"][row]],
                        result["documents"][row],
                        metadatas,
                        strict=True,
                    )
                ]
            )
        return hits


def text_digest(text: str, metadata: dict[str, Any] | None = None) -> str:
    """What a stored document is compared by when a corpus is indexed again: its text and its metadata
    beyond the title (a document with no other metadata digests its text alone, as before metadata were
    stored)."""
    extra = {
        k: v for k, v in (metadata or {}).items() if k != "title" and not k.startswith(METADATA_RESERVED)
    }
    payload = text if not extra else text + "\x00" + json.dumps(extra, sort_keys=True, ensure_ascii=False)
    return hashlib.blake2b(payload.encode("utf-8"), digest_size=16).hexdigest()


def __getattr__(name: str) -> Any:
    """``index_documents`` and ``IndexReport`` live in ``o1_rag.indexing``; still importable from here."""
    if name in {"index_documents", "IndexReport"}:
        from o1_rag import indexing

        return getattr(indexing, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
