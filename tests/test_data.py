import json
from pathlib import Path

import pytest

from o1_rag.data import DataError, Document, load_corpus, load_qrels, load_queries


def test_load_tiny_corpus(tiny_corpus: Path) -> None:
    docs = load_corpus(tiny_corpus)
    assert len(docs) == 40 and docs[0].id == "d0"
    assert docs[0].full_text().startswith("aspirin study 0\n")
    assert load_queries(tiny_corpus) == {"q1": "does aspirin help?"}
    assert load_qrels(tiny_corpus) == {"q1": {"d0": 1}}


def test_malformed_json_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "corpus.jsonl").write_text('{"_id": "a", "text": "x"}\n\n{"_id": "b", "text": \n')
    with pytest.raises(DataError, match=r"corpus.jsonl:3: not valid JSON"):
        load_corpus(tmp_path)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ({"text": "x"}, "missing field '_id'"),
        ({"_id": "a"}, "missing field 'text'"),
        ({"_id": "a", "text": 5}, "field 'text' must be a string"),
        ([1, 2], "expected a JSON object"),
        ({"_id": float("nan"), "text": "x"}, "field '_id' must be a string or an integer"),
        ({"_id": 1.5, "text": "x"}, "field '_id' must be a string or an integer"),
        ({"_id": "a", "text": "bad \ud800 text"}, "field 'text' holds an invalid character"),
    ],
)
def test_bad_records(tmp_path: Path, line: object, message: str) -> None:
    (tmp_path / "corpus.jsonl").write_text(json.dumps(line) + "\n")
    with pytest.raises(DataError, match=f"corpus.jsonl:1: {message}"):
        load_corpus(tmp_path)


def test_non_utf8_byte_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "corpus.jsonl").write_bytes(b'{"_id": "a", "text": "x"}\n{"_id": "b", "text": "\xff"}\n')
    with pytest.raises(DataError, match=r"corpus.jsonl:2: not UTF-8 \(byte 0xff"):
        load_corpus(tmp_path)


def test_duplicate_ids(tmp_path: Path) -> None:
    (tmp_path / "corpus.jsonl").write_text('{"_id": "a", "text": "x"}\n{"_id": "a", "text": "y"}\n')
    with pytest.raises(DataError, match="corpus.jsonl:2: duplicate _id 'a'"):
        load_corpus(tmp_path)


def test_missing_dir_and_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not a directory"):
        load_corpus(tmp_path / "nope")
    with pytest.raises(DataError, match="corpus.jsonl: file not found"):
        load_corpus(tmp_path)


def test_qrels_errors(tmp_path: Path) -> None:
    (tmp_path / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\n")
    with pytest.raises(DataError, match=r"qrels.tsv:2: expected 3 tab-separated columns"):
        load_qrels(tmp_path)
    (tmp_path / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\thigh\n")
    with pytest.raises(DataError, match=r"qrels.tsv:2: relevance 'high'"):
        load_qrels(tmp_path)


@pytest.mark.skipif(
    not (Path(__file__).resolve().parents[2] / "shared/data/scifact").is_dir(),
    reason="../shared/data/scifact is not present",
)
def test_real_scifact_loads() -> None:
    folder = Path(__file__).resolve().parents[2] / "shared/data/scifact"
    assert len(load_corpus(folder)) == 5183
    qrels = load_qrels(folder)
    queries = load_queries(folder)
    assert set(qrels) <= set(queries)


def test_read_query_file_forms(tmp_path: Path) -> None:
    from o1_rag.data import read_query_file

    beir = tmp_path / "beir"
    beir.mkdir()
    (beir / "queries.jsonl").write_text('{"_id": "q1", "text": "aspirin"}\n{"_id": 7, "text": "coffee"}\n')
    assert read_query_file(beir) == {"q1": "aspirin", "7": "coffee"}
    assert read_query_file(beir / "queries.jsonl") == {"q1": "aspirin", "7": "coffee"}
    lines = tmp_path / "queries.txt"
    lines.write_text("aspirin and the heart\r\n\n  coffee  \nsleep")
    assert read_query_file(lines) == {"1": "aspirin and the heart", "3": "coffee", "4": "sleep"}
    for body, message in [
        ("\n \n", "no queries"),
        ('{"_id": "a", "text": "x"}\n{"_id": "a", "text": "y"}\n', "duplicate _id 'a'"),
        ('{"_id": "a", "text": "  "}\n', "query 'a' is blank"),
    ]:
        bad = tmp_path / ("bad.jsonl" if body.startswith("{") else "bad.txt")
        bad.write_text(body)
        with pytest.raises(DataError, match=message):
            read_query_file(bad)
    with pytest.raises(DataError, match="file not found"):
        read_query_file(tmp_path / "missing.txt")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(DataError, match="not UTF-8"):
        read_query_file(tmp_path / "latin1.txt")


def test_chunk_text_packs_paragraphs_and_cuts_long_ones() -> None:
    from o1_rag.data import chunk_text

    assert chunk_text("") == [] and chunk_text("\n\n  \n") == []
    assert chunk_text("one two\nthree\n\nfour", max_words=10) == ["one two three\n\nfour"]
    assert chunk_text("a b c\n\nd e f\n\ng", max_words=4) == ["a b c", "d e f\n\ng"]
    long = " ".join(f"w{i}" for i in range(10))
    assert chunk_text(f"x y\n\n{long}\n\nz", max_words=4) == [
        "x y",
        "w0 w1 w2 w3",
        "w4 w5 w6 w7",
        "w8 w9\n\nz",
    ]
    for chunk in chunk_text("\n\n".join(" ".join(["word"] * n) for n in (3, 170, 40, 200, 1)), 180):
        assert 1 <= len(chunk.split()) <= 180
    with pytest.raises(ValueError, match="max_words"):
        chunk_text("a", 0)


def test_load_text_files(tmp_path: Path) -> None:
    from o1_rag.data import load_text_files

    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "coffee.md").write_text("# Coffee\n\nCoffee keeps people awake.\n")
    (tmp_path / "b.txt").write_text(" ".join(["sleep"] * 7))
    (tmp_path / "skip.bin").write_bytes(b"\x00\x01")
    docs = load_text_files(tmp_path, ["**/*.md", "*.txt"], max_words=6)
    assert [(d.id, d.title) for d in docs] == [
        ("b.txt#0", "b.txt"),
        ("b.txt#1", "b.txt"),
        ("notes/coffee.md#0", "notes/coffee.md"),
    ]
    assert docs[2].text == "# Coffee\n\nCoffee keeps people awake."
    with pytest.raises(DataError, match="no file matches"):
        load_text_files(tmp_path, ["*.pdf"])
    (tmp_path / "bad.txt").write_bytes(b"caf\xe9")
    with pytest.raises(DataError, match="bad.txt: not UTF-8"):
        load_text_files(tmp_path, ["*.txt"])
    with pytest.raises(DataError, match="not a directory"):
        load_text_files(tmp_path / "b.txt", ["*"])


def test_corpus_metadata(tmp_path: Path) -> None:
    rows = [
        {"_id": "a", "text": "x", "metadata": {"year": 2020, "source": "pubmed", "open": True, "gone": None}},
        {"_id": "b", "text": "y"},
    ]
    (tmp_path / "corpus.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    a, b = load_corpus(tmp_path)
    assert a.metadata == {"year": 2020, "source": "pubmed", "open": True} and b.metadata == {}
    assert a.stored_metadata() == {"title": "", "year": 2020, "source": "pubmed", "open": True}
    assert a == Document("a", "", "x")  # metadata do not take part in equality (nor in hashing)
    for bad, message in [
        ([1], "field 'metadata' must be an object"),
        ({"tags": ["a"]}, "metadata 'tags' must be a string, number or boolean"),
        ({"title": "t"}, "metadata key 'title' is reserved"),
        ({"o1rag:x": 1}, "metadata key 'o1rag:x' is reserved"),
    ]:
        (tmp_path / "corpus.jsonl").write_text(json.dumps({"_id": "a", "text": "x", "metadata": bad}) + "\n")
        with pytest.raises(DataError, match=f"corpus.jsonl:1: {message}"):
            load_corpus(tmp_path)
