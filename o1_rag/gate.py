"""``think="auto"``: decide per query whether to think, from signals that cost no generation.

The signals come from the query-only retrieval that every search does anyway: the cosine similarity of the
best hit, its margin over the second, its lead over the mean of the top ten, the spread of the top ten, and
the query's length. A logistic regression (a few numbers, ``o1_gate.json`` beside the model) maps them to the
probability that thinking raises the relevant documents' rank for this query; the query thinks when that
probability reaches the threshold. It is trained by ``o1rag train-gate`` on training queries with
judgements. Each input is clipped to the range the regression was fitted on (``low`` / ``high``), so a
query unlike the training queries (two words where training claims had ten) does not push the linear score
past anything it learned. The decision is a pure function of the query and the collection, so it is
deterministic.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from o1_rag.errors import O1RagError
from o1_rag.files import atomic_write

GATE_FILE = "o1_gate.json"
FEATURES = ("top1", "margin", "lead", "spread", "log_words")
TOP = 10
THINK_CHOICES = ("auto", "always", "never")


class GateError(O1RagError):
    """A gate file is missing fields or holds wrong values."""


def think_choice(value: bool | str | None) -> str:
    """``"auto"``, ``"always"`` or ``"never"`` from a setting (``True`` is always, ``False`` never)."""
    if value is None or value is True:
        return "always" if value is True else "auto"
    if value is False:
        return "never"
    choice = str(value).strip().lower()
    if choice not in THINK_CHOICES:
        raise ValueError(f"think must be one of {', '.join(THINK_CHOICES)} (or true/false), got '{value}'")
    return choice


def gate_features(query: str, top_scores: Sequence[float]) -> np.ndarray:
    """The gate's inputs for one query: its query-only top hits' cosine scores (best first) and its length."""
    top = np.asarray(list(top_scores)[:TOP], dtype=np.float64)
    words = max(len(query.split()), 1)
    if top.size == 0:
        return np.array([0.0, 0.0, 0.0, 0.0, math.log(words)])
    second = top[1] if top.size > 1 else top[0]
    return np.array([top[0], top[0] - second, top[0] - top.mean(), top.std(), math.log(words)])


@dataclass(frozen=True)
class GateDecision:
    """Whether a query thought, and why."""

    think: bool
    mode: str  # auto / always / never
    probability: float | None = None  # the gate's estimate that thinking helps (auto only)

    def describe(self) -> str:
        if self.mode != "auto":
            return f"{self.mode}: {'thought' if self.think else 'did not think'}"
        if self.probability is None:
            return "auto: thought (no gate for this thinker and encoder)"
        verdict = "thought" if self.think else "skipped thinking"
        return f"auto: {verdict} (gate p={self.probability:.2f})"


@dataclass
class ThinkGate:
    """A logistic regression over ``FEATURES`` (standardised by ``mean`` and ``scale``), its inputs clipped to
    ``[low, high]`` (the range it was fitted on; none when a gate file has no range)."""

    mean: list[float]
    scale: list[float]
    coef: list[float]
    intercept: float
    threshold: float = 0.5
    trained_on: str = ""
    low: list[float] | None = None
    high: list[float] | None = None

    def __post_init__(self) -> None:
        if (self.low is None) != (self.high is None):
            raise GateError("gate fields 'low' and 'high' go together")
        names = ("mean", "scale", "coef") + (("low", "high") if self.low is not None else ())
        for name in names:
            values = getattr(self, name)
            if not isinstance(values, list) or len(values) != len(FEATURES):
                raise GateError(
                    f"gate field '{name}' must list {len(FEATURES)} numbers ({', '.join(FEATURES)})"
                )
            if not all(isinstance(v, int | float) and math.isfinite(v) for v in values):
                raise GateError(f"gate field '{name}' holds a value that is not a finite number")
        if any(v <= 0 for v in self.scale):
            raise GateError("gate field 'scale' must be positive")
        if (
            self.low is not None
            and self.high is not None
            and any(lo > hi for lo, hi in zip(self.low, self.high, strict=True))
        ):
            raise GateError("gate field 'low' must not exceed 'high'")
        if not 0.0 <= float(self.threshold) <= 1.0:
            raise GateError(f"gate threshold must be in [0, 1], got {self.threshold}")

    def probability(self, query: str, top_scores: Sequence[float]) -> float:
        """The estimated probability that thinking helps this query."""
        x = gate_features(query, top_scores)
        if self.low is not None:
            x = np.clip(x, np.asarray(self.low), np.asarray(self.high))
        x = (x - np.asarray(self.mean)) / np.asarray(self.scale)
        logit = float(x @ np.asarray(self.coef) + self.intercept)
        return 1.0 / (1.0 + math.exp(-max(min(logit, 50.0), -50.0)))

    def decide(self, query: str, top_scores: Sequence[float]) -> GateDecision:
        p = self.probability(query, top_scores)
        return GateDecision(p >= self.threshold, "auto", round(p, 4))

    @classmethod
    def fit(
        cls,
        features: np.ndarray,
        helped: Sequence[bool],
        threshold: float = 0.5,
        trained_on: str = "",
        weights: Sequence[float] | None = None,
    ) -> ThinkGate:
        """Fit on per-query features and whether thinking helped (queries where it changed nothing left out
        by the caller); the features' observed range becomes the clipping range.

        ``weights`` (one per query, e.g. how far thinking moved its relevant documents) make a query count
        in proportion to what deciding it wrongly costs, so the gate learns where thinking gains or loses
        much rather than where it moves a document by one rank; without them every query counts the same.
        """
        from sklearn.linear_model import LogisticRegression

        y = np.asarray(helped, dtype=int)
        if len(set(y.tolist())) < 2:
            raise GateError("the gate needs training queries where thinking helped and where it hurt")
        w = np.ones(len(y)) if weights is None else np.asarray(weights, dtype=np.float64)
        if w.shape != y.shape or not np.all(np.isfinite(w)) or np.any(w < 0):
            raise GateError("gate weights must be one finite, non-negative number per query")
        if w[y == 0].sum() <= 0 or w[y == 1].sum() <= 0:
            raise GateError("the gate needs weight on queries where thinking helped and where it hurt")
        w = w * len(w) / w.sum()  # mean 1: the regularisation keeps its strength
        class_share = {label: w.sum() / (2 * w[y == label].sum()) for label in (0, 1)}
        w = w * np.where(y == 1, class_share[1], class_share[0])  # balanced classes, by weight
        mean = features.mean(0)
        scale = np.where(features.std(0) > 1e-9, features.std(0), 1.0)
        model = LogisticRegression(C=1.0).fit((features - mean) / scale, y, sample_weight=w)
        return cls(
            [float(v) for v in mean],
            [float(v) for v in scale],
            [float(v) for v in model.coef_[0]],
            float(model.intercept_[0]),
            threshold,
            trained_on,
            [float(v) for v in features.min(0)],
            [float(v) for v in features.max(0)],
        )

    def save(self, path: str | Path) -> None:
        atomic_write(path, json.dumps({"features": list(FEATURES), **asdict(self)}, indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> ThinkGate:
        path = Path(path)
        try:
            raw: Any = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise GateError(f"{path}: cannot read the gate: {exc}") from None
        if not isinstance(raw, dict) or raw.pop("features", list(FEATURES)) != list(FEATURES):
            raise GateError(f"{path}: not a gate over the features {', '.join(FEATURES)}")
        try:
            return cls(**raw)
        except TypeError as exc:
            raise GateError(f"{path}: {exc}") from None
        except GateError as exc:
            raise GateError(f"{path}: {exc}") from None
