"""The retrieval committee: dense encoders and BM25 score candidate thoughts against the known positive.

Each member scores every candidate (query + thought, used as a search query) against the positive
passage; scores are turned into a softmax over the candidates per member. Soft vote: the member softmaxes
are summed and the argmax wins (the paper's rule). Hard vote: each member votes for its own argmax; the
majority wins and the soft sum breaks ties.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from o1_rag.data import Document


class Member(Protocol):
    """A committee member: scores (query + candidate) texts against one positive document."""

    name: str

    def score(self, queries: Sequence[str], positive: Document) -> np.ndarray: ...


def softmax(scores: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Numerically stable softmax of a 1-D array."""
    z = (np.asarray(scores, dtype=np.float64) - np.max(scores)) / temperature
    e = np.exp(z)
    return e / e.sum()


@dataclass
class Vote:
    """The outcome for one query: the winning candidate and every member's softmax over the candidates."""

    winner: int
    votes: dict[str, list[float]]  # member -> softmax over candidates
    teacher: list[float]  # normalised summed softmax: soft teacher labels for distillation


def vote(member_scores: dict[str, np.ndarray], rule: str = "soft", temperature: float = 1.0) -> Vote:
    """Combine members' raw scores over the same candidates into a decision."""
    if rule not in ("soft", "hard"):
        raise ValueError(f"vote rule must be 'soft' or 'hard', got '{rule}'")
    if not member_scores:
        raise ValueError("the committee has no members")
    probs = {name: softmax(s, temperature) for name, s in member_scores.items()}
    total = np.sum(list(probs.values()), axis=0)
    if rule == "soft":
        winner = int(np.argmax(total))
    else:
        ballots = np.bincount([int(np.argmax(p)) for p in probs.values()], minlength=len(total))
        leaders = np.flatnonzero(ballots == ballots.max())
        winner = int(leaders[np.argmax(total[leaders])])
    return Vote(
        winner,
        {n: [round(float(v), 6) for v in p] for n, p in probs.items()},
        [round(float(v), 6) for v in total / total.sum()],
    )


class DenseMember:
    """A sentence-transformers encoder: cosine similarity of each query to the positive passage.

    ``model`` is anything ``SentenceTransformerEncoder`` loads, including a fine-tuned encoder's adapter
    folder or a thinker + encoder alias (``o1-minilm``: its encoder), so the committee can include the
    encoder the thoughts are for.
    """

    def __init__(self, model: str, device: str | None = None) -> None:
        from o1_rag.retrievers import DenseRetriever

        self.name = f"dense:{model}"
        self.retriever = DenseRetriever(model, device=device or "auto")

    def score(self, queries: Sequence[str], positive: Document) -> np.ndarray:
        return self.retriever.encode(queries) @ self.retriever.encode([positive.full_text()])[0]


class BM25Member:
    """BM25 over the training corpus: the score the positive passage gets for each query; it also mines
    the hard negatives."""

    name = "bm25"

    def __init__(self, corpus: Sequence[Document]) -> None:
        from o1_rag.retrievers import BM25Retriever

        self.retriever = BM25Retriever(corpus)

    def score(self, queries: Sequence[str], positive: Document) -> np.ndarray:
        return self.retriever.score_of(queries, positive.id)

    def top_k(self, query: str, k: int, exclude: set[str]) -> list[str]:
        """Ids of the best-scoring documents for ``query``, skipping ``exclude``."""
        return self.retriever.top_k(query, k, exclude)


def make_committee(
    corpus: Sequence[Document], dense: Sequence[str] | None = None, bm25: bool = True, device: str = "auto"
) -> tuple[list[Member], BM25Member]:
    """The voting members (one ``DenseMember`` per model in ``dense``, default the bundled MiniLM, plus BM25
    unless ``bm25`` is False) and the BM25 member, which also mines hard negatives either way."""
    members: list[Member] = [
        DenseMember(m, None if device == "auto" else device) for m in (dense or ["all-minilm-l6-v2"])
    ]
    lexical = BM25Member(corpus)
    if bm25:
        members.append(lexical)
    return members, lexical
