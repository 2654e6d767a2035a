"""The lexical side of hybrid retrieval: a bm25s index kept in step with a Chroma collection, and the fusion
of its ranking with the dense one.

BM25 here is bm25s' Lucene variant with English stop words and Snowball stemming (the reference BM25 of
``../shared/data/README.md``). The index is saved next to the collection (``<db>/o1rag-lexical/<name>/`` for
an embedded database, ``$O1RAG_HOME/lexical/<collection id>/`` for a server) as bm25s' numpy files (no pickle)
plus ``o1rag_lexical.json``, which records the collection's id, fingerprint and a digest of its document ids,
and the documents' tokens (``o1_rag.lexical_tokens``: a rebuild tokenizes only new texts). The Chroma
collection is the source of truth: when the saved index is missing, half-written (a killed run never replaces
it: the new folder is moved into place whole) or out of step with the collection, it is rebuilt from the
documents Chroma stores, so its ids always equal the collection's.

Fusion (``fuse``): each side's scores are standardised over its own top ``depth`` hits (z-scores; a document
a side did not return gets that side's lowest z), then ``z_dense + w * z_lexical`` with the lexical weight
``w = sqrt(coverage)``: *coverage* is the BM25 score of the best lexical hit divided by the most the query's
terms could score in this corpus (each term's highest score, summed). A query whose words the best lexical
match barely covers (vocabulary mismatch, short or unrelated documents) leans on the dense side; one the
lexical side matches well gets both at equal weight.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from o1_rag.errors import O1RagError
from o1_rag.files import atomic_dir, atomic_write
from o1_rag.lexical_tokens import load_tokens, reuse_tokens, save_tokens
from o1_rag.store import text_digest

logger = logging.getLogger(__name__)

LEXICAL_VERSION = 1
INFO_FILE = "o1rag_lexical.json"
SAVED_DEFAULTS = {"revision": 0}  # record fields older saved indexes lack: what they meant then
TOKENIZER = {"method": "lucene", "stopwords": "en", "stemmer": "english"}
FUSION_DEPTH = 100


class LexicalIndexError(O1RagError):
    """A saved lexical index cannot be read."""


def ids_digest(ids: Sequence[str]) -> str:
    """Order-free digest of a set of document ids."""
    digest = hashlib.sha256()
    for doc_id in sorted(ids):
        digest.update(doc_id.encode("utf-8", "surrogatepass") + b"\0")
    return digest.hexdigest()[:24]


def _stemmer() -> Any:
    import Stemmer

    return Stemmer.Stemmer(TOKENIZER["stemmer"])


def _bm25s() -> Any:
    """bm25s, with its logger following the application's logging setup (bm25s forces DEBUG on import)."""
    import bm25s

    logger_ = logging.getLogger("bm25s")
    if logger_.level == logging.DEBUG:
        logger_.setLevel(logging.NOTSET)
    return bm25s


def _tokenize(texts: Sequence[str]) -> list[list[str]]:
    return _bm25s().tokenize(
        list(texts),
        stopwords=TOKENIZER["stopwords"],
        stemmer=_stemmer(),
        show_progress=False,
        return_ids=False,
    )


@dataclass
class LexicalHits:
    """One query's lexical hits, best first, and how much of the query the best hit covers (0..1)."""

    ids: list[str]
    scores: list[float]
    coverage: float


class LexicalIndex:
    """A bm25s index over documents with string ids."""

    def __init__(
        self, retriever: Any, ids: list[str], fingerprint: str | None = None, revision: int = 0
    ) -> None:
        self.retriever = retriever
        self.ids = ids
        self.fingerprint = fingerprint  # of the collection it mirrors, when it mirrors one
        self.revision = revision  # of the collection's stored texts it was built from
        self._term_max: dict[str, float] | None = None

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def digest(self) -> str:
        return ids_digest(self.ids)

    @classmethod
    def build(
        cls, ids: Sequence[str], texts: Sequence[str], tokens: Sequence[list[str]] | None = None
    ) -> LexicalIndex:
        """Index ``texts`` under ``ids`` (same length, ids unique); ``tokens``: the texts already tokenized
        (``lexical_tokens.reuse_tokens``)."""
        bm25s = _bm25s()
        if len(ids) != len(texts):
            raise ValueError(f"{len(ids)} ids for {len(texts)} texts")
        if len(set(ids)) != len(ids):
            raise ValueError("document ids must be unique")
        retriever = bm25s.BM25(method=TOKENIZER["method"])
        if ids:
            tokens = list(tokens) if tokens is not None else _tokenize(texts)
            if any(tokens):
                retriever.index(tokens, show_progress=False)
            else:
                retriever = None  # no indexable word anywhere: every query scores zero
        else:
            retriever = None
        return cls(retriever, list(ids))

    def term_max(self) -> dict[str, float]:
        """Each vocabulary term's highest score over the corpus (its most a query term can add)."""
        if self._term_max is None:
            self._term_max = {}
            if self.retriever is not None:
                data = np.asarray(self.retriever.scores["data"])
                indptr = np.asarray(self.retriever.scores["indptr"])
                for term, column in self.retriever.vocab_dict.items():
                    if not term or column + 1 >= len(indptr):
                        continue  # bm25s' placeholder token has no column
                    lo, hi = int(indptr[column]), int(indptr[column + 1])
                    self._term_max[term] = float(data[lo:hi].max()) if hi > lo else 0.0
        return self._term_max

    def scores(self, query: str) -> np.ndarray:
        """The BM25 score of every document (in ``ids`` order) for ``query``."""
        if self.retriever is None:
            return np.zeros(len(self.ids))
        term_max = self.term_max()
        known = [t for t in _tokenize([query])[0] if t in term_max]
        if not known:
            return np.zeros(len(self.ids))
        return np.asarray(self.retriever.get_scores(known), dtype=np.float64)

    def search(self, queries: Sequence[str], k: int) -> list[LexicalHits]:
        """The ``k`` best documents per query (documents sharing no term with it are left out)."""
        if k <= 0:
            raise ValueError(f"k must be > 0, got {k}")
        if self.retriever is None or not queries:
            return [LexicalHits([], [], 0.0) for _ in queries]
        term_max = self.term_max()
        results = []
        for tokens in _tokenize(queries):
            known = [t for t in tokens if t in term_max]  # repeated terms count again, as in bm25s
            if not known:
                results.append(LexicalHits([], [], 0.0))
                continue
            scores = np.asarray(self.retriever.get_scores(known), dtype=np.float64)
            n = min(k, len(scores))
            best = np.argpartition(-scores, n - 1)[:n]
            best = best[np.argsort(-scores[best], kind="stable")]
            best = [int(i) for i in best if scores[i] > 0]
            bound = sum(term_max[t] for t in known)
            coverage = float(scores[best[0]] / bound) if best and bound > 0 else 0.0
            results.append(
                LexicalHits([self.ids[i] for i in best], [float(scores[i]) for i in best], min(coverage, 1.0))
            )
        return results

    def save(
        self,
        folder: str | Path,
        info: dict[str, Any],
        tokens: tuple[Sequence[str], Sequence[list[str]]] | None = None,
    ) -> None:
        """Write the index to ``folder`` whole: built in a temporary folder beside it, then moved in place;
        ``tokens`` (text digests and their tokens) are kept beside it for the next rebuild."""
        with atomic_dir(folder) as tmp:
            if tokens is not None:
                save_tokens(tmp, *tokens)
            if self.retriever is not None:
                self.retriever.save(str(tmp / "bm25"))
            atomic_write(tmp / "ids.json", json.dumps(self.ids, ensure_ascii=False))
            record = {**info, "version": LEXICAL_VERSION, "tokenizer": TOKENIZER, "count": len(self.ids)}
            record["ids_digest"] = self.digest
            atomic_write(tmp / INFO_FILE, json.dumps(record, indent=2, sort_keys=True))

    @staticmethod
    def read_info(folder: str | Path) -> dict[str, Any] | None:
        """The saved index's record, or None when there is no complete index in ``folder``."""
        path = Path(folder) / INFO_FILE
        if not path.is_file():
            return None
        try:
            info = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return info if isinstance(info, dict) else None

    @classmethod
    def load(cls, folder: str | Path) -> LexicalIndex:
        """Read an index written by ``save`` (numpy arrays without pickle)."""
        bm25s = _bm25s()
        folder = Path(folder)
        info = cls.read_info(folder)
        if info is None or info.get("version") != LEXICAL_VERSION or info.get("tokenizer") != TOKENIZER:
            raise LexicalIndexError(f"{folder}: no lexical index of this version")
        try:
            ids = json.loads((folder / "ids.json").read_text(encoding="utf-8"))
            retriever = None
            if (folder / "bm25").is_dir():
                retriever = bm25s.BM25.load(str(folder / "bm25"), allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise LexicalIndexError(f"{folder}: cannot read the lexical index: {exc}") from None
        if (
            not isinstance(ids, list)
            or len(ids) != info.get("count")
            or ids_digest(ids) != info.get("ids_digest")
        ):
            raise LexicalIndexError(f"{folder}: the lexical index's ids do not match its record")
        return cls(retriever, [str(i) for i in ids], info.get("fingerprint"), int(info.get("revision") or 0))


def lexical_folder(collection: Any, db: str | Path | None = None) -> Path:
    """Where the lexical index of ``collection`` (an ``O1Collection``) lives: beside an embedded database
    at ``db`` (``<db>/o1rag-lexical/<name>``), else under ``$O1RAG_HOME/lexical/<collection id>``
    (a server, or a client whose folder is unknown)."""
    from o1_rag.models import o1rag_home

    if db is not None:
        return Path(db) / "o1rag-lexical" / collection.name
    return o1rag_home() / "lexical" / str(collection.collection.id)


_OPEN: dict[Path, LexicalIndex] = {}
_OPEN_LOCK = threading.Lock()


def lexical_index(collection: Any, db: str | Path | None = None) -> LexicalIndex:
    """The lexical index of ``collection`` for searching, kept open in this process.

    An open index is reused while the collection holds as many documents as it does at the same revision
    (``O1Collection.revision``, read again from the store each time, so a document another process
    replaced is seen at the next search); otherwise it is synchronised again (``sync_lexical``)."""
    folder = lexical_folder(collection, db)
    collection.refresh()
    with _OPEN_LOCK:
        index = _OPEN.get(folder)
        if (
            index is None
            or len(index) != collection.count()
            or index.fingerprint != collection.fingerprint
            or index.revision != collection.revision
        ):
            index = sync_lexical(collection, folder)
            _OPEN[folder] = index
        return index


def drop_lexical(folder: str | Path) -> bool:
    """Remove a lexical index folder (``lexical_folder``) and forget it in this process; True if there was
    one. Only a folder holding a saved lexical index is removed."""
    folder = Path(folder)
    with _OPEN_LOCK:
        _OPEN.pop(folder, None)
    if not (folder / INFO_FILE).is_file():
        return False
    import shutil

    shutil.rmtree(folder)
    return True


def sync_lexical(
    collection: Any,
    folder: str | Path,
    progress: Callable[[int, int], None] | None = None,
    page: int = 2000,
) -> LexicalIndex:
    """The lexical index of ``collection`` (an ``O1Collection``), rebuilt from its stored documents when the
    saved one is missing, unreadable or out of step (other collection, fingerprint, ids or revision). A
    rebuild tokenizes only the texts the saved index did not hold (``lexical_tokens``)."""
    folder = Path(folder)
    ids = sorted(collection.stored_ids()) if collection.count() else []
    expected = {
        "collection": collection.name,
        "collection_id": str(collection.collection.id),
        "fingerprint": collection.fingerprint,
        "ids_digest": ids_digest(ids),
        "count": len(ids),
        "revision": collection.revision,
    }
    info = LexicalIndex.read_info(folder)
    same_tokenizer = info is not None and info.get("tokenizer") == TOKENIZER
    if info is not None and all(info.get(key, SAVED_DEFAULTS.get(key)) == v for key, v in expected.items()):
        try:
            return LexicalIndex.load(folder)
        except LexicalIndexError as exc:
            logger.warning("%s; rebuilding it", exc)
    logger.info("building the lexical index of %s (%d documents)", collection.name, len(ids))
    texts: list[str] = []
    if progress is not None:
        progress(0, len(ids))
    for by_id in collection.iter_texts(ids, page):
        texts.extend(by_id.values())
        if progress is not None:
            progress(len(texts), len(ids))
    digests = [text_digest(text) for text in texts]
    tokens = reuse_tokens(load_tokens(folder) if same_tokenizer else {}, digests, texts, _tokenize)
    index = LexicalIndex.build(ids, texts, tokens)
    index.fingerprint, index.revision = collection.fingerprint, collection.revision
    saved = {k: v for k, v in expected.items() if k not in {"ids_digest", "count"}}
    index.save(folder, saved, (digests, tokens))
    return index


@dataclass
class FusedHit:
    """One document of a fused ranking: the fused score and each side's own score (None: not returned)."""

    id: str
    score: float
    dense_score: float | None
    lexical_score: float | None


def _zscores(scores: Sequence[float]) -> tuple[np.ndarray, float]:
    values = np.asarray(scores, dtype=np.float64)
    if values.size == 0:
        return values, 0.0
    spread = float(values.std())
    z = (values - values.mean()) / spread if spread > 1e-12 else np.zeros_like(values)
    return z, float(z.min())


def lexical_weight(coverage: float) -> float:
    """The lexical side's weight in the fusion for a query with this coverage (0..1)."""
    return math.sqrt(min(max(coverage, 0.0), 1.0))


def fuse(
    dense: Sequence[tuple[str, float]],
    lexical: LexicalHits,
    k: int,
    depth: int = FUSION_DEPTH,
) -> list[FusedHit]:
    """Fuse one query's dense hits (best first) with its lexical hits; the ``k`` best fused documents."""
    dense = list(dense)[:depth]
    lex = list(zip(lexical.ids, lexical.scores, strict=True))[:depth]
    z_dense, floor_dense = _zscores([s for _, s in dense])
    z_lex, floor_lex = _zscores([s for _, s in lex])
    weight = lexical_weight(lexical.coverage) if lex else 0.0
    dense_of = {doc_id: (score, float(z)) for (doc_id, score), z in zip(dense, z_dense, strict=True)}
    lex_of = {doc_id: (score, float(z)) for (doc_id, score), z in zip(lex, z_lex, strict=True)}
    fused = []
    for doc_id in dict.fromkeys([d for d, _ in dense] + [d for d, _ in lex]):
        d_score, d_z = dense_of.get(doc_id, (None, floor_dense))
        l_score, l_z = lex_of.get(doc_id, (None, floor_lex))
        fused.append(FusedHit(doc_id, d_z + weight * l_z, d_score, l_score))
    fused.sort(key=lambda hit: -hit.score)
    return fused[:k]
