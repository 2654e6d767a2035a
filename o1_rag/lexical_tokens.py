"""The token lists a lexical index was built from, saved beside it, so that a rebuild after a change
tokenizes only the texts it has not seen before.

Stemming is about half of a BM25 rebuild's time (``o1rag bench --suites lexical``: scifact's 5,183 documents,
1.04 s against 0.53 s with saved tokens, on a 2-core CPU), and a collection that takes a few documents at a
time (``O1Retriever.add_documents``, ``o1rag index`` of a grown folder, another process's writes) would
otherwise tokenize its whole corpus again at the next search. Each document's tokens are stored under a digest
of its text (``tokens.npz``: token numbers, per-document offsets and ``store.text_digest`` of each text;
``tokens_vocab.json``: the words), so a text that did not change is never tokenized twice, whatever its id;
tokenizing is per text, so reused tokens are the ones a full build would make. A missing or unreadable token
file only means a full tokenization.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from o1_rag.files import atomic_write

logger = logging.getLogger(__name__)

TOKENS_FILE = "tokens.npz"
VOCAB_FILE = "tokens_vocab.json"


def save_tokens(folder: Path, digests: Sequence[str], tokens: Sequence[Sequence[str]]) -> None:
    """Write each text's tokens (``tokens[i]`` for the text whose ``store.text_digest`` is ``digests[i]``)
    into ``folder``."""
    words = [word for doc in tokens for word in doc]
    number = {word: i for i, word in enumerate(dict.fromkeys(words))}
    flat = np.fromiter(map(number.__getitem__, words), np.int32, len(words))
    offsets = np.zeros(len(tokens) + 1, dtype=np.int64)
    np.cumsum([len(doc) for doc in tokens], out=offsets[1:])
    with open(folder / TOKENS_FILE, "wb") as handle:
        np.savez(handle, ids=flat, offsets=offsets, digests=np.asarray([d.encode() for d in digests], "S32"))
    atomic_write(folder / VOCAB_FILE, json.dumps(list(number), ensure_ascii=False))


def load_tokens(folder: Path) -> dict[str, list[str]]:
    """The saved tokens of ``folder`` by text digest; empty when there are none or they cannot be read."""
    try:
        words = json.loads((folder / VOCAB_FILE).read_text(encoding="utf-8"))
        with np.load(folder / TOKENS_FILE, allow_pickle=False) as data:
            flat, offsets, digests = data["ids"], data["offsets"], data["digests"]
    except (OSError, ValueError, KeyError):
        return {}
    sound = (
        isinstance(words, list)
        and len(offsets) == len(digests) + 1
        and (offsets[-1] if len(offsets) else -1) == len(flat)
        and bool(np.all(np.diff(offsets) >= 0))
        and (flat.size == 0 or (int(flat.min()) >= 0 and int(flat.max()) < len(words)))
    )
    if not sound:
        logger.warning("%s: saved tokens do not add up; tokenizing every text again", folder)
        return {}
    every = np.asarray(words, dtype=object)[flat].tolist()
    bounds = offsets.tolist()
    return {d.decode(): every[bounds[i] : bounds[i + 1]] for i, d in enumerate(digests.tolist())}


def reuse_tokens(
    known: dict[str, list[str]],
    digests: Sequence[str],
    texts: Sequence[str],
    tokenize: Callable[[Sequence[str]], list[list[str]]],
) -> list[list[str]]:
    """Each text's tokens: ``known`` ones reused, the rest tokenized in one call."""
    reused = [known.get(d) for d in digests]
    missing = [texts[i] for i, t in enumerate(reused) if t is None]
    fresh = iter(tokenize(missing) if missing else [])
    logger.info("tokenized %d of %d texts (%d reused)", len(missing), len(texts), len(texts) - len(missing))
    return [t if t is not None else next(fresh) for t in reused]
