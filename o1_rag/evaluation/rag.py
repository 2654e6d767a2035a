"""``o1rag eval rag``: retrieve contexts with each retriever, generate answers, score them with ragas.

Non-LLM metrics (context recall/precision against the reference contexts and ids, ROUGE and string
similarity against the ground truth, and, given ``judge_embeddings``, semantic similarity of the answer to
the ground truth in an embedding space) always run offline; LLM-judged metrics (faithfulness, response
relevancy, LLM context recall) use a judge LLM, local or behind an OpenAI-compatible endpoint, under a
bounded ``RunConfig``.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from o1_rag.data import Document, load_corpus
from o1_rag.evaluation.context import EvalContext, EvalSettings
from o1_rag.evaluation.data import QAItem, load_qa
from o1_rag.evaluation.systems import build_system, parse_systems

logger = logging.getLogger(__name__)

ANSWER_PROMPT = (
    "Answer the question using only the context. If the context does not contain the answer, say so.\n\n"
    "Context:\n{context}\n\nQuestion: {question}"
)


@dataclass
class RAGResult:
    """ragas scores per retriever."""

    dataset: str
    retrievers: list[str]
    num_questions: int
    k: int
    scores: dict[str, dict[str, float]]  # retriever -> metric -> mean (NaN-free mean)
    failed: dict[str, dict[str, int]]  # retriever -> metric -> samples the judge could not score
    samples: dict[str, list[dict[str, Any]]]  # retriever -> per-question records
    seconds: dict[str, float]
    generator: str
    judge: str | None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def retrieve_contexts(
    spec: str, corpus: list[Document], items: list[QAItem], k: int, context: EvalContext
) -> list[list[Document]]:
    """Top-``k`` documents per question, retrieved by the evaluation system ``spec`` (for the O1 systems, the
    library's own query pipeline, as ``eval ir`` uses it)."""
    by_id = {d.id: d for d in corpus}
    queries = {item.id: item.question for item in items}
    ranking = build_system(spec, context).retrieve(corpus, queries, k)
    return [[by_id[d] for d in list(ranking[item.id])[:k]] for item in items]


def evaluate_rag(
    data_dir: str | Path,
    retrievers: str,
    settings: EvalSettings | None = None,
    k: int = 3,
    limit: int | None = None,
    generator: Any = None,
    generator_name: str = "",
    judge: Any = None,
    judge_name: str | None = None,
    judge_embeddings: Any = None,
    timeout_s: int = 120,
    workers: int = 1,
    progress: Callable[[str, int, int], None] | None = None,
) -> RAGResult:
    """Retrieve, answer and score every question with each retriever.

    ``generator`` and ``judge`` are LangChain LLMs (see ``o1_rag.evaluation.llms``); without a judge only
    the non-LLM metrics run (semantic similarity too, given ``judge_embeddings``). ``workers`` bounds
    concurrent judge calls (1 suits a local judge). ``progress(label, done, total)`` is told each stage.
    """
    os.environ.setdefault("RAGAS_DO_NOT_TRACK", "true")
    from ragas import EvaluationDataset, SingleTurnSample, evaluate
    from ragas.metrics import (
        Faithfulness,
        IDBasedContextPrecision,
        IDBasedContextRecall,
        LLMContextRecall,
        NonLLMContextPrecisionWithReference,
        NonLLMContextRecall,
        NonLLMStringSimilarity,
        ResponseRelevancy,
        RougeScore,
        SemanticSimilarity,
    )
    from ragas.run_config import RunConfig

    from o1_rag.evaluation.llms import chat_prompt, complete

    if k <= 0:
        raise ValueError(f"-k must be > 0, got {k}")
    specs = parse_systems(retrievers)
    context = EvalContext.create(settings, progress)
    items = load_qa(data_dir, limit)
    corpus = load_corpus(data_dir)
    metrics: list[Any] = [
        NonLLMContextRecall(),
        NonLLMContextPrecisionWithReference(),
        IDBasedContextRecall(),
        IDBasedContextPrecision(),
        RougeScore(),
        NonLLMStringSimilarity(),
    ]
    if judge_embeddings is not None:
        metrics.append(SemanticSimilarity())
    if judge is not None:
        metrics += [Faithfulness(), ResponseRelevancy(), LLMContextRecall()]
    run_config = RunConfig(timeout=timeout_s, max_retries=1, max_wait=2, max_workers=workers)
    scores: dict[str, dict[str, float]] = {}
    failed: dict[str, dict[str, int]] = {}
    samples: dict[str, list[dict[str, Any]]] = {}
    seconds: dict[str, float] = {}

    def tell(stage: str, done: int) -> None:
        if progress is not None:
            progress(stage, done, len(specs))

    for n, spec in enumerate(specs):
        start = time.perf_counter()
        tell("retrieving", n)
        contexts = retrieve_contexts(spec, corpus, items, k, context)
        tell("retrieving", n + 1)
        prompts = [
            chat_prompt(
                generator,
                ANSWER_PROMPT.format(
                    context="\n\n".join(d.full_text() for d in docs), question=item.question
                ),
            )
            for item, docs in zip(items, contexts, strict=True)
        ]
        tell("answering", n)
        answers = complete(generator, prompts)
        tell("answering", n + 1)
        dataset = EvaluationDataset(
            [
                SingleTurnSample(
                    user_input=item.question,
                    response=answer,
                    reference=item.ground_truth,
                    retrieved_contexts=[d.full_text() for d in docs],
                    reference_contexts=item.contexts or None,
                    retrieved_context_ids=[d.id for d in docs],
                    reference_context_ids=item.context_ids or None,
                )
                for item, docs, answer in zip(items, contexts, answers, strict=True)
            ]
        )
        tell("scoring", n)
        result = evaluate(
            dataset,
            metrics=metrics,
            llm=judge,
            embeddings=judge_embeddings,
            run_config=run_config,
            show_progress=False,
            raise_exceptions=False,
        )
        frame = result.to_pandas()
        columns = {  # ragas may decorate a column name, e.g. "rouge_score(mode=fmeasure)"
            m.name: next(c for c in frame.columns if c == m.name or c.startswith(f"{m.name}("))
            for m in metrics
            if any(c == m.name or c.startswith(f"{m.name}(") for c in frame.columns)
        }
        names = list(columns)
        scores[spec], failed[spec] = {}, {}
        for name in names:
            values = [float(v) for v in frame[columns[name]].tolist()]
            ok = [v for v in values if not math.isnan(v)]
            scores[spec][name] = sum(ok) / len(ok) if ok else float("nan")
            failed[spec][name] = len(values) - len(ok)
        samples[spec] = [
            {
                "id": item.id,
                "question": item.question,
                "answer": answer,
                "context_ids": [d.id for d in docs],
                **{name: float(frame[columns[name]].iloc[row]) for name in names},
            }
            for row, (item, docs, answer) in enumerate(zip(items, contexts, answers, strict=True))
        ]
        seconds[spec] = time.perf_counter() - start
        tell("scoring", n + 1)
    return RAGResult(
        Path(data_dir).resolve().name,
        specs,
        len(items),
        k,
        scores,
        failed,
        samples,
        seconds,
        generator_name,
        judge_name,
    )
