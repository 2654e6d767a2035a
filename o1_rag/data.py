"""BEIR-format collections: ``corpus.jsonl``, ``queries.jsonl``, ``qrels.tsv``.

Every malformed record raises ``DataError`` naming the file and the line.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from o1_rag.errors import DataError


@dataclass(frozen=True)
class Document:
    """One corpus record; ``metadata``: the record's own scalar fields, stored beside the text (filterable
    with ``where``), never embedded."""

    id: str
    title: str
    text: str
    metadata: dict[str, str | int | float | bool] = field(default_factory=dict, compare=False)

    def full_text(self) -> str:
        """Title and text joined the way they are embedded."""
        return f"{self.title}\n{self.text}" if self.title else self.text

    def stored_metadata(self) -> dict[str, str | int | float | bool]:
        """What the collection stores beside the text: the title and the record's metadata."""
        return {"title": self.title, **self.metadata}


def iter_jsonl(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` for each non-blank line; a bad line raises ``DataError`` naming it."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    with open(path, "rb") as handle:
        for lineno, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(
                    f"{path}:{lineno}: not UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})"
                ) from None
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None
            if not isinstance(record, dict):
                raise DataError(f"{path}:{lineno}: expected a JSON object, got {type(record).__name__}")
            yield lineno, record


def _field(record: dict[str, Any], name: str, path: Path, lineno: int, required: bool = True) -> str:
    value = record.get(name)
    if value is None:
        if required:
            raise DataError(f"{path}:{lineno}: missing field '{name}'")
        return ""
    if name == "_id" and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if name == "_id" and isinstance(value, float):
        if not value.is_integer():  # NaN, infinities and fractions are no ids
            raise DataError(f"{path}:{lineno}: field '_id' must be a string or an integer, got {value!r}")
        return str(int(value))
    if not isinstance(value, str):
        raise DataError(f"{path}:{lineno}: field '{name}' must be a string, got {type(value).__name__}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise DataError(
            f"{path}:{lineno}: field '{name}' holds an invalid character (a lone surrogate "
            f"\\u{ord(value[exc.start]):04x} at position {exc.start})"
        ) from None
    return value


def _check_dir(data_dir: str | Path) -> Path:
    path = Path(data_dir)
    if not path.is_dir():
        raise DataError(f"{path}: not a directory")
    return path


def corpus_document(record: dict[str, Any], path: Path, lineno: int) -> Document:
    """One ``corpus.jsonl`` record (``_id``, optional ``title``, ``text``, optional ``metadata``: an object
    of strings, numbers and booleans) as a ``Document``."""
    doc_id = _field(record, "_id", path, lineno)
    if not doc_id:
        raise DataError(f"{path}:{lineno}: empty '_id'")
    return Document(
        doc_id,
        _field(record, "title", path, lineno, False),
        _field(record, "text", path, lineno),
        _metadata(record.get("metadata"), path, lineno),
    )


METADATA_RESERVED = ("o1rag:", "chroma:")  # key prefixes of o1-rag's and Chroma's own records


def metadata_problem(key: object, value: object) -> str | None:
    """Why ``key: value`` cannot be a document's stored, filterable metadata, or None if it can: keys are
    non-empty strings other than ``title`` (a field of its own) and the reserved prefixes; values are
    strings, numbers or booleans (what Chroma filters)."""
    if not isinstance(key, str) or not key or key == "title" or key.startswith(METADATA_RESERVED):
        return f"metadata key '{key}' is reserved (the title is a field of its own)"
    if not isinstance(value, str | int | float | bool):
        return (
            f"metadata '{key}' must be a string, number or boolean, got {type(value).__name__} "
            "(Chroma filters scalar values)"
        )
    return None


def _metadata(value: Any, path: Path, lineno: int) -> dict[str, str | int | float | bool]:
    """A record's ``metadata`` as Chroma can store and filter it (null values left out)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise DataError(f"{path}:{lineno}: field 'metadata' must be an object, got {type(value).__name__}")
    out: dict[str, str | int | float | bool] = {}
    for key, item in value.items():
        if item is None and metadata_problem(key, "") is None:
            continue
        problem = metadata_problem(key, item)
        if problem:
            raise DataError(f"{path}:{lineno}: {problem}")
        out[key] = item
    return out


def iter_corpus(data_dir: str | Path) -> Iterator[Document]:
    """Stream ``corpus.jsonl`` records (``_id``, optional ``title``, ``text``); duplicate ids are errors."""
    path = _check_dir(data_dir) / "corpus.jsonl"
    seen: set[str] = set()
    for lineno, record in iter_jsonl(path):
        doc = corpus_document(record, path, lineno)
        if doc.id in seen:
            raise DataError(f"{path}:{lineno}: duplicate _id '{doc.id}'")
        seen.add(doc.id)
        yield doc


def load_corpus(data_dir: str | Path) -> list[Document]:
    """All corpus records, in file order."""
    docs = list(iter_corpus(data_dir))
    if not docs:
        raise DataError(f"{Path(data_dir) / 'corpus.jsonl'}: no documents")
    return docs


def load_queries(data_dir: str | Path, filename: str = "queries.jsonl") -> dict[str, str]:
    """``{query_id: text}`` from ``queries.jsonl``."""
    return _jsonl_queries(_check_dir(data_dir) / filename)


def read_query_file(path: str | Path) -> dict[str, str]:
    """``{query_id: text}`` from a file of queries: a BEIR folder (its ``queries.jsonl``), a ``.jsonl`` file
    of ``{"_id", "text"}`` records, or plain text with one query per non-blank line (its id: the line
    number). Duplicate ids and blank queries are errors naming them."""
    path = Path(path)
    if path.is_dir():
        path = path / "queries.jsonl"
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    if path.suffix == ".jsonl":
        queries = _jsonl_queries(path)
    else:
        try:
            lines = path.read_text(encoding="utf-8").split("\n")
        except UnicodeDecodeError:
            raise DataError(f"{path}: not UTF-8 text") from None
        queries = {str(n): line.strip() for n, line in enumerate(lines, start=1) if line.strip()}
    for qid, text in queries.items():
        if not text.strip():
            raise DataError(f"{path}: query '{qid}' is blank")
    if not queries:
        raise DataError(f"{path}: no queries")
    return queries


def _jsonl_queries(path: Path) -> dict[str, str]:
    queries: dict[str, str] = {}
    for lineno, record in iter_jsonl(path):
        qid = _field(record, "_id", path, lineno)
        if qid in queries:
            raise DataError(f"{path}:{lineno}: duplicate _id '{qid}'")
        queries[qid] = _field(record, "text", path, lineno)
    return queries


def load_qrels(data_dir: str | Path, filename: str = "qrels.tsv") -> dict[str, dict[str, int]]:
    """``{query_id: {doc_id: relevance}}`` from a tab-separated file with a header line."""
    path = _check_dir(data_dir) / filename
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    qrels: dict[str, dict[str, int]] = {}
    with open(path, encoding="utf-8", newline="") as handle:
        for lineno, row in enumerate(csv.reader(handle, delimiter="\t"), start=1):
            if not row or not "".join(row).strip():
                continue
            if lineno == 1 and not row[-1].strip().lstrip("-").isdigit():
                continue  # header
            if len(row) != 3:
                raise DataError(f"{path}:{lineno}: expected 3 tab-separated columns, got {len(row)}")
            qid, did, score = (cell.strip() for cell in row)
            try:
                qrels.setdefault(qid, {})[did] = int(score)
            except ValueError:
                raise DataError(f"{path}:{lineno}: relevance '{score}' is not an integer") from None
    return qrels


ANSWER_FIELDS = ("ground_truth", "reference", "answer")


def load_answers(path: str | Path) -> dict[str, str]:
    """``{query_id: reference answer}`` from a QA jsonl (``qa.jsonl``: ``id`` + ``ground_truth``; ragas'
    ``reference`` and a plain ``answer`` field are read too). Records with an empty answer are left out."""
    path = Path(path)
    answers: dict[str, str] = {}
    for lineno, record in iter_jsonl(path):
        qid = next((record[k] for k in ("id", "_id", "query_id") if k in record), None)
        if not isinstance(qid, (str, int)) or isinstance(qid, bool):
            raise DataError(f"{path}:{lineno}: missing field 'id'")
        field = next((k for k in ANSWER_FIELDS if k in record), None)
        if field is None:
            raise DataError(f"{path}:{lineno}: no answer field ({', '.join(ANSWER_FIELDS)})")
        answer = record[field]
        if answer is None:
            continue
        if not isinstance(answer, str):
            raise DataError(f"{path}:{lineno}: field '{field}' must be a string, got {type(answer).__name__}")
        if answer.strip():
            answers[str(qid)] = answer.strip()
    if not answers:
        raise DataError(f"{path}: no answers")
    return answers


# words a passage holds at most: full passages of technical text mostly stay within the bundled
# encoder's 256-token window (180 words did not: scientific abstracts run ~1.5 word pieces a word)
CHUNK_WORDS = 128


def chunk_text(text: str, max_words: int = CHUNK_WORDS) -> list[str]:
    """``text`` cut into passages of at most ``max_words`` words: whole paragraphs (blank-line separated)
    packed together while they fit, a longer paragraph cut between words. Runs of white space inside a
    paragraph become one space; empty text gives no passage."""
    if max_words < 1:
        raise ValueError(f"max_words must be >= 1, got {max_words}")
    chunks: list[str] = []
    current: list[str] = []
    for paragraph in (" ".join(p.split()) for p in text.replace("\r\n", "\n").split("\n\n")):
        words = paragraph.split(" ") if paragraph else []
        while len(words) > max_words:  # a paragraph longer than a passage: whole passages of it first
            if current:
                chunks.append("\n\n".join(current))
                current = []
            chunks.append(" ".join(words[:max_words]))
            words = words[max_words:]
        if not words:
            continue
        if current and sum(len(p.split(" ")) for p in current) + len(words) > max_words:
            chunks.append("\n\n".join(current))
            current = []
        current.append(" ".join(words))
    if current:
        chunks.append("\n\n".join(current))
    return chunks


def load_text_files(folder: str | Path, patterns: list[str], max_words: int = CHUNK_WORDS) -> list[Document]:
    """The text files under ``folder`` matching any of the glob ``patterns`` (e.g. ``**/*.md``), each cut
    into passages by ``chunk_text``: a passage's id is the file's path relative to ``folder`` with
    ``#`` and its number (``notes/a.md#0``), its title that path. Files come in sorted path order.

    Raises:
        DataError: not a folder, no file matching, or a file that is not UTF-8 text (named).
    """
    root = _check_dir(folder)
    files = sorted({p for pattern in patterns for p in root.glob(pattern) if p.is_file()})
    if not files:
        raise DataError(f"{root}: no file matches {', '.join(patterns)}")
    docs: list[Document] = []
    for path in files:
        name = path.relative_to(root).as_posix()
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise DataError(f"{path}: not UTF-8 text (byte at offset {exc.start})") from None
        docs.extend(
            Document(f"{name}#{n}", name, chunk) for n, chunk in enumerate(chunk_text(text, max_words))
        )
    if not docs:
        raise DataError(f"{root}: the files matching {', '.join(patterns)} hold no text")
    return docs
