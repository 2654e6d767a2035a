import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from o1_rag.cli import app

runner = CliRunner()


def _invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})


def _usage_error(result, option: str) -> None:
    """A value outside an option's declared range or choices: the parser's usage error (exit 2)."""
    assert result.exit_code == 2, result.output
    assert "Invalid value" in result.output and option in result.output, result.output
    assert "Traceback" not in result.output


def _one_line_error(result, fragment: str) -> None:
    assert result.exit_code == 1, result.output
    text = result.output.strip()
    assert text.startswith("error:") and fragment in text, text
    assert "Traceback" not in text
    assert len(text.splitlines()) <= 3  # one message (rich may wrap a long line)


@pytest.fixture
def indexed(tmp_path: Path, tiny_corpus: Path, tiny_model_dir: Path) -> dict[str, str]:
    db = tmp_path / "db"
    result = _invoke("index", tiny_corpus, "-c", "tiny", "--db", db, "--model", tiny_model_dir)
    assert result.exit_code == 0, result.output
    assert "40 documents" in result.output and "40 added" in result.output
    return {"db": str(db), "model": str(tiny_model_dir)}


def test_index_then_search_with_thoughts(indexed: dict[str, str]) -> None:
    result = _invoke(
        "search",
        "does aspirin help?",
        "-c",
        "tiny",
        "--db",
        indexed["db"],
        "--model",
        indexed["model"],
        "-k",
        "3",
        "--show-thoughts",
        "-n",
        "2",
        "--max-new-tokens",
        "4",
    )
    assert result.exit_code == 0, result.output
    assert result.output.count("\nthought ") == 2 and "fused" in result.output and "bm25" in result.output
    assert "thinking: auto: thought (no gate" in result.output  # the decision is shown
    # another think mode searches the same index (the mode changes the query side only)
    native = _invoke(
        "search",
        "aspirin",
        "-c",
        "tiny",
        "--db",
        indexed["db"],
        "--model",
        indexed["model"],
        "--think-mode",
        "native",
        "-n",
        "1",
        "--max-new-tokens",
        "4",
        "--json",
    )
    assert native.exit_code == 0, native.output
    assert len(json.loads(native.output)["thoughts"]) == 1


def test_hybrid_search_uses_the_bm25_index_built_by_index(indexed: dict[str, str]) -> None:
    lexical = Path(indexed["db"]) / "o1rag-lexical" / "tiny"
    assert (lexical / "o1rag_lexical.json").is_file()  # built by `o1rag index`
    common = ["-c", "tiny", "--db", indexed["db"], "--model", indexed["model"], "--no-think", "--json"]
    hybrid = json.loads(_invoke("search", "aspirin study", *common, "-k", "5").output)
    assert hybrid["hybrid"] is True
    assert all(h["lexical_score"] is not None for h in hybrid["hits"][:3])  # every aspirin doc matches
    dense = json.loads(_invoke("search", "aspirin study", *common, "-k", "5", "--no-hybrid").output)
    assert dense["hybrid"] is False and all(h["lexical_score"] is None for h in dense["hits"])
    assert all(h["score"] == h["dense_score"] for h in dense["hits"])
    moved = json.loads(_invoke("search", "aspirin study", *common, "-k", "5", "--feedback", "3").output)
    assert (hybrid["feedback"], moved["feedback"], dense["feedback"]) == (0, 3, 0)
    assert {h["id"] for h in moved["hits"][:3]} == {h["id"] for h in hybrid["hits"][:3]}  # all match aspirin
    _usage_error(_invoke("search", "aspirin study", *common, "--feedback", "-1"), "--feedback")
    # A missing BM25 index (e.g. a collection indexed with --no-lexical) is rebuilt from Chroma.
    shutil.rmtree(lexical)
    again = json.loads(_invoke("search", "aspirin study", *common, "-k", "5").output)
    assert [h["id"] for h in again["hits"]] == [h["id"] for h in hybrid["hits"]]


def test_search_mmr_and_min_score(indexed: dict[str, str]) -> None:
    common = ["-c", "tiny", "--db", indexed["db"], "--model", indexed["model"], "--no-think", "--json"]
    plain = json.loads(_invoke("search", "aspirin study", *common, "-k", "5", "--fetch-k", "12").output)
    assert (plain["mmr"], plain["fetch_k"], plain["min_score"]) == (None, None, None)
    same = json.loads(_invoke("search", "aspirin study", *common, "-k", "5", "--mmr", "1").output)
    assert [h["id"] for h in same["hits"]] == [h["id"] for h in plain["hits"]]  # relevance only
    varied = json.loads(_invoke("search", "aspirin study", *common, "-k", "5", "--mmr", "0").output)
    assert (varied["mmr"], varied["fetch_k"]) == (0.0, 20)
    assert varied["hits"][0]["id"] == plain["hits"][0]["id"] and len(varied["hits"]) == 5
    assert [h["id"] for h in varied["hits"]] != [h["id"] for h in plain["hits"]]
    dense = json.loads(_invoke("search", "aspirin study", *common, "-k", "10", "--no-hybrid").output)
    bar = dense["hits"][2]["score"] - 1e-5  # clear of the rounding between Chroma's score and the cosine
    kept = json.loads(
        _invoke("search", "aspirin study", *common, "-k", "10", "--no-hybrid", "--min-score", str(bar)).output
    )
    assert [h["id"] for h in kept["hits"]] == [h["id"] for h in dense["hits"] if h["score"] >= bar]
    assert 3 <= len(kept["hits"]) < 10
    _usage_error(_invoke("search", "aspirin study", *common, "--mmr", "1.5"), "--mmr")
    _usage_error(_invoke("search", "aspirin study", *common, "--min-score", "2"), "--min-score")


def test_search_interactive_loads_once_and_answers_each_line(indexed: dict[str, str]) -> None:
    """``-i``: each non-empty line of standard input is one search, printed as the same JSON a one-query
    ``--json`` search gives; the end of input ends the command cleanly."""
    common = ["-c", "tiny", "--db", indexed["db"], "--model", indexed["model"], "--no-think", "-k", "3"]
    result = runner.invoke(
        app, ["search", "-i", "--json", *common], input="aspirin study\n\n   \ncoffee and sleep\n"
    )
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["query"] for line in lines] == ["aspirin study", "coffee and sleep"]
    for line in lines:
        alone = json.loads(_invoke("search", line["query"], "--json", *common).output)
        assert [h["id"] for h in line["hits"]] == [h["id"] for h in alone["hits"]]
    tables = runner.invoke(app, ["search", "-i", *common], input="aspirin study\ninsulin\n")
    assert tables.exit_code == 0 and tables.stdout.count("tiny: ") == 2, tables.output
    assert "query>" not in tables.output  # no prompt when standard input is not a terminal
    _one_line_error(_invoke("search", "aspirin", "-i", *common), "--interactive (one of them)")


def test_search_a_file_of_queries_resumes(indexed: dict[str, str], tmp_path: Path, tiny_corpus: Path) -> None:
    """``--queries``: each record is what one ``--json`` search gives; a run killed mid-write resumes with
    the missing queries only."""
    queries = ["aspirin study", "coffee and sleep", "insulin", "statins", "zebrafish heart"]
    (tmp_path / "q.txt").write_text("\n".join(queries) + "\n")
    out = tmp_path / "run.jsonl"
    common = ["-c", "tiny", "--db", indexed["db"], "--model", indexed["model"], "-k", "4"]
    common += ["-n", "1", "--max-new-tokens", "4", "--think", "always"]
    result = _invoke("search", "--queries", tmp_path / "q.txt", "-o", out, *common)
    assert result.exit_code == 0, result.output
    assert "5 queries searched (0 already there), thought on 5 of 5" in result.output
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["query_id"] for r in records] == ["1", "2", "3", "4", "5"]
    for query, record in zip(queries, records, strict=True):
        one = json.loads(_invoke("search", query, *common, "--json").output)
        assert record["query"] == query and record["thoughts"] == one["thoughts"]  # cached thoughts
        assert [h["id"] for h in record["hits"]] == [h["id"] for h in one["hits"]]
        assert record["hits"][0]["text"] == one["hits"][0]["text"]
    # killed while writing the third record: two whole lines and a torn one
    lines = out.read_text().splitlines(keepends=True)
    out.write_text("".join(lines[:2]) + lines[2][:30])
    again = _invoke("search", "--queries", tmp_path / "q.txt", "-o", out, *common)
    assert "3 queries searched (2 already there)" in again.output, again.output
    assert [json.loads(line)["query_id"] for line in out.read_text().splitlines()] == [
        "1",
        "2",
        "3",
        "4",
        "5",
    ]
    done = _invoke("search", "--queries", tmp_path / "q.txt", "-o", out, *common)
    assert "0 queries searched (5 already there)" in done.output
    slim = tmp_path / "slim.jsonl"
    _invoke("search", "--queries", tmp_path / "q.txt", "-o", slim, "--ids-only", *common)
    assert all("text" not in h for line in slim.read_text().splitlines() for h in json.loads(line)["hits"])
    # a BEIR folder's queries, scored against its judgements by `eval runs`
    judged = tmp_path / "judged.jsonl"
    assert _invoke("search", "--queries", tiny_corpus, "-o", judged, *common).exit_code == 0
    [record] = [json.loads(line) for line in judged.read_text().splitlines()]
    rank = next((h["rank"] for h in record["hits"] if h["id"] == "d0"), None)  # q1's judged document
    scored = _invoke("eval", "runs", judged, slim, "--qrels", tiny_corpus, "--json")
    assert scored.exit_code == 1 and "none of its query ids is judged" in scored.output  # slim: ids 1..5
    scored = json.loads(_invoke("eval", "runs", judged, "--qrels", tiny_corpus, "--json").output)
    assert scored["judged_queries"] == 1 and scored["runs"]["judged"]["queries"] == 1
    assert scored["runs"]["judged"]["mrr@10"] == pytest.approx(1 / rank if rank else 0.0)
    table = _invoke("eval", "runs", judged, "--qrels", tiny_corpus)
    assert table.exit_code == 0 and "ndcg@10" in table.output and "judged" in table.output
    # user mistakes: one line each
    _one_line_error(_invoke("search", "--queries", tmp_path / "q.txt", *common), "--queries needs --output")
    _one_line_error(
        _invoke("search", "x", "--queries", tmp_path / "q.txt", "-o", out, *common), "(one of them)"
    )
    _one_line_error(_invoke("search", *common), "(one of them)")
    _one_line_error(_invoke("search", "x", "--db", indexed["db"]), "--collection NAME")
    _one_line_error(_invoke("search", "x", "-o", out, *common), "go with --queries")
    _one_line_error(_invoke("search", "--queries", tmp_path / "no.txt", "-o", out, *common), "file not found")
    (tmp_path / "other.jsonl").write_text('{"id": 1}\n')
    _one_line_error(
        _invoke("search", "--queries", tmp_path / "q.txt", "-o", tmp_path / "other.jsonl", *common),
        "other.jsonl:1: not a search record",
    )


def test_index_a_folder_of_text_files(tmp_path: Path, tiny_model_dir: Path) -> None:
    """``--glob``: files cut into passages; an edited file's passages are embedded again, a deleted file's
    removed with --prune; the file's path comes back as the hit's title."""
    notes = tmp_path / "notes"
    (notes / "sub").mkdir(parents=True)
    (notes / "coffee.md").write_text("Coffee keeps people awake at night.\n\nEspresso is strong coffee.\n")
    (notes / "sub" / "zebrafish.md").write_text("Zebrafish regrow their heart after injury.\n")
    (notes / "ignored.txt").write_text("not matched by the pattern")
    base = ["-c", "notes", "--db", tmp_path / "db", "--model", tiny_model_dir]
    first = _invoke("index", notes, "--glob", "**/*.md", "--chunk-words", "6", *base)
    assert first.exit_code == 0, first.output
    assert "3 documents (3 added" in first.output  # coffee.md in two passages, zebrafish.md in one
    found = json.loads(_invoke("search", "zebrafish heart", *base, "--no-think", "--json").output)
    hit = next(h for h in found["hits"] if h["id"] == "sub/zebrafish.md#0")
    assert hit["title"] == "sub/zebrafish.md" and hit["lexical_score"]
    (notes / "coffee.md").write_text("Coffee keeps people awake at night.\n\nTea is milder.\n")
    (notes / "sub" / "zebrafish.md").unlink()
    again = _invoke("index", notes, "--glob", "**/*.md", "--chunk-words", "6", "--prune", *base)
    assert "(0 added, 1 updated, 1 unchanged, 1 removed" in again.output, again.output
    found = json.loads(_invoke("search", "tea", *base, "--no-think", "--json").output)
    assert {h["id"] for h in found["hits"]} == {"coffee.md#0", "coffee.md#1"}
    (notes / "tea.md").write_text("Green tea and black tea.\n")
    _invoke("index", notes, "--glob", "**/*.md", "--chunk-words", "6", *base)
    only = ["--no-think", "--json", "--where", '{"title": "coffee.md"}']
    found = json.loads(_invoke("search", "tea", *base, *only).output)
    assert found["where"] == {"title": "coffee.md"}  # BM25's best (tea.md) is filtered out too
    assert {h["id"] for h in found["hits"]} == {"coffee.md#0", "coffee.md#1"}
    _one_line_error(_invoke("search", "tea", *base, "--where", "{title: 1}"), "the filter is not valid JSON")
    _one_line_error(_invoke("search", "tea", *base, "--where", "[1]"), "must be a non-empty JSON object")
    _one_line_error(_invoke("index", notes, "--glob", "*.pdf", *base), "no file matches *.pdf")
    _one_line_error(
        _invoke("index", notes, "--glob", "*.md", "--ray", "local", *base), "--glob cannot be used"
    )


def test_corpus_metadata_are_stored_filtered_and_kept_in_step(tmp_path: Path, tiny_model_dir: Path) -> None:
    data = tmp_path / "meta"
    data.mkdir()

    def write(years: list[int]) -> None:
        rows = [
            {
                "_id": f"d{i}",
                "title": f"aspirin study {i}",
                "text": "Aspirin and the heart.",
                "metadata": {"year": y},
            }
            for i, y in enumerate(years)
        ]
        (data / "corpus.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))

    write([2018, 2019, 2020, 2021])
    base = ["-c", "meta", "--db", tmp_path / "db", "--model", tiny_model_dir]
    assert "4 added" in _invoke("index", data, *base).output
    query = ["search", "aspirin", *base, "--no-think", "--json", "--where", '{"year": {"$gte": 2020}}']
    assert {h["id"] for h in json.loads(_invoke(*query).output)["hits"]} == {"d2", "d3"}
    write([2018, 2022, 2020, 2021])  # only d1's metadata change
    again = _invoke("index", data, *base)
    assert "(0 added, 1 updated, 3 unchanged, 0 removed" in again.output, again.output
    assert {h["id"] for h in json.loads(_invoke(*query).output)["hits"]} == {"d1", "d2", "d3"}


def test_delete_asks_and_removes_the_collection_and_its_bm25_index(indexed: dict[str, str]) -> None:
    from o1_rag.store import open_client

    db = ["--db", indexed["db"]]
    lexical = Path(indexed["db"]) / "o1rag-lexical" / "tiny"
    assert lexical.is_dir()
    declined = runner.invoke(app, ["delete", "tiny", *db], input="n\n", env={"COLUMNS": "200"})
    assert declined.exit_code == 1 and "not deleted" in declined.output
    assert "Delete collection tiny (40 documents) and its BM25 index?" in declined.output
    assert lexical.is_dir() and "tiny" in _invoke("collections", *db).output
    done = _invoke("delete", "tiny", "--yes", *db)
    assert done.exit_code == 0 and "deleted collection tiny (40 documents)" in done.output, done.output
    assert not lexical.exists() and "tiny" not in _invoke("collections", *db).output
    _one_line_error(_invoke("delete", "tiny", "--yes", *db), "collection 'tiny' does not exist")
    open_client(indexed["db"]).create_collection("foreign")  # made by another tool: left alone
    _one_line_error(_invoke("delete", "foreign", "--yes", *db), "delete it with the tool that made it")
    assert "foreign" in [c.name for c in open_client(indexed["db"]).list_collections()]


def test_search_json_no_think(indexed: dict[str, str]) -> None:
    result = _invoke(
        "search",
        "insulin",
        "-c",
        "tiny",
        "--db",
        indexed["db"],
        "--model",
        indexed["model"],
        "-k",
        "5",
        "--no-think",
        "--json",
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["thoughts"] == [] and len(payload["hits"]) == 5
    scores = [h["score"] for h in payload["hits"]]
    assert scores == sorted(scores, reverse=True)
    assert all(h["id"].startswith("d") for h in payload["hits"])


def test_reindex_is_a_no_op(indexed: dict[str, str], tiny_corpus: Path) -> None:
    result = _invoke("index", tiny_corpus, "-c", "tiny", "--db", indexed["db"], "--model", indexed["model"])
    assert result.exit_code == 0 and "0 added" in result.output and "40 unchanged" in result.output


def test_reindex_after_edits_updates_and_prunes(
    indexed: dict[str, str], tiny_corpus: Path, tmp_path: Path
) -> None:
    """An edited corpus: the changed document is embedded again and BM25 finds its new words; --prune
    drops the documents the corpus lost; --prune with --limit is refused before anything is loaded."""
    lines = (tiny_corpus / "corpus.jsonl").read_text().splitlines()
    record = json.loads(lines[0])
    record["text"] = "Zebrafish regrow their heart muscle after injury."
    edited = tmp_path / "edited"
    edited.mkdir()
    (edited / "corpus.jsonl").write_text("\n".join([json.dumps(record), *lines[1:-3]]) + "\n")
    base = ("-c", "tiny", "--db", indexed["db"], "--model", indexed["model"])
    result = _invoke("index", edited, *base)
    assert result.exit_code == 0, result.output
    assert "0 added, 1 updated" in result.output and "36 unchanged, 0 removed" in result.output
    found = _invoke("search", "zebrafish", *base, "-k", "10", "--no-think", "--json")
    assert found.exit_code == 0, found.output
    lexical = [h["id"] for h in json.loads(found.output)["hits"] if h["lexical_score"]]
    assert lexical == [record["_id"]]  # BM25 holds the new text (and only that document has the word)
    pruned = _invoke("index", edited, *base, "--prune")
    assert pruned.exit_code == 0 and "0 updated" in pruned.output and "3 removed" in pruned.output
    assert "37 documents" in pruned.output
    _one_line_error(_invoke("index", edited, *base, "--prune", "--limit", "5"), "cannot be used with --limit")


def test_fingerprint_mismatch_exit(indexed: dict[str, str], tiny_adapter_dir: Path) -> None:
    result = _invoke(
        "search",
        "aspirin",
        "-c",
        "tiny",
        "--db",
        indexed["db"],
        "--model",
        indexed["model"],
        "--adapter",
        tiny_adapter_dir,
        "--no-think",
    )
    _one_line_error(result, "was indexed by embedder")


def test_user_mistakes_exit_non_zero(tmp_path: Path, indexed: dict[str, str]) -> None:
    common = ["--db", indexed["db"], "--model", indexed["model"]]
    _one_line_error(_invoke("index", tmp_path / "missing", "-c", "x1x", *common), "not a directory")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "corpus.jsonl").write_text('{"_id": "a", "text": "ok"}\n{oops\n')
    _one_line_error(_invoke("index", bad, "-c", "bad", *common), "corpus.jsonl:2: not valid JSON")
    _one_line_error(_invoke("search", "   ", "-c", "tiny", *common), "query is empty")
    _usage_error(_invoke("search", "q", "-c", "tiny", "-k", "0", *common), "-k")
    _usage_error(_invoke("search", "q", "-c", "tiny", "--query-weight", "2", *common), "--query-weight")
    _usage_error(_invoke("search", "q", "-c", "tiny", "--think-mode", "loud", *common), "--think-mode")
    _usage_error(_invoke("search", "q", "-c", "tiny", "--think", "sometimes", *common), "--think")
    _usage_error(_invoke("index", tmp_path, "-c", "x1x", "--limit", "0", *common), "--limit")
    _one_line_error(
        _invoke("think", "q", "--repetition-penalty", "0", "--model", indexed["model"]),
        "repetition_penalty must be > 0",
    )
    _one_line_error(_invoke("search", "q", "-c", "nothere", *common), "collection 'nothere' does not exist")
    _one_line_error(
        _invoke("search", "q", "-c", "tiny", "--db", indexed["db"], "--model", "nobody/nothing-xyz"),
        "'nobody/nothing-xyz' is not an alias",
    )
    _one_line_error(_invoke("think", "q", "--model", tmp_path / "no-model"), "does not exist")


def test_collections_lists_fingerprint(indexed: dict[str, str]) -> None:
    result = _invoke("collections", "--db", indexed["db"])
    assert result.exit_code == 0 and "tiny" in result.output and "40" in result.output


def test_missing_optional_dependency_is_one_line(tiny_corpus: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import o1_rag.evaluation.ir as ir

    def missing(*args, **kwargs):
        raise ModuleNotFoundError("No module named 'ranx'", name="ranx")

    monkeypatch.setattr(ir, "evaluate_ir", missing)
    _one_line_error(_invoke("eval", "ir", tiny_corpus, "--systems", "bm25"), "needs the module 'ranx'")


def test_encoder_and_thinker_options(
    tmp_path: Path, tiny_corpus: Path, tiny_model_dir: Path, tiny_encoder_dir: Path
) -> None:
    db = tmp_path / "db"
    made = _invoke("index", tiny_corpus, "-c", "enc", "--db", db, "--encoder", tiny_encoder_dir)
    assert made.exit_code == 0, made.output
    assert "40 added" in made.output
    found = _invoke(
        "search",
        "does aspirin help?",
        "-c",
        "enc",
        "--db",
        db,
        "--encoder",
        tiny_encoder_dir,
        "--thinker",
        tiny_model_dir,
        "-n",
        "2",
        "--max-new-tokens",
        "3",
        "--json",
    )
    assert found.exit_code == 0, found.output
    payload = json.loads(found.output)
    assert len(payload["thoughts"]) == 2 and len(payload["hits"]) == 10
    # the joint model cannot search a collection built by the sentence encoder
    other = _invoke("search", "aspirin", "-c", "enc", "--db", db, "--model", tiny_model_dir, "--no-think")
    _one_line_error(other, "was indexed by embedder")
    _one_line_error(
        _invoke("index", tiny_corpus, "-c", "xyz", "--db", db, "--encoder", tmp_path / "no"), "does not exist"
    )


def test_untrusted_text_is_printed_plain(tmp_path: Path, tiny_encoder_dir: Path) -> None:
    data = tmp_path / "evil"
    data.mkdir()
    texts = ["[link=http://evil.example/x]click[/link] [/ref]", "bell \x1b[31mred\x07", "plain aspirin"]
    with open(data / "corpus.jsonl", "w") as handle:
        for i, text in enumerate(texts):
            handle.write(json.dumps({"_id": f"d{i}", "title": "", "text": text}) + "\n")
    db = tmp_path / "db"
    assert _invoke("index", data, "-c", "evil", "--db", db, "--encoder", tiny_encoder_dir).exit_code == 0
    found = _invoke(
        "search",
        "[/x] aspirin",
        "-c",
        "evil",
        "--db",
        db,
        "--encoder",
        tiny_encoder_dir,
        "--no-think",
        "-k",
        "3",
    )
    assert found.exit_code == 0, found.output
    assert "[link=http://evil.example/x]click[/link] [/ref]" in found.output  # shown, not interpreted
    assert "\x1b" not in found.output and "\\x1b" in found.output and "[/x] aspirin" in found.output
    listed = _invoke("collections", "--db", db)
    assert listed.exit_code == 0 and "evil" in listed.output
    _one_line_error(
        _invoke("search", "q", "-c", "no[/x]such", "--db", db, "--encoder", tiny_encoder_dir), "no[/x]such"
    )


def test_unwritable_places_are_one_error_line(
    tmp_path: Path, tiny_corpus: Path, tiny_encoder_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    _one_line_error(
        _invoke("index", tiny_corpus, "-c", "abc", "--db", blocker / "db", "--encoder", tiny_encoder_dir), ""
    )
    # an unwritable cache root: thinking goes on without a cache (the store lives elsewhere)
    from o1_rag.loading import open_cache as _open_cache

    monkeypatch.setenv("O1RAG_HOME", str(blocker / "home"))
    assert _open_cache(True) is None


def test_search_exposes_every_thinking_setting_of_the_integrations() -> None:
    """One settings definition: each field of ``O1Settings`` (thinking and loading) is an option of
    ``o1rag search``, and the thinking ones reach ``ThinkParams``."""
    import typer

    from o1_rag.settings import O1Settings, ThinkSettings

    search = typer.main.get_command(app).commands["search"]
    options = {opt for param in search.params for opt in param.opts}
    cli_names = {"use_cache": "--no-cache", "num_thoughts": "--num-thoughts"}
    assert {"adapter", "device", "encoder", "precision", "think", "seed"} <= set(O1Settings.model_fields)
    for field in O1Settings.model_fields:
        assert cli_names.get(field, "--" + field.replace("_", "-")) in options, field
    params = ThinkSettings(num_thoughts=4, seed=1, repetition_penalty=1.1, agree=0.9).think_params()
    assert (params.num_thoughts, params.seed, params.repetition_penalty, params.agree) == (4, 1, 1.1, 0.9)
    with pytest.raises(ValueError):
        ThinkSettings(agree=0)


def test_option_groups_spread_into_flags_and_gather_back() -> None:
    """A command taking option groups shows each field as its own flag and gets one group value per
    group; a group that repeats a parameter of the command is refused when the command is declared."""
    import typer

    from o1_rag.cli._groups import ModelOptions, SamplingOptions, StoreOptions, with_groups

    seen: list[object] = []

    @with_groups
    def probe(
        text: str,
        model: ModelOptions = ModelOptions(),
        sampling: SamplingOptions = SamplingOptions(),
        store: StoreOptions = StoreOptions(),
        verbose: bool = False,
    ) -> None:
        seen.extend([text, model, sampling.params(), store, verbose])

    probe_app = typer.Typer()
    probe_app.command()(probe)
    probe_app.command("other")(lambda: None)  # two commands: ``probe`` is a subcommand
    result = CliRunner().invoke(
        probe_app,
        ["probe", "q", "--model", "m", "--device", "cpu", "-n", "4", "--agree", "0.9", "--chroma-port", "9"],
    )
    assert result.exit_code == 0, result.output
    text, model, params, store, verbose = seen
    assert (text, verbose) == ("q", False)
    assert model == ModelOptions(model="m", adapter=None, device="cpu")
    # left unset, the temperature is the model's (resolved by the embedder), not a fixed 0.1
    assert (params.num_thoughts, params.agree, params.temperature, params.seed) == (4, 0.9, None, None)
    assert store == StoreOptions(db=None, chroma_host=None, chroma_port=9) and store.lexical_db() is None
    help_text = CliRunner().invoke(probe_app, ["probe", "--help"], env={"COLUMNS": "200"}).output
    for flag in ("--adapter", "--top-p", "--repetition-penalty", "--db", "--chroma-host", "--verbose"):
        assert flag in help_text

    def clash(model: ModelOptions = ModelOptions(), device: str = "cpu") -> None: ...

    with pytest.raises(TypeError, match="repeats a parameter"):
        with_groups(clash)


def test_version() -> None:
    from importlib.metadata import version

    import o1_rag

    result = _invoke("--version")
    assert result.exit_code == 0 and result.output.strip() == f"o1rag {o1_rag.__version__}"
    assert version("o1-rag") == o1_rag.__version__  # the package metadata reads the same attribute
    bare = _invoke()
    assert "Commands" in bare.output and "adopt" in bare.output  # no arguments: the help
