"""A persistent thought cache: SQLite under the cache root, safe with several processes.

Keys combine the embedder fingerprint, the generation parameters and the query text, so a repeated query
with the same model and settings never regenerates, and any change of model or settings misses.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from o1_rag.models import o1rag_home

_SCHEMA = """
CREATE TABLE IF NOT EXISTS thoughts (
    key TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    params TEXT NOT NULL,
    query TEXT NOT NULL,
    thoughts TEXT NOT NULL,
    created REAL NOT NULL
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
        with self._connect() as conn:
            conn.execute(_SCHEMA)

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

    def get_many(
        self, fingerprint: str, params: Mapping[str, Any], queries: Iterable[str]
    ) -> dict[str, list[str]]:
        """Cached thoughts for the queries that have them: ``{query: thoughts}``."""
        wanted = {self.key(fingerprint, params, q): q for q in queries}
        found: dict[str, list[str]] = {}
        keys = list(wanted)
        conn = self._connect()
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for key, thoughts in conn.execute(
                f"SELECT key, thoughts FROM thoughts WHERE key IN ({marks})", chunk
            ):
                found[wanted[key]] = json.loads(thoughts)
        return found

    def put_many(self, fingerprint: str, params: Mapping[str, Any], items: Mapping[str, list[str]]) -> None:
        """Store thoughts for several queries in one transaction."""
        if not items:
            return
        encoded = params_key(params)
        now = time.time()
        rows = [
            (self.key(fingerprint, params, q), fingerprint, encoded, q, json.dumps(list(t)), now)
            for q, t in items.items()
        ]
        conn = self._connect()
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany("INSERT OR REPLACE INTO thoughts VALUES (?, ?, ?, ?, ?, ?)", rows)
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
            cursor = conn.execute("DELETE FROM thoughts")
        else:
            cursor = conn.execute("DELETE FROM thoughts WHERE fingerprint = ?", (fingerprint,))
        return cursor.rowcount
