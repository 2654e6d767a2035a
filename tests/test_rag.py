import json
from pathlib import Path
from typing import Any

import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.language_models.llms import LLM
from typer.testing import CliRunner

from o1_rag.cli import app
from o1_rag.data import DataError
from o1_rag.evaluation.context import EvalSettings
from o1_rag.evaluation.data import load_qa
from o1_rag.evaluation.rag import evaluate_rag

ANSWER = "Aspirin thins the blood."


class FixedAnswer(LLM):
    """A generator that always gives the same answer, counting calls; it fails on call ``fail_on`` (as a
    killed evaluation would)."""

    calls: int = 0
    fail_on: int = 0

    @property
    def _llm_type(self) -> str:
        return "fixed"

    def _call(self, prompt: str, stop: Any = None, run_manager: Any = None, **kwargs: Any) -> str:
        self.calls += 1
        if self.calls == self.fail_on:
            raise KeyboardInterrupt
        return ANSWER


class FakeJudge(LLM):
    """Answers each ragas prompt with valid JSON for the schema the prompt asks for."""

    calls: int = 0

    @property
    def _llm_type(self) -> str:
        return "fake-judge"

    def _call(self, prompt: str, stop: Any = None, run_manager: Any = None, **kwargs: Any) -> str:
        self.calls += 1
        if '"title": "NLIStatementOutput"' in prompt:
            return json.dumps({"statements": [{"statement": ANSWER, "reason": "stated", "verdict": 1}]})
        if '"title": "StatementGeneratorOutput"' in prompt:
            return json.dumps({"statements": [ANSWER]})
        if '"title": "ContextRecallClassifications"' in prompt:
            return json.dumps(
                {"classifications": [{"statement": ANSWER, "reason": "in context", "attributed": 1}]}
            )
        if '"title": "ResponseRelevanceOutput"' in prompt:
            return json.dumps({"question": "Does aspirin thin the blood?", "noncommittal": 0})
        raise AssertionError(f"unexpected prompt: {prompt[:200]}")


@pytest.fixture
def qa_set(tmp_path: Path) -> Path:
    folder = tmp_path / "qa"
    folder.mkdir()
    docs = {
        "a": "Aspirin thins the blood and lowers clotting.",
        "b": "Coffee contains caffeine.",
        "c": "Sleep consolidates memory.",
    }
    (folder / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": k, "text": v}) + "\n" for k, v in docs.items())
    )
    rows = [
        {
            "id": "q1",
            "question": "Does aspirin thin the blood?",
            "ground_truth": ANSWER,
            "contexts": [docs["a"]],
        },
        {"id": "q2", "question": "What is in coffee?", "ground_truth": "Caffeine.", "contexts": [docs["b"]]},
        {"id": "q3", "question": "unanswerable?", "ground_truth": "", "answerable": False, "contexts": []},
    ]
    (folder / "qa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (folder / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\nq1\ta\t1\nq2\tb\t1\n")
    return folder


def test_load_qa(qa_set: Path) -> None:
    items = load_qa(qa_set)
    assert [i.id for i in items] == ["q1", "q2"] and items[0].context_ids == ["a"]
    assert len(load_qa(qa_set, limit=1)) == 1


def test_load_qa_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="qa.jsonl: file not found"):
        load_qa(tmp_path)
    (tmp_path / "qa.jsonl").write_text("")
    with pytest.raises(DataError, match="no answerable questions"):
        load_qa(tmp_path)
    (tmp_path / "qa.jsonl").write_text('{"id": "1", "ground_truth": "x"}\n')
    with pytest.raises(DataError, match="qa.jsonl:1: missing field 'question'"):
        load_qa(tmp_path)


def test_non_llm_metrics_offline(qa_set: Path) -> None:
    result = evaluate_rag(
        qa_set, "bm25", EvalSettings(device="cpu"), k=1, generator=FixedAnswer(), generator_name="fixed"
    )
    scores = result.scores["bm25"]
    assert scores["id_based_context_recall"] == pytest.approx(1.0)
    assert scores["id_based_context_precision"] == pytest.approx(1.0)
    assert scores["non_llm_context_recall"] == pytest.approx(1.0)
    assert 0.0 < scores["rouge_score"] <= 1.0
    assert 0.0 < scores["non_llm_string_similarity"] < 1.0  # one answer is right, the other is not
    assert result.samples["bm25"][0]["answer"] == ANSWER and result.samples["bm25"][0]["context_ids"] == ["a"]
    assert "faithfulness" not in scores and "semantic_similarity" not in scores


def test_semantic_similarity_offline_with_embeddings_only(qa_set: Path) -> None:
    from ragas.embeddings import LangchainEmbeddingsWrapper

    result = evaluate_rag(
        qa_set,
        "bm25",
        EvalSettings(device="cpu"),
        k=1,
        generator=FixedAnswer(),
        generator_name="fixed",
        judge_embeddings=LangchainEmbeddingsWrapper(DeterministicFakeEmbedding(size=16)),
    )
    per_question = [s["semantic_similarity"] for s in result.samples["bm25"]]
    assert per_question[0] == pytest.approx(1.0, abs=1e-6)  # the answer is the reference itself
    assert per_question[1] < 0.99
    assert "faithfulness" not in result.scores["bm25"]


def test_llm_metrics_with_fake_judge(qa_set: Path) -> None:
    from ragas.embeddings import LangchainEmbeddingsWrapper
    from ragas.llms import LangchainLLMWrapper

    judge = FakeJudge()
    result = evaluate_rag(
        qa_set,
        "bm25",
        EvalSettings(device="cpu"),
        k=1,
        limit=1,
        generator=FixedAnswer(),
        generator_name="fixed",
        judge=LangchainLLMWrapper(judge),
        judge_name="fake",
        judge_embeddings=LangchainEmbeddingsWrapper(DeterministicFakeEmbedding(size=16)),
    )
    scores = result.scores["bm25"]
    assert judge.calls > 0
    assert scores["faithfulness"] == pytest.approx(1.0)
    assert scores["context_recall"] == pytest.approx(1.0)
    assert scores["answer_relevancy"] == pytest.approx(1.0, abs=1e-6)  # same question text -> same embedding
    assert result.failed["bm25"]["faithfulness"] == 0


def test_cli_eval_rag_rejects_bad_input(tmp_path: Path) -> None:
    (tmp_path / "qa.jsonl").write_text('{"id": "1", "question": "q", "ground_truth": ""}\n')
    out = tmp_path / "rep"
    result = CliRunner().invoke(app, ["eval", "rag", str(tmp_path), "-o", str(out)], env={"COLUMNS": "200"})
    assert result.exit_code == 1 and "no answerable questions" in result.output and not out.exists()
    result = CliRunner().invoke(app, ["eval", "rag", str(tmp_path), "-r", "bm99"], env={"COLUMNS": "200"})
    assert result.exit_code == 1 and "unknown system 'bm99'" in result.output


def test_a_killed_evaluation_resumes_from_its_checkpoint(
    qa_set: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import o1_rag.evaluation.rag as rag

    monkeypatch.setattr(rag, "CHUNK", 1)  # one question per recorded chunk
    partial = tmp_path / "report.partial.jsonl"

    def run(generator: LLM, key: str = "a", limit: int | None = None) -> Any:
        return evaluate_rag(
            qa_set,
            "bm25",
            EvalSettings(device="cpu"),
            k=1,
            limit=limit,
            generator=generator,
            generator_name="fixed",
            checkpoint=partial,
            run_key={"answer_tokens": key},
        )

    whole = run(FixedAnswer())
    partial.unlink()
    first = FixedAnswer()
    run(first, limit=1)  # a first look at one question ...
    more = FixedAnswer()
    assert run(more).scores == whole.scores and (first.calls, more.calls) == (1, 1)  # ... then the rest
    partial.unlink()
    with pytest.raises(KeyboardInterrupt):
        run(FixedAnswer(fail_on=2))  # the second question's answer never comes
    assert len(partial.read_text().splitlines()) == 1  # the first question was answered and scored
    again = FixedAnswer()
    resumed = run(again)
    assert again.calls == 1  # only the second question
    assert resumed.scores == whole.scores and resumed.samples == whole.samples
    with open(partial, "ab") as handle:
        handle.write(b'{"key": "half a rec')  # a torn last line is cut away, nothing else is lost
    done = FixedAnswer()
    assert run(done).scores == whole.scores and done.calls == 0
    changed = FixedAnswer()
    run(changed, key="b")  # another answer length: nothing is reused
    assert changed.calls == 2
    partial.write_text('{"something": "else"}\n')
    with pytest.raises(DataError, match="not an eval rag record"):
        run(FixedAnswer())


def test_cli_eval_rag_writes_the_report_and_drops_its_checkpoint(
    qa_set: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import o1_rag.evaluation.llms as llms

    monkeypatch.setattr(llms, "make_llm", lambda *args, **kwargs: FixedAnswer())
    monkeypatch.setattr(llms, "ragas_embeddings", lambda: None)
    out = tmp_path / "rep"
    result = CliRunner().invoke(
        app, ["eval", "rag", str(qa_set), "-r", "bm25", "-k", "1", "--no-llm-metrics", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert (out / "report.md").is_file() and not (tmp_path / "rep.partial.jsonl").exists()
