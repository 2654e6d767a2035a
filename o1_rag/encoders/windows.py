"""Long documents as overlapping windows: a document longer than the encoder's input is embedded whole
instead of cut at its first window.

``long_documents="windows"``: the text is split at word boundaries into windows of the encoder's input
length, each repeating the last quarter of the one before (``WINDOW_OVERLAP``); the first window is the
text as the encoder sees it when it truncates (so short documents are embedded exactly as before). The
document's vector is the normalised sum of the first window's vector and the mean of every window's
vector: the lead of a document (its title, the first sentences of an abstract) counts as much as the
whole, and the rest of the text still counts. At most ``MAX_WINDOWS`` windows are read (about 3,100
tokens with a 256-token encoder); longer texts are better cut into passages before indexing.

``"truncate"`` is sentence-transformers' own behaviour (everything past the first window is ignored); an
index made by another tool with the same encoder holds those vectors. ``O1Embedder.from_pretrained`` (and
``--long-documents``) default to the model's own mode: ``windows`` for ``o1-minilm``, ``truncate`` for a
named ``encoder`` other than an alias (e.g. one adopting another tool's collection). ``windows`` enters
the encoder's fingerprint, so a collection is always searched with the mode that built it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from o1_rag.encoders.base import normalise_rows

LONG_DOCUMENTS = ("truncate", "windows")
WINDOW_OVERLAP = 0.25  # the share of a window's tokens the next window repeats
MAX_WINDOWS = 16


def check_long_documents(mode: str) -> str:
    """``mode`` if it is one of ``LONG_DOCUMENTS``, else a one-line ValueError."""
    if mode not in LONG_DOCUMENTS:
        raise ValueError(f"long_documents must be one of {', '.join(LONG_DOCUMENTS)}, got {mode!r}")
    return mode


def window_size(tokenizer: Any, max_seq_length: int) -> int:
    """Tokens of text in one window: the encoder's input length less its special tokens."""
    return max(int(max_seq_length) - int(tokenizer.num_special_tokens_to_add(pair=False)), 1)


def window_step(size: int, overlap: float = WINDOW_OVERLAP) -> int:
    """Tokens from one window's start to the next one's."""
    return max(size - int(size * overlap), 1)


def split_windows(text: str, tokenizer: Any, size: int, overlap: float = WINDOW_OVERLAP) -> list[str]:
    """``text`` as overlapping windows of at most ``size`` tokens each; the first window is the whole text,
    which the encoder truncates to its first ``size`` tokens. Later windows start and end at word
    boundaries (a fast tokenizer's offsets cut the original text, so no text is re-spelt) and start about
    ``window_step(size, overlap)`` tokens after the one before. A text that fits is one window."""
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    offsets, words = encoded["offset_mapping"], encoded.word_ids()
    n = len(offsets)
    if n <= size:
        return [text]

    def inside_word(i: int) -> bool:  # token i continues the word of token i - 1
        return 0 < i < n and words[i] is not None and words[i] == words[i - 1]

    step = window_step(size, overlap)
    windows = [text]
    start = step
    while len(windows) < MAX_WINDOWS and start < n:
        while inside_word(start):
            start += 1
        if start >= n:
            break
        end = min(start + size, n)
        while end > start + 1 and inside_word(end):  # end on a word boundary
            end -= 1
        windows.append(text[offsets[start][0] : offsets[end - 1][1]])
        if end == n:
            break
        start += step
    return windows


def combine_windows(vectors: np.ndarray, counts: Sequence[int]) -> np.ndarray:
    """One unit vector per document from its windows' vectors (rows in document order, ``counts[i]`` rows
    for document ``i``): ``normalise(first + mean(all))``; a one-window document keeps its vector."""
    out = np.zeros((len(counts), vectors.shape[1]), dtype=np.float64)
    row = 0
    for i, count in enumerate(counts):
        block = vectors[row : row + count].astype(np.float64)
        out[i] = block[0] + block.mean(axis=0) if count > 1 else block[0]
        row += count
    return normalise_rows(out)
