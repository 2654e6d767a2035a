"""Searching a whole file of queries into a JSON-lines file: the queries that think share batched generate
calls (faster per query than one search each: ``o1rag bench --suites think`` measures it), and the output
is append-only and resumable (after a kill, a re-run skips the queries already written and cuts away a
half-written last line)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from o1_rag.embedder import O1Embedder, ThinkParams
from o1_rag.errors import DataError
from o1_rag.feedback import FEEDBACK_DOCS
from o1_rag.files import append_lines, finished_keys
from o1_rag.lexical import LexicalIndex
from o1_rag.search import search
from o1_rag.selection import Selection
from o1_rag.store import O1Collection

# queries per batched search and per durable write: enough for the queries the gate sends to think to
# fill the thinker's generate calls
CHUNK = 128


@dataclass(frozen=True)
class BulkReport:
    """What ``search_to_file`` did: queries searched now, already in the file, how many of those searched
    now thought, and the searching speed."""

    searched: int
    skipped: int
    thought: int
    queries_per_second: float


def pending(queries: dict[str, str], output: str | Path) -> list[str]:
    """The ids of ``queries`` that ``output`` does not hold yet, in order (a torn last line is cut away).

    Raises:
        DataError: ``output`` holds a line that is not a search record.
    """
    done = finished_keys(output, "query_id", DataError, "a search record")
    return [qid for qid in queries if qid not in done]


def search_to_file(
    embedder: O1Embedder,
    collection: O1Collection,
    queries: dict[str, str],
    output: str | Path,
    *,
    k: int = 10,
    think: bool | str = "auto",
    params: ThinkParams | None = None,
    lexical: LexicalIndex | None = None,
    feedback: int = FEEDBACK_DOCS,
    selection: Selection | None = None,
    where: dict[str, Any] | None = None,
    use_cache: bool = True,
    texts: bool = True,
    chunk: int = CHUNK,
    progress: Callable[[int, int], None] | None = None,
) -> BulkReport:
    """Search each of ``queries`` (``{query_id: text}``) as ``o1_rag.search.search`` does and append one
    JSON object per query to ``output``: ``query_id`` and ``QueryResult.to_dict()`` (without the hits'
    ``title`` and ``text`` when ``texts`` is False). Queries whose id the file already holds are skipped.
    ``progress(done, total)`` once the file is read, then after each chunk.

    Raises:
        DataError: ``output`` holds a line that is not such a record.
        ValueError: ``chunk`` < 1 (and what ``search`` rejects).
    """
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    todo = pending(queries, output)
    if progress is not None:
        progress(0, len(todo))
    thought = 0
    start = time.perf_counter()
    for first in range(0, len(todo), chunk):
        ids: Sequence[str] = todo[first : first + chunk]
        results = search(
            embedder,
            collection,
            [queries[qid] for qid in ids],
            k=k,
            think=think,
            params=params,
            use_cache=use_cache,
            lexical=lexical,
            feedback=feedback,
            selection=selection,
            where=where,
        )
        lines = []
        for qid, result in zip(ids, results, strict=True):
            record: dict[str, Any] = {"query_id": qid, **result.to_dict()}
            if not texts:
                record["hits"] = [
                    {key: v for key, v in hit.items() if key not in ("title", "text")}
                    for hit in record["hits"]
                ]
            thought += bool(result.decision and result.decision.think)
            lines.append(json.dumps(record, ensure_ascii=False))
        append_lines(output, lines)
        if progress is not None:
            progress(first + len(ids), len(todo))
    elapsed = time.perf_counter() - start
    rate = len(todo) / elapsed if todo and elapsed > 0 else 0.0
    return BulkReport(len(todo), len(queries) - len(todo), thought, rate)
