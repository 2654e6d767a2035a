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
    assert member.top_k("aspirin heart", 2, {"a"}, [d.id for d in CORPUS])[0] != "a"


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
    bad = CliRunner().invoke(app, [*args, "--vote", "loud"])
    assert bad.exit_code == 1 and "--vote must be soft or hard" in bad.output
    bad = CliRunner().invoke(app, [*args, "--example-chars", "0"])
    assert bad.exit_code == 1 and "--example-chars must be >= 1" in bad.output

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
