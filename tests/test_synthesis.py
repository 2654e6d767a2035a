import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from o1_rag.cli import app
from o1_rag.data import DataError, Document
from o1_rag.synthesis.committee import BM25Member, softmax, vote
from o1_rag.synthesis.expert import expert_prompt
from o1_rag.synthesis.pipeline import TrainingQuery, finished_ids, load_training_queries, synthesize

CORPUS = [
    Document("a", "Aspirin", "Aspirin inhibits platelets and lowers the risk of heart attack."),
    Document("b", "Coffee", "Coffee contains caffeine, a stimulant that delays sleep."),
    Document("c", "Insulin", "Insulin lowers blood glucose by moving sugar into cells."),
    Document("d", "Sleep", "Sleep deprivation impairs memory and attention."),
]
ITEMS = [
    TrainingQuery("q1", "does aspirin help the heart?", [CORPUS[0]]),
    TrainingQuery("q2", "what does insulin do?", [CORPUS[2]]),
    TrainingQuery("q3", "why can't I sleep after coffee?", [CORPUS[1]]),
]


class FakeMember:
    def __init__(self, name: str, scores: list[float]) -> None:
        self.name, self.scores = name, np.array(scores)

    def score(self, queries, positive):
        return self.scores[: len(queries)]


class FakeExpert:
    """Candidate 1 repeats the positive's key words; the others are off topic."""

    name = "fake"

    def __init__(self, fail_after: int | None = None) -> None:
        self.calls, self.fail_after = 0, fail_after

    def draft(self, prompts, k, seed):
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise KeyboardInterrupt
        self.calls += 1
        out = []
        for prompt in prompts:
            query = prompt[-1]["content"]
            topic = {
                "aspirin": "aspirin platelets heart attack",
                "insulin": "insulin glucose cells",
                "coffee": "caffeine stimulant sleep",
            }
            key = next(t for word, t in topic.items() if word in query)
            out.append(["the weather is nice today", key, "a recipe for bread"][:k])
        return out


def test_soft_and_hard_votes_differ_as_defined() -> None:
    scores = {"a": np.array([10.0, 0.0, 0.0]), "b": np.array([0.0, 0.1, 0.0]), "c": np.array([0.0, 0.1, 0.0])}
    soft, hard = vote(scores, "soft"), vote(scores, "hard")
    assert soft.winner == 0 and hard.winner == 1
    assert soft.votes["a"] == pytest.approx(softmax(scores["a"]).tolist(), abs=1e-6)
    assert sum(soft.teacher) == pytest.approx(1.0, abs=1e-5)  # rounded to 6 places
    with pytest.raises(ValueError):
        vote(scores, "loud")


def test_bm25_member_scores_the_positive() -> None:
    member = BM25Member(CORPUS)
    scores = member.score(["aspirin platelets heart", "bread recipe"], CORPUS[0])
    assert scores[0] > scores[1] == 0.0
    assert member.top_k("aspirin heart", 2, {"a"})[0] != "a"


def test_expert_prompt_shape() -> None:
    prompt = expert_prompt("q?", [("ex1", "passage one"), ("ex2", "passage two"), ("ex3", "p3")], 4)
    assert prompt[0]["role"] == "system" and prompt[0]["content"].startswith("Think about a plausible")
    assert [m["role"] for m in prompt[1:]] == ["user", "assistant"] * 3 + ["user"]
    first_example = [{"role": "user", "content": "Query: ex1"}, {"role": "assistant", "content": "pass"}]
    assert prompt[1:3] == first_example
    assert prompt[-1] == {"role": "user", "content": "Query: q?"}


def test_synthesize_picks_the_committee_winner_and_resumes(tmp_path: Path) -> None:
    out = tmp_path / "synth.jsonl"
    members = [BM25Member(CORPUS)]
    with pytest.raises(KeyboardInterrupt):
        synthesize(ITEMS, CORPUS, FakeExpert(fail_after=1), members, out, chunk=1, num_negatives=2)
    assert len(out.read_text().splitlines()) == 1
    with open(out, "a") as handle:
        handle.write('{"query_id": "q2", "query": "torn')  # a kill in the middle of a write
    assert finished_ids(out) == {"q1"} and out.read_text().endswith("\n")
    written = synthesize(ITEMS, CORPUS, FakeExpert(), members, out, chunk=1, num_negatives=2)
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert written == 2 and sorted(r["query_id"] for r in records) == ["q1", "q2", "q3"]
    for record in records:
        assert record["thought"] == record["candidates"][1]  # the on-topic candidate wins
        assert set(record["votes"]) == {"bm25"} and len(record["votes"]["bm25"]) == 3
        assert record["positive_ids"][0] not in record["negative_ids"] and len(record["negatives"]) == 2
    assert synthesize(ITEMS, CORPUS, FakeExpert(), members, out) == 0


def test_load_training_queries(tmp_path: Path, tiny_corpus: Path) -> None:
    items, corpus = load_training_queries(tiny_corpus)
    assert [i.id for i in items] == ["q1"] and items[0].positives[0].id == "d0" and len(corpus) == 40
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text('{"query": "q", "positive": "p"}\n{"query": 1}\n')
    with pytest.raises(DataError, match="pairs.jsonl:2"):
        load_training_queries(pairs)


def test_cli_synth_with_the_tiny_expert(tiny_corpus: Path, tiny_model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "s.jsonl"
    args = [
        "synth",
        str(tiny_corpus),
        "-o",
        str(out),
        "--expert",
        str(tiny_model_dir),
        "--max-new-tokens",
        "4",
        "--negatives",
        "3",
        "--device",
        "cpu",
    ]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    [record] = [json.loads(line) for line in out.read_text().splitlines()]
    assert set(record["votes"]) == {"dense:all-minilm-l6-v2", "bm25"} and len(record["candidates"]) == 3
    again = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert again.exit_code == 0 and "0 new records" in again.output
    bad = CliRunner().invoke(app, [*args, "--vote", "loud"])  # choices and ranges: usage errors
    assert bad.exit_code == 2 and "Invalid value" in bad.output and "--vote" in bad.output
    bad = CliRunner().invoke(app, [*args, "--example-chars", "0"])
    assert bad.exit_code == 2 and "Invalid value" in bad.output and "--example-chars" in bad.output
    bad = CliRunner().invoke(app, [*args, "--answers", "qa.jsonl"])
    assert bad.exit_code == 1 and "qa.jsonl: file not found" in bad.output

    ids_only = tmp_path / "ids.jsonl"
    exported = CliRunner().invoke(app, [*args, "--export-ids", str(ids_only)], env={"COLUMNS": "200"})
    assert exported.exit_code == 0, exported.output
    [slim] = [json.loads(line) for line in ids_only.read_text().splitlines()]
    assert not {"query", "positives", "negatives"} & set(slim)
    assert slim["collection"] == "tinyset" and slim["thought"] == record["thought"]

    from o1_rag.training.data import load_examples

    [joined] = load_examples([ids_only], data_root=tiny_corpus.parent)
    assert {k: joined[k] for k in record} == record  # the texts come back exactly
    with pytest.raises(DataError, match="ids only; set \\[data\\] data_root"):
        load_examples([ids_only])
    with pytest.raises(DataError, match="collection folder .* not found"):
        load_examples([ids_only], data_root=tmp_path / "elsewhere")
    slim["positive_ids"] = ["nope"]
    ids_only.write_text(json.dumps(slim) + "\n")
    with pytest.raises(DataError, match="ids.jsonl:1: document 'nope' not in collection 'tinyset'"):
        load_examples([ids_only], data_root=tiny_corpus.parent)


def _beir(folder: Path, answers: dict[str, str]) -> Path:
    folder.mkdir()
    with open(folder / "corpus.jsonl", "w") as handle:
        for doc in CORPUS:
            handle.write(json.dumps({"_id": doc.id, "title": doc.title, "text": doc.text}) + "\n")
    with open(folder / "queries.jsonl", "w") as handle:
        for item in ITEMS:
            handle.write(json.dumps({"_id": item.id, "text": item.text}) + "\n")
    rows = "".join(f"{item.id}\t{item.positives[0].id}\t1\n" for item in ITEMS)
    (folder / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\n" + rows)
    with open(folder / "qa.jsonl", "w") as handle:
        for qid, answer in answers.items():
            handle.write(json.dumps({"id": qid, "question": "?", "ground_truth": answer}) + "\n")
    return folder


def test_reference_answers_join_the_vote_and_stay_out_of_the_ids_copy(tmp_path: Path) -> None:
    from o1_rag.synthesis.pipeline import export_ids
    from o1_rag.training.data import load_examples

    answers = {
        "q1": "Aspirin inhibits platelets, lowering the risk of a heart attack.",
        "q2": "Insulin lowers blood glucose by moving sugar into cells.",
    }
    folder = _beir(tmp_path / "withqa", answers)
    items, corpus = load_training_queries(folder, answers_file="qa.jsonl")
    assert [i.reference for i in items] == [answers["q1"], answers["q2"], None]
    out = tmp_path / "s.jsonl"
    with pytest.raises(ValueError, match="without a reference answer nothing to vote on"):
        synthesize(items, corpus, FakeExpert(), [BM25Member(corpus)], out, k=1)
    synthesize(items[:2], corpus, FakeExpert(), [BM25Member(corpus)], out, k=1, num_negatives=2)
    records = [json.loads(line) for line in out.read_text().splitlines()]
    for record in records:
        assert record["sources"] == ["expert", "reference"] and len(record["votes"]["bm25"]) == 2
        assert (
            record["thought"] == answers[record["query_id"]] and record["winner"] == 1
        )  # off-topic draft loses

    ids_only = tmp_path / "ids.jsonl"
    with pytest.raises(DataError, match="holds a reference answer; name its answers file"):
        export_ids(out, ids_only, "withqa")
    export_ids(out, ids_only, "withqa", answers_file="qa.jsonl")
    assert not any(text in ids_only.read_text() for text in answers.values())
    joined = load_examples([ids_only], data_root=tmp_path)
    assert [{k: j[k] for k in r} for j, r in zip(joined, records, strict=True)] == records

    (folder / "qa.jsonl").write_text(json.dumps({"id": "q1", "ground_truth": answers["q1"]}) + "\n")
    with pytest.raises(DataError, match="ids.jsonl:2: no answer for query 'q2' in qa.jsonl"):
        load_examples([ids_only], data_root=tmp_path)


def test_answers_file_errors(tmp_path: Path) -> None:
    from o1_rag.data import load_answers

    bad = tmp_path / "qa.jsonl"
    bad.write_text('{"id": "q1", "question": "?"}\n')
    with pytest.raises(DataError, match="qa.jsonl:1: no answer field"):
        load_answers(bad)
    bad.write_text('{"ground_truth": "x"}\n')
    with pytest.raises(DataError, match="qa.jsonl:1: missing field 'id'"):
        load_answers(bad)
    folder = _beir(tmp_path / "nomatch", {"other": "an answer"})
    with pytest.raises(DataError, match="no answer matches a query id of queries.jsonl"):
        load_training_queries(folder, answers_file="qa.jsonl")
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text('{"query": "q", "positive": "p", "answer": "a"}\n')
    [item], _ = load_training_queries(pairs)
    assert item.reference == "a"


def test_finished_ids_reads_records_holding_unicode_line_separators(tmp_path: Path) -> None:
    out = tmp_path / "s.jsonl"
    records = [{"query_id": "q1", "thought": "one\u2028two\x85three"}, {"query_id": "q2", "thought": "x"}]
    out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    assert finished_ids(out) == {"q1", "q2"}


def test_committee_and_expert_factories(tiny_encoder_dir: Path) -> None:
    from o1_rag.synthesis.committee import DenseMember, make_committee
    from o1_rag.synthesis.expert import EndpointExpert, make_expert

    corpus = [Document("d1", "", "aspirin and the heart"), Document("d2", "", "sleep and memory")]
    members, bm25 = make_committee(corpus, [str(tiny_encoder_dir)], device="cpu")
    assert isinstance(members[0], DenseMember) and members[-1] is bm25 and len(members) == 2
    alone, miner = make_committee(corpus, [str(tiny_encoder_dir)], bm25=False, device="cpu")
    assert miner not in alone and len(alone) == 1  # BM25 still mines negatives without a vote
    expert = make_expert("unused-local-name", "http://127.0.0.1:9/v1", "served", concurrency=3)
    assert isinstance(expert, EndpointExpert) and "served" in expert.name


def test_evaluation_llm_factories_pick_the_endpoint() -> None:
    pytest.importorskip("langchain_openai")
    from o1_rag.evaluation.llms import make_llm

    llm = make_llm("served", "http://127.0.0.1:9/v1", 64)
    assert type(llm).__name__ == "ChatOpenAI" and llm.model_name == "served" and llm.max_tokens == 64


def test_ragas_judge_and_embeddings_factories() -> None:
    pytest.importorskip("ragas")
    pytest.importorskip("langchain_openai")
    from o1_rag.evaluation.llms import ragas_embeddings, ragas_judge

    judge = ragas_judge("judge-model", "http://127.0.0.1:9/v1")
    assert judge.langchain_llm.model_name == "judge-model" and judge.langchain_llm.max_tokens == 512
    vectors = ragas_embeddings().embed_documents(["aspirin thins the blood", "sleep and memory"])
    assert len(vectors) == 2 and len(vectors[0]) == 384  # the bundled MiniLM
