import json
import math
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from o1_rag.cli import app
from o1_rag.data import DataError
from o1_rag.evaluation.data import load_collection
from o1_rag.evaluation.metrics import score_runs
from o1_rag.evaluation.report import write_folder
from o1_rag.evaluation.summary import SummaryError, summarize
from o1_rag.evaluation.systems import (
    BM25System,
    DenseSystem,
    EvalSettings,
    HydeSystem,
    O1System,
    UnknownSystemError,
    build_system,
    parse_systems,
)


def test_metrics_match_hand_computation() -> None:
    qrels = {"q1": {"d1": 1}, "q2": {"d2": 1}, "q3": {"d3": 1}}
    run_a = {"q1": {"d1": 3.0, "x": 2.0}, "q2": {"x": 3.0, "d2": 2.0}, "q3": {"x": 1.0}}
    run_b = {"q1": {"x": 3.0, "d1": 2.0}, "q2": {"d2": 1.0}, "q3": {"d3": 1.0}}
    scores, per_query, p_values, wtl = score_runs(qrels, {"a": run_a, "b": run_b}, baseline="a")
    inv = 1 / math.log2(3)
    assert per_query["a"]["ndcg@10"] == pytest.approx({"q1": 1.0, "q2": inv, "q3": 0.0})
    assert scores["a"]["ndcg@10"] == pytest.approx((1 + inv) / 3)
    assert scores["a"]["mrr@10"] == pytest.approx(0.5)
    assert scores["a"]["recall@100"] == pytest.approx(2 / 3)
    assert scores["b"]["mrr@10"] == pytest.approx((0.5 + 1 + 1) / 3)
    assert wtl["b"]["ndcg@10"] == {"W": 2, "T": 0, "L": 1}
    assert 0.0 < p_values["b"]["ndcg@10"] <= 1.0 and "a" not in p_values


def test_system_registry() -> None:
    settings = EvalSettings()
    assert isinstance(build_system("bm25", settings), BM25System)
    assert isinstance(build_system("o1", settings), O1System) and build_system("o1", settings).think
    assert not build_system("o1-nothink", settings).think
    assert parse_systems(" bm25, o1 ,dense:some/model") == ["bm25", "o1", "dense:some/model"]
    mix = build_system("o1-mix", settings)
    assert mix.think and mix.query_weight == 0.5 and mix.name == "o1-mix"
    assert build_system("o1-mix:0.3", settings).name == "o1-mix:0.3"
    chat = build_system("o1-chat", settings)
    assert chat.think and chat.think_mode == "chat" and chat.name == "o1-chat"
    assert build_system("o1-native", settings).think_mode == "native"
    assert parse_systems("o1,o1-mix,o1-mix:0.2") == ["o1", "o1-mix", "o1-mix:0.2"]
    assert build_system("o1", settings).query_weight is None  # the model's own default weight
    pure = build_system("o1-mix:0", settings)
    assert pure.query_weight == 0.0 and pure.name == "o1-mix:0"
    for bad in [
        "bm42",
        "bm25:x",
        "",
        "bm25,bm25",
        "o1:x",
        "o1-mix:2",
        "o1-mix:abc",
        "o1-mix:-1",
        "o1-chat:1",
        "bm25+dense:x",
        "o1-hybrid:x",
    ]:
        with pytest.raises(UnknownSystemError):
            parse_systems(bad)
    assert issubclass(HydeSystem, DenseSystem)
    hybrid = build_system("o1-hybrid", settings)
    assert hybrid.name == "o1-hybrid" and hybrid.dense.think
    assert not build_system("o1-nothink-hybrid", settings).dense.think
    assert isinstance(build_system("bm25+dense", settings).dense, DenseSystem)


def test_hybrid_fuses_both_sides(tiny_corpus: Path) -> None:
    corpus, _, _ = load_collection(tiny_corpus)
    settings = EvalSettings(device="cpu")
    queries = {"q": "aspirin study", "r": "coffee"}
    fused = build_system("bm25+dense", settings).retrieve(corpus, queries, k=5)
    dense = DenseSystem("all-minilm-l6-v2", settings).retrieve(corpus, queries, k=40)
    lexical = BM25System().retrieve(corpus, queries, k=40)
    for qid in queries:
        assert len(fused[qid]) == 5
        # Every fused hit comes from one of the sides, and the fused top hit is high on both.
        assert set(fused[qid]) <= set(dense[qid]) | set(lexical[qid])
        top = next(iter(fused[qid]))
        assert list(dense[qid]).index(top) < 10 and (top in lexical[qid] or qid == "r")


def test_bm25_ranks_the_matching_documents(tiny_corpus: Path) -> None:
    corpus, _, _ = load_collection(tiny_corpus)
    ranking = BM25System().retrieve(corpus, {"q": "aspirin study"}, k=5)
    top = list(ranking["q"])
    assert len(top) == 5 and all(doc in {f"d{i}" for i in range(0, 40, 8)} for doc in top)


def test_dense_with_the_bundled_minilm(tiny_corpus: Path) -> None:
    corpus, _, _ = load_collection(tiny_corpus)
    system = DenseSystem("all-minilm-l6-v2", EvalSettings(device="cpu"))
    ranking = system.retrieve(corpus, {"q": "coffee"}, k=3)
    assert all(corpus[int(d[1:])].title.startswith("coffee") for d in ranking["q"])
    again = system.retrieve(corpus, {"q": "coffee"}, k=3)  # cached corpus vectors give the same ranking
    assert list(again["q"]) == list(ranking["q"])


def test_collection_errors(tiny_corpus: Path) -> None:
    (tiny_corpus / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\nq1\tnope\t1\n")
    with pytest.raises(DataError, match="document ids not in corpus.jsonl"):
        load_collection(tiny_corpus)
    (tiny_corpus / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\nq9\td1\t1\n")
    with pytest.raises(DataError, match="query ids not in queries.jsonl"):
        load_collection(tiny_corpus)
    (tiny_corpus / "queries.jsonl").unlink()
    with pytest.raises(DataError, match="queries.jsonl: file not found"):
        load_collection(tiny_corpus)


def test_report_folder_is_atomic(tmp_path: Path) -> None:
    target = tmp_path / "report"

    def good(folder: Path) -> None:  # a report: report.md + results.json (+ plots)
        (folder / "report.md").write_text("v1")
        (folder / "results.json").write_text("{}")

    def broken(folder: Path) -> None:
        (folder / "report.md").write_text("half")
        raise RuntimeError("crash while writing")

    with pytest.raises(RuntimeError):
        write_folder(target, broken)
    assert not target.exists() and list(tmp_path.iterdir()) == []
    write_folder(target, good)
    with pytest.raises(RuntimeError):
        write_folder(target, broken)
    assert (target / "report.md").read_text() == "v1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]


def test_cli_eval_ir_end_to_end(tiny_corpus: Path, tiny_model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "rep"
    result = CliRunner().invoke(
        app,
        [
            "eval",
            "ir",
            str(tiny_corpus),
            "--systems",
            "bm25,o1-nothink,o1,o1-native",
            "--model",
            str(tiny_model_dir),
            "--max-new-tokens",
            "4",
            "-n",
            "2",
            "--temperature",
            "0.7",
            "--db",
            str(tmp_path / "db"),
            "-o",
            str(out),
            "--exact",
        ],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    data = json.loads((out / "results.json").read_text())
    # the report says how the thoughts were sampled, the model's defaults filled in
    said = "2 thoughts of at most 4 tokens at temperature 0.7 (top-p 0.9, seed 0), query weight"
    assert data["notes"]["o1"].startswith(said) and "o1-nothink" not in data["notes"]
    assert data["notes"]["o1"].endswith(", thinker weights float32")  # the joint model thinks as it encodes
    assert data["systems"] == ["bm25", "o1-nothink", "o1", "o1-native"] and data["num_queries"] == 1
    assert set(data["scores"]["o1"]) == {"ndcg@10", "recall@100", "mrr@10"}
    assert len(data["examples"]["o1"]["q1"]) == 2 and len(data["examples"]["o1-native"]["q1"]) == 2
    import chromadb

    # the think mode changes the queries only: every O1 system searched one document collection
    assert len(chromadb.PersistentClient(path=str(tmp_path / "db")).list_collections()) == 1
    assert (out / "metrics.png").stat().st_size > 0 and (out / "win_loss.png").stat().st_size > 0
    assert "o1rag eval ir" in (out / "report.md").read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--systems", "bm25,nope"], "unknown system 'nope'"),
        (["--systems", "bm25", "--baseline", "dense"], "baseline 'dense' is not among"),
    ],
)
def test_cli_eval_ir_bad_input(tiny_corpus: Path, tmp_path: Path, args: list[str], message: str) -> None:
    out = tmp_path / "rep"
    result = CliRunner().invoke(
        app, ["eval", "ir", str(tiny_corpus), *args, "-o", str(out)], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 1 and message in result.output and "Traceback" not in result.output
    assert not out.exists()


def test_cli_ranges_are_usage_errors(tiny_corpus: Path, tmp_path: Path) -> None:
    """A count below its range stops at the command line (exit 2), naming the option, before any work."""
    out = tmp_path / "rep"
    for command in (
        ["eval", "ir", str(tiny_corpus), "--limit-queries", "0", "-o", str(out)],
        ["eval", "rag", str(tiny_corpus), "--limit", "0", "-o", str(out)],
        ["eval", "rag", str(tiny_corpus), "--timeout", "0", "-o", str(out)],
    ):
        result = CliRunner().invoke(app, command, env={"COLUMNS": "200"})
        assert result.exit_code == 2 and f"'{command[3]}'" in result.output, result.output
        assert "Traceback" not in result.output and not out.exists()


def test_bench_runs_on_the_tiny_model(tiny_model_dir: Path) -> None:
    """The benchmark code path works end to end (its numbers are for idle machines, not asserted here)."""
    result = CliRunner().invoke(
        app,
        ["bench", "--model", str(tiny_model_dir), "--docs", "8", "--max-new-tokens", "2", "--device", "cpu"],
        env={"COLUMNS": "250"},
    )
    assert result.exit_code == 0, result.output
    for measure in ("index docs/s", "think 32 queries", "warm cache", "batched query"):
        assert measure in result.output
    bad = CliRunner().invoke(app, ["bench", "--suites", "gpu", "--model", str(tiny_model_dir)])
    assert bad.exit_code == 1 and "unknown benchmark suite 'gpu'" in bad.output
    moved = CliRunner().invoke(app, ["bench", "--suites", "langchain", "--model", str(tiny_model_dir)])
    assert moved.exit_code == 1 and "integrations/langchain/benchmarks/concurrency.py" in moved.output


def test_lexical_bench_needs_no_model() -> None:
    """The lexical suite times the BM25 side's rebuilds without loading an embedder (a model that does
    not exist is never opened); its numbers are for idle machines, not asserted."""
    result = CliRunner().invoke(
        app,
        ["bench", "--suites", "lexical", "--docs", "40", "--model", "no-such-model"],
        env={"COLUMNS": "250"},
    )
    assert result.exit_code == 0, result.output
    assert "o1rag bench: BM25 side rebuild, 40 docs" in result.output
    assert "first build" in result.output and "saved tokens vs tokenizing every text" in result.output
    assert re.search(r"\d+\.\d\dx faster", result.output)


def test_training_bench_joint_forward_keeps_less_for_backward(tiny_model_dir: Path) -> None:
    """One joint forward saves fewer activations than separate LM / embedding / query-only passes."""
    from o1_rag.evaluation.bench import bench_texts
    from o1_rag.evaluation.bench_scale import bench_training

    docs, queries = bench_texts(None, 8, 32)
    rows = {
        row.measure.split(" (")[0].split(",")[0]: row
        for row in bench_training(str(tiny_model_dir), queries, docs, "cpu", reps=1)
    }
    memory = rows["query side activation memory saved for backward"]
    assert 0 < float(memory.value) < float(memory.baseline)
    assert float(rows["training step"].value) > 0


def _fake_report(folder: Path, dataset: str, per_query: dict[str, dict[str, float]]) -> Path:
    folder.mkdir()
    scores = {s: {"ndcg@10": sum(v.values()) / len(v)} for s, v in per_query.items()}
    result = {
        "dataset": dataset,
        "systems": list(per_query),
        "num_queries": len(next(iter(per_query.values()))),
        "num_docs": 10,
        "scores": scores,
        "per_query": {s: {"ndcg@10": v} for s, v in per_query.items()},
    }
    (folder / "results.json").write_text(json.dumps(result))
    return folder


def test_table_of_several_reports_with_a_paired_comparison(tmp_path: Path) -> None:
    one = _fake_report(tmp_path / "one", "alpha", {"a": {"q1": 0.5, "q2": 1.0}, "b": {"q1": 0.25, "q2": 1.0}})
    two = _fake_report(tmp_path / "two", "beta", {"b": {"x": 0.75}, "a": {"x": 0.5}, "c": {"x": 0.1}})
    summary = summarize([one, two], compare=("a", "b"))
    assert summary.systems == ["a", "b"]  # the systems every report has, in the first one's order
    assert summary.averages() == {"a": (0.75 + 0.5) / 2, "b": (0.625 + 0.75) / 2}
    c = summary.comparison
    assert (c.queries, c.wins, c.ties, c.losses, c.collections_won) == (3, 1, 1, 1, 1)
    assert c.mean_difference == pytest.approx((0.25 + 0.0 - 0.25) / 3)
    table = summary.markdown()
    assert "| alpha | 2 | 10 | 0.750 | 0.625 |" in table and "| average (2) |  |  | 0.625 | 0.688 |" in table
    with pytest.raises(SummaryError, match="no system 'c'"):
        summarize([one, two], systems=["a", "c"])
    with pytest.raises(SummaryError, match="no results.json"):
        summarize([tmp_path])
    runner = CliRunner()
    ok = runner.invoke(app, ["eval", "table", str(one), str(two), "--compare", "a,b"])
    assert ok.exit_code == 0 and "a vs b (ndcg@10, 3 queries of 2 collections)" in ok.output
    bad = runner.invoke(app, ["eval", "table", str(one), "--compare", "a"])
    assert bad.exit_code == 1 and "--compare needs two systems" in bad.output


def test_table_compares_a_system_against_other_reports(tmp_path: Path) -> None:
    one = _fake_report(tmp_path / "one", "alpha", {"a": {"q1": 0.5, "q2": 1.0}})
    two = _fake_report(tmp_path / "two", "beta", {"a": {"x": 0.5}})
    one_b = _fake_report(
        tmp_path / "one-b", "alpha", {"a": {"q1": 0.25, "q2": 1.0}, "z": {"q1": 0.0, "q2": 0.0}}
    )
    two_b = _fake_report(tmp_path / "two-b", "beta", {"a": {"x": 0.75}})
    c = summarize([one, two], compare=("a", "a"), against=[one_b, two_b]).comparison
    assert (c.queries, c.wins, c.ties, c.losses, c.collections_won) == (3, 1, 1, 1, 1)
    assert c.b == "a of the --against reports"
    with pytest.raises(SummaryError, match="one report per report folder: 2 and 1"):
        summarize([one, two], compare=("a", "a"), against=[one_b])
    with pytest.raises(SummaryError, match="collection 'beta', not 'alpha'"):
        summarize([one, two], compare=("a", "a"), against=[two_b, one_b])
    with pytest.raises(SummaryError, match="no system 'z'"):
        summarize([one, two], compare=("a", "z"), against=[one_b, two_b])
    with pytest.raises(SummaryError, match="--against needs --compare"):
        summarize([one, two], against=[one_b, two_b])
    args = ["eval", "table", str(one), str(two), "--against", str(one_b), "--against", str(two_b)]
    ok = CliRunner().invoke(app, [*args, "--compare", "a,a"])
    assert ok.exit_code == 0 and "a vs a of the --against reports (ndcg@10, 3 queries" in ok.output, ok.output


def test_eval_output_never_deletes_a_users_files(tiny_corpus: Path, tmp_path: Path) -> None:
    folder = tmp_path / "thesis"
    (folder / "sub").mkdir(parents=True)
    (folder / "thesis.txt").write_text("keep")

    def run(output: Path) -> Any:
        args = ["eval", "ir", str(tiny_corpus), "--systems", "bm25", "-o", str(output)]
        return CliRunner().invoke(app, args, env={"COLUMNS": "200"})

    refused = run(folder)
    assert refused.exit_code == 1 and "not an earlier report" in refused.output
    assert (folder / "thesis.txt").read_text() == "keep" and (folder / "sub").is_dir()
    report = tmp_path / "report"
    assert run(report).exit_code == 0
    assert oct(report.stat().st_mode & 0o777) != oct(0o700)  # the usual permissions, not mkdtemp's
    again = run(report)  # an earlier report is replaced
    assert again.exit_code == 0 and {p.name for p in report.iterdir()} >= {"results.json", "report.md"}
    (tmp_path / "file").write_text("x")
    assert "not a folder" in run(tmp_path / "file").output


def test_o1_system_notes_thoughts_written_under_early_stop() -> None:
    from o1_rag.evaluation.systems import EvalSettings, O1System

    system = O1System(True, EvalSettings(agree=0.95))
    assert system.note == ""
    system.thoughts.update({"q1": ["a", "b"], "q2": ["a", "b", "c"]})
    assert system.note == "5 thoughts for 2 queries (early stop at agree 0.95)"
    assert O1System(True, EvalSettings()).note == ""


def test_report_says_when_a_query_did_not_think(tmp_path: Path) -> None:
    from o1_rag.evaluation.ir import IRResult
    from o1_rag.evaluation.report import write_ir_report

    per_query = {m: {"q1": 1.0, "q2": 0.5} for m in ("ndcg@10", "recall@100", "mrr@10")}
    result = IRResult(
        dataset="tiny",
        systems=["o1-auto"],
        baseline="o1-auto",
        num_queries=2,
        num_docs=3,
        scores={"o1-auto": {m: 0.75 for m in per_query}},
        per_query={"o1-auto": per_query},
        p_values={},
        win_tie_loss={},
        seconds={"o1-auto": 1.0},
        examples={"o1-auto": {"q1": ["aspirin thins the blood\nand more"], "q2": None}},
        notes={"o1-auto": "thought on 1 of 2 queries"},
    )
    report = (write_ir_report(result, tmp_path / "report", "o1rag eval ir tiny") / "report.md").read_text()
    assert "- `q1`: aspirin thins the blood and more\n" in report
    assert "- `q2`: (no thoughts: it did not think)\n" in report


def test_run_files_are_scored_by_rank_over_every_judged_query(tmp_path: Path) -> None:
    """A run file of ``o1rag search --queries``: the file's ranks decide (not its scores, which MMR leaves
    out of order), a judged query the run lacks scores 0, and the first run is the baseline."""
    from o1_rag.evaluation.run_files import read_run_file, score_run_files

    data = tmp_path / "set"
    data.mkdir()
    (data / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td0\t1\nq2\td5\t1\n")

    def write(name: str, records: list[dict]) -> Path:
        path = tmp_path / f"{name}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
        return path

    hits = [{"rank": 1, "id": "d3", "score": 0.1}, {"rank": 2, "id": "d0", "score": 0.9}]
    second = write("second", [{"query_id": "q1", "hits": hits}, {"query_id": "q9", "hits": []}])
    first = write(
        "first",
        [{"query_id": "q1", "hits": [hits[1]]}, {"query_id": "q2", "hits": [{"rank": 1, "id": "d5"}]}],
    )
    assert read_run_file(second) == {"q1": {"d3": 1.0, "d0": 0.5}, "q9": {}}
    found = score_run_files([first, second], data)
    assert found.names == ["first", "second"] and found.judged == 2
    assert found.covered == {"first": 2, "second": 1}
    assert found.scores["first"]["mrr@10"] == pytest.approx(1.0)
    assert found.scores["second"]["mrr@10"] == pytest.approx(0.25)  # d0 at rank 2 for q1; q2 missing: 0
    assert found.scores["second"]["ndcg@10"] == pytest.approx((1 / math.log2(3)) / 2)
    assert set(found.p_values) == {"second"}
    assert json.loads(found.to_json())["runs"]["second"]["queries"] == 1
    unjudged = write("unjudged", [{"query_id": "x", "hits": hits}])
    with pytest.raises(DataError, match="none of its query ids is judged"):
        score_run_files([unjudged], data)
    twice = write("twice", [{"query_id": "q1", "hits": hits}, {"query_id": "q1", "hits": hits}])
    with pytest.raises(DataError, match="twice.jsonl:2: query 'q1' appears twice"):
        read_run_file(twice)
    trec = tmp_path / "other-toolkit.run"  # the same ranking as `second`, written by another toolkit
    trec.write_text("q1 Q0 d3 1 12.5 bm25\nq1 Q0 d0 2 11.0 bm25\n\nq9 Q0 d7 1 3.0 bm25\n")
    assert read_run_file(trec) == {"q1": {"d3": 1.0, "d0": 0.5}, "q9": {"d7": 1.0}}
    mixed = score_run_files([second, trec], data)
    assert mixed.scores["other-toolkit"] == pytest.approx(mixed.scores["second"])
    for body, message in [
        ("q1 Q0 d3 x 1 t\n", "not a TREC run line"),
        ("q1 Q0 d3 1 1 t\nq1 Q0 d3 2 1 t\n", "appears twice"),
    ]:
        trec.write_text(body)
        with pytest.raises(DataError, match=message):
            read_run_file(trec)
    broken = write("broken", [{"query_id": "q1", "hits": [{"id": "d1"}]}])
    with pytest.raises(DataError, match="broken.jsonl:1: not a search record"):
        read_run_file(broken)


def test_thought_sampling_script_tables_temperatures_and_weights(
    tiny_model_dir: Path, tiny_corpus: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """``evals/thought_sampling.py`` writes one row per temperature with a score per query weight, and the
    thoughts it samples are stored in the thought cache; a slice with no query is a usage error."""
    import runpy
    import sys

    from o1_rag.cache import ThoughtCache

    script = Path(__file__).resolve().parents[1] / "evals" / "thought_sampling.py"
    argv = [str(script), str(tiny_corpus), "--model", str(tiny_model_dir), "--temperatures", "0.1,1.0"]
    argv += ["--weights", "0,0.5", "--num-thoughts", "2", "--max-new-tokens", "3"]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as done:
        runpy.run_path(str(script), run_name="__main__")
    assert done.value.code == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if re.match(r"\| (0\.1|1\.0) \|", line)]
    assert len(rows) == 2
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert 1 <= float(cells[1]) <= 2 and len(cells) == 4
        assert all(re.fullmatch(r"\d\.\d{4} \(p = .+\)", c) for c in cells[2:])
    stored = len(ThoughtCache())
    assert stored == 2  # one query, two temperatures
    monkeypatch.setattr(sys, "argv", [*argv[:4], "--queries", "5:"])
    with pytest.raises(SystemExit) as done:
        runpy.run_path(str(script), run_name="__main__")
    assert done.value.code == 2 and "selects no query" in capsys.readouterr().err
