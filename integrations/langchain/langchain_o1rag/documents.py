"""LangChain ``Document``s as an o1-rag corpus: ids, titles and the metadata Chroma can store."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from langchain_core.documents import Document

from o1_rag.data import Document as CorpusDocument
from o1_rag.data import metadata_problem
from o1_rag.store import text_digest

logger = logging.getLogger(__name__)


def corpus_documents(documents: Iterable[Document]) -> tuple[list[CorpusDocument], list[str]]:
    """The documents as o1-rag corpus records (one per id), and each given document's id in the given
    order. A record has the document's ``id`` (else ``lc-`` and a digest of its text and
    metadata, so the same document gets the same id on every run, and an edited one a new id: give ids to
    update documents in place), ``metadata["title"]`` as the title, and the rest of its
    metadata that Chroma can store and filter (strings, numbers, booleans; other values and reserved keys
    are left out, with a warning naming the keys).

    Raises:
        ValueError: a document with no text, or two different documents under one id.
    """
    out: dict[str, CorpusDocument] = {}
    ids: list[str] = []
    dropped: set[str] = set()
    for n, doc in enumerate(documents):
        if not isinstance(doc, Document):
            raise ValueError(f"document {n} is a {type(doc).__name__}, not a LangChain Document")
        if not doc.page_content.strip():
            raise ValueError(f"document {n} ({doc.id or 'no id'}) has no text")
        meta = dict(doc.metadata or {})
        title = meta.pop("title", "")
        kept: dict[str, Any] = {}
        for key, value in meta.items():
            if metadata_problem(key, value):
                dropped.add(str(key))
            else:
                kept[key] = value
        title = title if isinstance(title, str) else str(title)
        record = CorpusDocument(doc.id or "", title, doc.page_content, kept)
        if not doc.id:
            record = replace(record, id="lc-" + text_digest(record.full_text(), kept))
        earlier = out.get(record.id)
        if earlier is not None and (earlier.full_text(), earlier.metadata) != (record.full_text(), kept):
            raise ValueError(f"two different documents have the id '{record.id}'")
        out[record.id] = record
        ids.append(record.id)
    if dropped:
        logger.warning(
            "metadata left out (Chroma stores strings, numbers and booleans): %s", ", ".join(sorted(dropped))
        )
    return list(out.values()), ids
