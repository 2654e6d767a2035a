"""Early stopping of thinking: stop sampling a query's thoughts once two of them agree.

Two thoughts per query first, then one more at a time (the seed advanced each round) for the queries whose
thoughts do not yet agree, i.e. no two of their ``v_t`` (the encoder's vectors of query + thought) lie
within cosine ``params.agree`` of each other, until ``params.num_thoughts`` are written. It needs the
encoder, so it lives beside the embedder, not in a thinker.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from o1_rag.encoders import Encoder, normalise_rows
from o1_rag.thinkers import Thinker, ThinkParams


def thought_vectors(encoder: Encoder, queries: Sequence[str], thoughts: Sequence[str]) -> np.ndarray:
    """Unit ``v_t`` of each (query, thought) pair."""
    return normalise_rows(encoder.embed_pairs(list(queries), list(thoughts))[1])


def think_until_agree(
    thinker: Thinker,
    encoder: Encoder,
    queries: list[str],
    params: ThinkParams,
    cache: Any = None,
    key: dict[str, Any] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[list[str]]:
    """Thoughts per query (2 to ``params.num_thoughts``), in input order; each round's pairs are embedded
    in one encoder call. With a ``ThoughtCache``, the
    finished lists are looked up and stored under ``key`` (the settings including ``agree``);
    ``progress(done, total)`` is told after each round."""
    if not params.stops_early:
        raise ValueError("early stopping needs resolved settings with agree and more than two thoughts")
    unique = list(dict.fromkeys(queries))
    found = cache.get_many(thinker.cache_id, key, unique) if cache is not None else {}
    missing = [q for q in unique if q not in found]
    if missing:
        plain = replace(params, agree=None)
        thoughts = dict(zip(missing, thinker.think(missing, replace(plain, num_thoughts=2)), strict=True))
        first = thought_vectors(
            encoder, [q for q in missing for _ in range(2)], [t for q in missing for t in thoughts[q]]
        )
        vectors = {q: [first[2 * i], first[2 * i + 1]] for i, q in enumerate(missing)}
        pending = [q for q in missing if float(vectors[q][0] @ vectors[q][1]) < params.agree]
        for step in range(1, params.num_thoughts - 1):
            if progress is not None:
                progress(len(missing) - len(pending), len(missing))
            if not pending:
                break
            seed = None if plain.seed is None else plain.seed + step
            more = [t[0] for t in thinker.think(pending, replace(plain, num_thoughts=1, seed=seed))]
            still = []
            for query, thought, vector in zip(
                pending, more, thought_vectors(encoder, pending, more), strict=True
            ):
                agrees = max(float(vector @ old) for old in vectors[query]) >= params.agree
                thoughts[query].append(thought)
                vectors[query].append(vector)
                if not agrees:
                    still.append(query)
            pending = still
        if progress is not None:
            progress(len(missing), len(missing))
        if cache is not None:
            cache.put_many(thinker.cache_id, key, thoughts)
        found.update(thoughts)
    return [list(found[q]) for q in queries]
