"""A persistent thought cache: SQLite under the cache root, safe with several processes.

It holds the thoughts of each query and the query embedding made from them, so a repeated query costs a
lookup and a Chroma search, not a forward pass.

Keys combine the embedder fingerprint, the generation parameters and the query text, so a repeated query
with the same model and settings never regenerates, and any change of model or settings misses.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from o1_rag.models import o1rag_home

_SCHEMA = """
CREATE TABLE IF NOT EXISTS thoughts (
    key TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    params TEXT NOT NULL,
    query TEXT NOT NULL,
    thoughts TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS query_vectors (
    key TEXT PRIMARY KEY,
    vector BLOB NOT NULL
)
"""


def default_cache_path() -> Path:
    """``$O1RAG_HOME/thoughts.sqlite``."""
    return o1rag_home() / "thoughts.sqlite"


def params_key(params: Mapping[str, Any]) -> str:
    """Canonical JSON of generation parameters (sorted keys)."""
    return json.dumps(dict(params), sort_keys=True, separators=(",", ":"))


class ThoughtCache:
    """Thoughts per (fingerprint, generation parameters, query), stored in SQLite (WAL mode).

    Args:
        path: database file; default ``$O1RAG_HOME/thoughts.sqlite``.
        timeout: seconds a writer waits for another process's lock.
    """

    def __init__(self, path: str | Path | None = None, timeout: float = 60.0) -> None:
        self.path = Path(path) if path is not None else default_cache_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._timeout = timeout
        self._local = threading.local()
        self._connect().executescript(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=self._timeout, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
        return conn

    @staticmethod
    def key(fingerprint: str, params: Mapping[str, Any], query: str) -> str:
        """The cache key of one query."""
        raw = f"{fingerprint}\0{params_key(params)}\0{query}".encode()
        return hashlib.sha256(raw).hexdigest()

    def _select(
        self, table: str, column: str, fingerprint: str, params: Mapping[str, Any], queries: Iterable[str]
    ) -> Iterator[tuple[str, Any]]:
        """``(query, value)`` for the queries stored in ``table`` (looked up in chunks of 500 keys)."""
        wanted = {self.key(fingerprint, params, q): q for q in queries}
        keys = list(wanted)
        conn = self._connect()
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for key, value in conn.execute(
                f"SELECT key, {column} FROM {table} WHERE key IN ({marks})", chunk
            ):
                yield wanted[key], value

    def get_many(
        self, fingerprint: str, params: Mapping[str, Any], queries: Iterable[str]
    ) -> dict[str, list[str]]:
        """Cached thoughts for the queries that have them: ``{query: thoughts}``."""
        return {
            q: json.loads(t) for q, t in self._select("thoughts", "thoughts", fingerprint, params, queries)
        }

    def put_many(self, fingerprint: str, params: Mapping[str, Any], items: Mapping[str, list[str]]) -> None:
        """Store thoughts for several queries in one transaction."""
        encoded = params_key(params)
        now = time.time()
        rows = [
            (self.key(fingerprint, params, q), fingerprint, encoded, q, json.dumps(list(t)), now)
            for q, t in items.items()
        ]
        self._write("INSERT OR REPLACE INTO thoughts VALUES (?, ?, ?, ?, ?, ?)", rows)

    def get_vectors(
        self, fingerprint: str, params: Mapping[str, Any], queries: Iterable[str], dim: int
    ) -> dict[str, np.ndarray]:
        """Cached query embeddings (float32, ``(dim,)``) for the queries that have them."""
        found = {}
        for query, blob in self._select("query_vectors", "vector", fingerprint, params, queries):
            vector = np.frombuffer(blob, dtype=np.float32)
            if vector.shape == (dim,):
                found[query] = vector
        return found

    def put_vectors(
        self, fingerprint: str, params: Mapping[str, Any], items: Mapping[str, np.ndarray]
    ) -> None:
        """Store query embeddings (raw float32 bytes, never pickled) in one transaction."""
        rows = [
            (self.key(fingerprint, params, q), np.ascontiguousarray(v, dtype=np.float32).tobytes())
            for q, v in items.items()
        ]
        self._write("INSERT OR REPLACE INTO query_vectors VALUES (?, ?)", rows)

    def _write(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        conn = self._connect()
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(sql, rows)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def __len__(self) -> int:
        return int(self._connect().execute("SELECT COUNT(*) FROM thoughts").fetchone()[0])

    def clear(self, fingerprint: str | None = None) -> int:
        """Delete every entry (or one fingerprint's); return how many went."""
        conn = self._connect()
        if fingerprint is None:
            conn.execute("DELETE FROM query_vectors")
            return conn.execute("DELETE FROM thoughts").rowcount
        keys = "SELECT key FROM thoughts WHERE fingerprint = ?"
        conn.execute(f"DELETE FROM query_vectors WHERE key IN ({keys})", (fingerprint,))
        return conn.execute("DELETE FROM thoughts WHERE fingerprint = ?", (fingerprint,)).rowcount
