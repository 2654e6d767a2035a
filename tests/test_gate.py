"""think="auto": the gate, its file, and the per-query decision in search and evaluation."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from o1_rag.cli import app
from o1_rag.data import load_corpus
from o1_rag.gate import FEATURES, GATE_FILE, GateDecision, GateError, ThinkGate, gate_features, think_choice
from o1_rag.indexing import index_documents
from o1_rag.models import ADAPTERS_DIR
from o1_rag.search import search
from o1_rag.store import O1Collection, open_client


def length_gate(threshold: float = 0.5) -> ThinkGate:
    """Thinks on queries longer than e^2.5 words (about 12): only the length feature counts."""
    coef = [0.0] * len(FEATURES)
    coef[FEATURES.index("log_words")] = 10.0
    return ThinkGate([0.0, 0.0, 0.0, 0.0, 2.5], [1.0] * len(FEATURES), coef, 0.0, threshold)


def test_think_choice() -> None:
    assert [think_choice(v) for v in (True, False, None, "AUTO", " never ")] == [
        "always",
        "never",
        "auto",
        "auto",
        "never",
    ]
    with pytest.raises(ValueError, match="think must be one of auto, always, never"):
        think_choice("sometimes")


def test_features_and_decisions_are_deterministic() -> None:
    top = [0.8, 0.7, 0.65, 0.6]
    x = gate_features("four words in here", top)
    assert x == pytest.approx([0.8, 0.1, 0.8 - np.mean(top), np.std(top), math.log(4)])
    assert gate_features("q", []).tolist() == [0.0, 0.0, 0.0, 0.0, 0.0]
    gate = length_gate()
    short, long = "aspirin", " ".join(["word"] * 20)
    assert not gate.decide(short, top).think and gate.decide(long, top).think
    assert gate.decide(long, top) == gate.decide(long, top)
    assert gate.decide(short, top).describe().startswith("auto: skipped thinking (gate p=")
    assert GateDecision(True, "auto").describe() == "auto: thought (no gate for this thinker and encoder)"
    assert GateDecision(False, "never").describe() == "never: did not think"


def test_gate_file_round_trip_and_errors(tmp_path: Path) -> None:
    gate = length_gate(0.4)
    gate.save(tmp_path / GATE_FILE)
    assert ThinkGate.load(tmp_path / GATE_FILE) == gate
    raw = json.loads((tmp_path / GATE_FILE).read_text())
    for field, value, message in [
        ("coef", [1.0], "must list 5 numbers"),
        ("scale", [0.0] * 5, "'scale' must be positive"),
        ("threshold", 2.0, "threshold must be in"),
        ("mean", [float("nan")] * 5, "not a finite number"),
        ("features", ["other"], "not a gate over the features"),
        ("low", [0.0] * 5, "'low' and 'high' go together"),
        ("surprise", 1, "unexpected keyword"),
    ]:
        (tmp_path / "bad.json").write_text(json.dumps({**raw, field: value}))
        with pytest.raises(GateError, match=message):
            ThinkGate.load(tmp_path / "bad.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(GateError, match="cannot read the gate"):
        ThinkGate.load(tmp_path / "bad.json")


def test_fit_learns_a_separable_rule_and_needs_both_outcomes() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, len(FEATURES)))
    helped = x[:, 0] < 0  # thinking helps when the best hit is weak
    gate = ThinkGate.fit(x, helped)
    assert gate.coef[0] < 0 and gate.scale[0] > 0
    assert gate.low == pytest.approx(x.min(0).tolist()) and gate.high == pytest.approx(x.max(0).tolist())
    with pytest.raises(GateError, match="helped and where it hurt"):
        ThinkGate.fit(x, [True] * 60)


def test_weights_make_large_moves_count_more() -> None:
    """Many small wins where the best hit is strong, few large losses there: unweighted, the gate thinks on
    strong hits; weighted by how far thinking moved the documents, it learns to skip them."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, len(FEATURES)))
    strong = x[:, 0] > 0
    helped = np.where(strong, rng.random(200) < 0.7, rng.random(200) < 0.3)
    moved = np.where(strong & ~helped, 10.0, 1.0)  # on strong hits, the losses are large
    plain, weighted = ThinkGate.fit(x, helped), ThinkGate.fit(x, helped, weights=moved)
    assert plain.coef[0] > 0 > weighted.coef[0]
    for bad in ([1.0] * 3, [-1.0] * 200, [0.0] * 200):
        with pytest.raises(GateError, match="weight"):
            ThinkGate.fit(x, helped, weights=bad)


def test_inputs_are_clipped_to_the_fitted_range(tmp_path: Path) -> None:
    """Outside the range it was fitted on, a gate answers as at the range's edge: a two-word query is
    treated as the shortest training query, not extrapolated."""
    top = [0.8, 0.7, 0.65, 0.6]
    unclipped = length_gate()
    low, high = [-1e9] * len(FEATURES), [1e9] * len(FEATURES)
    low[FEATURES.index("log_words")], high[FEATURES.index("log_words")] = math.log(8), math.log(30)
    clipped = ThinkGate(**{**vars(unclipped), "low": low, "high": high})
    two_words, eight_words = "aspirin dose", " ".join(["word"] * 8)
    assert unclipped.probability(two_words, top) < unclipped.probability(eight_words, top)
    assert clipped.probability(two_words, top) == clipped.probability(eight_words, top)
    assert clipped.probability(" ".join(["w"] * 12), top) == unclipped.probability(" ".join(["w"] * 12), top)
    clipped.save(tmp_path / GATE_FILE)
    assert ThinkGate.load(tmp_path / GATE_FILE) == clipped
    with pytest.raises(GateError, match="'low' must not exceed 'high'"):
        ThinkGate(**{**vars(clipped), "low": high, "high": low})


def test_shipped_gate_loads_with_the_default_model() -> None:
    assert ThinkGate.load(ADAPTERS_DIR / "o1-minilm" / GATE_FILE).trained_on.startswith("scifact-gate")


def test_auto_search_thinks_only_where_the_gate_says(
    tiny_embedder_session, tiny_corpus: Path, tmp_path
) -> None:
    embedder = tiny_embedder_session
    collection = O1Collection.create_or_open(
        open_client(tmp_path / "db"), "tiny", embedder.fingerprint, embedder.dim
    )
    index_documents(embedder, collection, load_corpus(tiny_corpus))
    long_query = (
        "what does the evidence say about aspirin and the health of people who take it daily for years"
    )
    queries = ["aspirin", long_query]
    embedder.gate = length_gate()
    try:
        results = search(embedder, collection, queries, k=3, think="auto", params=None)
        again = search(embedder, collection, queries, k=3, think="auto", params=None)
    finally:
        embedder.gate = None
    assert [r.decision.think for r in results] == [False, True]
    assert results[0].thoughts == [] and results[1].thoughts
    assert [r.decision for r in again] == [r.decision for r in results]
    plain = search(embedder, collection, ["aspirin"], k=3, think="never")[0]
    assert [h.id for h in plain.hits] == [h.id for h in results[0].hits]  # skipped = the query-only search
    assert plain.decision == GateDecision(False, "never")
    no_gate = search(embedder, collection, ["aspirin"], k=3, think="auto")[0]
    assert no_gate.thoughts and no_gate.decision.describe().startswith("auto: thought (no gate")


def test_train_gate_cli_refuses_what_it_cannot_learn_from(
    tiny_corpus: Path, tiny_model_dir: Path, tmp_path
) -> None:
    runner = CliRunner()
    keep = tmp_path / "notes.txt"
    keep.write_text("mine")
    result = runner.invoke(
        app, ["train-gate", str(tiny_corpus), "-o", str(keep), "--model", str(tiny_model_dir)]
    )
    assert result.exit_code != 0 and f"give a path ending in {GATE_FILE}" in result.output
    assert keep.read_text() == "mine"
    result = runner.invoke(
        app,
        [
            "train-gate",
            str(tiny_corpus),
            "-o",
            str(tmp_path / GATE_FILE),
            "--model",
            str(tiny_model_dir),
            "--db",
            str(tmp_path / "db"),
        ],
        env={"COLUMNS": "200"},
    )
    # One judged query cannot show both outcomes (thinking helped somewhere and hurt somewhere).
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "nothing to learn a gate from" in result.output or "helped and where it hurt" in result.output
    assert not (tmp_path / GATE_FILE).exists()


def test_think_bench_measures_auto_against_always(tiny_embedder_session, tmp_path: Path) -> None:
    from o1_rag.evaluation.bench import bench_texts
    from o1_rag.evaluation.bench_think import bench_think

    docs, _ = bench_texts(None, 8, 32)
    embedder = tiny_embedder_session
    embedder.gate = length_gate()
    try:
        rows = bench_think(embedder, docs, ["aspirin", " ".join(["word"] * 20)], tmp_path)
    finally:
        embedder.gate = None
    assert [r.measure.split(" search")[0] for r in rows[:4]] == ["dense", "dense", "hybrid", "hybrid"]
    assert rows[0].target == "<= 0.5x" and rows[0].ratio.endswith("x")
    assert rows[-3].measure.endswith("feedback 3 vs off") and rows[-3].ratio.endswith("x")
    assert rows[-2].measure.startswith("hybrid auto, cache off, per query: all in one search_to_file call")
    assert len((tmp_path / "bulk-run.jsonl").read_text().splitlines()) == 2  # both queries, one call
    assert rows[-1].value == "1 of 2 queries"  # the gate thinks on the long query only


def test_agree_bench_compares_early_stop_with_full_thinking(tiny_embedder_session) -> None:
    from o1_rag.evaluation.bench import bench_texts
    from o1_rag.evaluation.bench_think import bench_agree

    _, queries = bench_texts(None, 8, 32)
    rows = bench_agree(tiny_embedder_session, queries[:4], single=2)
    assert [r.measure for r in rows] == [
        "think 4 queries in one batch: agree 0.95 vs off",
        "think one query (mean of 2): agree 0.95 vs off",
    ]
    with_stop, without = (int(r.split(" s, ")[1].split()[0]) for r in (rows[0].value, rows[0].baseline))
    assert without == 4 * 3 and 4 * 2 <= with_stop <= without  # early stop writes 2 or 3 per query
    assert all(r.ratio.endswith("x") for r in rows)


def test_a_gate_does_not_change_the_index_fingerprint(tiny_adapter_dir: Path, tmp_path: Path) -> None:
    import shutil

    from o1_rag.causal_lm import adapter_checksum

    folder = Path(shutil.copytree(tiny_adapter_dir, tmp_path / "adapter"))
    before = adapter_checksum(folder)
    length_gate().save(folder / GATE_FILE)  # query side only: the same documents, the same index
    assert adapter_checksum(folder) == before
    (folder / "adapter_config.json").write_text((folder / "adapter_config.json").read_text() + " ")
    assert adapter_checksum(folder) != before


def test_eval_frontier_writes_the_plot_and_marks_the_default(
    tiny_corpus: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "frontier"
    result = CliRunner().invoke(
        app,
        [
            "eval",
            "frontier",
            str(tiny_corpus),
            "--thoughts",
            "1",
            "--tokens",
            "2",
            "--latency-queries",
            "1",
            "--model",
            str(tiny_model_dir),
            "--db",
            str(tmp_path / "db"),
            "-o",
            str(out),
        ],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    data = json.loads((out / "results.json").read_text())
    labels = [p["label"] for p in data["points"]]
    assert "never" in labels and "never hybrid" in labels and "always 1x2 hybrid" in labels
    # The model's own budget is always on the grid, and its auto + hybrid point is the marked default.
    assert [p["label"] for p in data["points"] if p["default"]] == ["auto 3x64 hybrid"]
    assert all(0.0 <= p["ndcg"] <= 1.0 and p["mean_ms"] > 0 for p in data["points"])
    assert (out / "frontier.png").stat().st_size > 0 and "frontier.png" in (out / "report.md").read_text()
    bad = CliRunner().invoke(app, ["eval", "frontier", str(tiny_corpus), "--thoughts", "one"])
    assert bad.exit_code != 0 and "--thoughts takes whole numbers" in bad.output


def test_gate_check_script_compares_gates_with_chance(
    tiny_corpus: Path, tiny_model_dir: Path, tmp_path: Path, capsys
) -> None:
    """``train/gate_check.py`` prints one row per gate: share thinking, gain kept, chance at that share."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "gate_check", Path(__file__).parents[1] / "train" / "gate_check.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    length_gate().save(tmp_path / GATE_FILE)
    gate = str(tmp_path / GATE_FILE)
    code = module.main([str(tiny_corpus), "--gate", gate, "--model", str(tiny_model_dir)])
    printed = capsys.readouterr().out
    assert code == 0
    assert "always thinking: mean gain" in printed
    [row] = [line for line in printed.splitlines() if line.startswith(f"| {gate} |")]
    cells = [c.strip() for c in row.strip("|").split("|")]
    always = float(printed.split("mean gain ")[1].split()[0])
    share = float(cells[1].rstrip("%")) / 100
    assert len(cells) == 5 and float(cells[3]) == pytest.approx(always * share, abs=1e-4)
    assert float(cells[2]) == pytest.approx(always if share == 1 else 0.0, abs=1e-4) or 0 < share < 1
    assert module.main([str(tiny_corpus), "--gate", str(tmp_path / "missing.json")]) == 2


@pytest.mark.parametrize("exact", [False, True])
def test_evaluation_auto_ranks_as_the_query_pipeline(
    tiny_model_dir: Path, tiny_corpus: Path, tmp_path, exact
) -> None:
    """``o1-auto`` and ``o1-auto-hybrid`` (with feedback) in an evaluation think on the queries the gate
    picks and rank as ``search`` does with the same embedder, collection and BM25 index."""
    from o1_rag.evaluation.baselines import HybridSystem
    from o1_rag.evaluation.context import EvalContext, EvalSettings
    from o1_rag.evaluation.data import load_collection
    from o1_rag.evaluation.o1_system import O1System
    from o1_rag.lexical import LexicalIndex

    settings = EvalSettings(
        model=str(tiny_model_dir),
        device="cpu",
        precision="float32",
        db=str(tmp_path / "db"),
        exact=exact,
        num_thoughts=2,
        max_new_tokens=4,
    )
    context = EvalContext.create(settings)
    embedder = context.models.embedder(settings.model)
    embedder.gate = length_gate()
    corpus, _, _ = load_collection(tiny_corpus)
    long_query = (
        "what does the evidence say about aspirin and the health of people who take it daily for years"
    )
    queries = {"short": "aspirin", "long": long_query}
    system = O1System("auto", context)
    ranking = system.retrieve(corpus, queries, k=5)
    assert {q: d.think for q, d in system.decisions.items()} == {"short": False, "long": True}
    assert "thought on 1 of 2 queries" in system.note
    collection = system.index(embedder, corpus)
    params = settings.think_params()
    results = search(embedder, collection, list(queries.values()), k=5, think="auto", params=params)
    assert [list(ranking[q]) for q in queries] == [[h.id for h in r.hits] for r in results]
    hybrid = HybridSystem("o1-auto-hybrid", O1System("auto", context), feedback=2)
    fused = hybrid.retrieve(corpus, queries, k=5)
    lexical = LexicalIndex.build([d.id for d in corpus], [d.full_text() for d in corpus])
    piped = search(
        embedder, collection, list(queries.values()), k=5, params=params, lexical=lexical, feedback=2
    )
    assert [list(fused[q]) for q in queries] == [[h.id for h in r.hits] for r in piped]
