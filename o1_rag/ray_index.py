"""Corpus indexing on a Ray cluster (``o1rag index --ray ADDRESS``).

Ray Data reads ``corpus.jsonl`` in blocks; a pool of actors, each holding one encoder (a GPU each when the
cluster has them), parses and embeds the blocks. Against a Chroma server the actors write their vectors
themselves, so nothing large travels back to the driver; with the embedded store (one folder, one writer)
the driver writes the vectors as they stream in. Either way every batch is an idempotent upsert by id, and
a run skips the ids already stored, so a killed run resumes and ends with every document exactly once.

Ray is an optional extra: ``pip install 'o1-rag[ray]'``.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np

from o1_rag.errors import FingerprintMismatchError, O1RagError, StoreError
from o1_rag.indexing import IndexReport, check_prune, plan_index
from o1_rag.store import O1Collection, text_digest

logger = logging.getLogger(__name__)

INSTALL_HINT = "indexing on Ray needs Ray Data: pip install 'o1-rag[ray]'"


class RayError(O1RagError):
    """Ray is missing, or the cluster cannot be reached."""


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise RayError(INSTALL_HINT) from None
    return ray


def connect(address: str) -> Any:
    """Join a Ray cluster: ``local`` starts one on this machine; ``auto``, ``HOST:PORT`` or
    ``ray://HOST:10001`` connect to a running cluster. Returns the ``ray`` module."""
    ray = _ray()
    if ray.is_initialized():
        return ray
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    quiet = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.WARNING}
    try:
        if address == "local":
            ray.init(_node_ip_address="127.0.0.1", **quiet)
        else:
            ray.init(address=address, **quiet)
    except Exception as exc:  # ConnectionError, timeouts, bad addresses
        raise RayError(f"cannot start or reach Ray at '{address}': {exc}") from None
    return ray


def _quiet(ray: Any) -> None:
    """o1rag shows its own progress: no Ray Data progress log (configured when ``ray.data`` loads)."""
    ray.data.DataContext.get_current().enable_progress_bars = False
    for name in ("ray", "ray.data"):
        logging.getLogger(name).setLevel(logging.ERROR)


@dataclass(frozen=True)
class EncoderSpec:
    """What each actor loads: the same encoder as the driver's, checked by its fingerprint."""

    model: str
    adapter: str | None
    encoder: str | None
    device: str
    fingerprint: str
    precision: str = "auto"  # resolved on each node (its vectors agree with float32 ones either way)
    long_documents: str | None = None  # None: the model's own


@dataclass(frozen=True)
class ServerTarget:
    """A collection on a Chroma server, written by the actors themselves."""

    name: str
    host: str | None
    port: int | None


class EmbedWorker:
    """One Ray actor: parses corpus lines, keeps the ids still to index, embeds them (and, against a
    server, writes them)."""

    def __init__(
        self,
        spec: EncoderSpec,
        todo: set[str],
        corpus: str,
        threads: int,
        server: ServerTarget | None,
    ) -> None:
        import torch

        from o1_rag.embedder import O1Embedder
        from o1_rag.store import open_client

        torch.set_num_threads(max(1, threads))
        self.todo, self.corpus = todo, Path(corpus)
        self.embedder = O1Embedder.from_pretrained(
            spec.model,
            spec.adapter,
            thinker=False,
            encoder=spec.encoder,
            device=spec.device,
            precision=spec.precision,
            cache=False,
            long_documents=spec.long_documents,
        )
        if self.embedder.fingerprint != spec.fingerprint:
            raise FingerprintMismatchError(
                f"a Ray worker loaded embedder {self.embedder.fingerprint} but the driver has "
                f"{spec.fingerprint}: install the same o1-rag and model files on every node"
            )
        self.collection = (
            O1Collection.open(open_client(host=server.host, port=server.port), server.name, spec.fingerprint)
            if server is not None
            else None
        )

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from o1_rag.data import corpus_document

        docs = [corpus_document(json.loads(line), self.corpus, 0) for line in batch["text"] if line.strip()]
        docs = [d for d in docs if d.id in self.todo]
        ids = [d.id for d in docs]
        texts = [d.full_text() for d in docs]
        if self.collection is not None:
            if docs:
                self.collection.upsert(
                    ids, self.embedder.embed_documents(texts), texts, [d.stored_metadata() for d in docs]
                )
            return {"id": np.array(ids, dtype=object)}
        vectors = (
            self.embedder.embed_documents(texts)
            if docs
            else np.zeros((0, self.embedder.dim), dtype=np.float32)
        )
        return {
            "id": np.array(ids, dtype=object),
            "metadata": np.array([json.dumps(d.stored_metadata()) for d in docs], dtype=object),
            "text": np.array(texts, dtype=object),
            "embedding": vectors.astype(np.float32),
        }


def index_on_ray(
    spec: EncoderSpec,
    collection: O1Collection,
    data_dir: str | Path,
    address: str = "local",
    actors: int = 2,
    batch_size: int = 32,
    cpus_per_actor: float = 1.0,
    gpus_per_actor: float | None = None,
    limit: int | None = None,
    server: ServerTarget | None = None,
    progress: Callable[[int, int], None] | None = None,
    prune: bool = False,
) -> IndexReport:
    """Index the first ``limit`` documents of ``data_dir/corpus.jsonl`` (all when None) that ``collection``
    does not hold yet or holds with another text, on Ray.

    Args:
        spec: the encoder every actor loads (its fingerprint must match the collection's).
        address: ``local``, ``auto``, ``HOST:PORT`` or ``ray://HOST:10001``.
        actors: encoder actors (one model each).
        batch_size: corpus lines per actor call (and per write).
        cpus_per_actor: CPUs Ray reserves for each actor (its torch threads).
        gpus_per_actor: GPUs per actor; None takes one each when the cluster has GPUs.
        server: write from the actors into this Chroma server collection; None: the driver writes.
        progress: called as ``progress(done, to_do)``.
        prune: also remove the stored documents the corpus no longer holds (not with ``limit``).
    """
    from o1_rag.data import iter_corpus

    if actors < 1 or batch_size < 1 or cpus_per_actor <= 0:
        raise ValueError("actors and batch size must be >= 1 and CPUs per actor > 0")
    check_prune(prune, limit)
    collection.check(spec.fingerprint)
    corpus = Path(data_dir) / "corpus.jsonl"
    # validates every record first
    digests = {d.id: text_digest(d.full_text(), d.metadata) for d in islice(iter_corpus(data_dir), limit)}
    plan = plan_index(collection, digests, prune)
    todo, total = plan.todo, len(digests)
    logger.info(
        "indexing %d documents on Ray (%d changed, %d unchanged, %d to remove)",
        len(todo),
        len(plan.changed),
        total - len(todo),
        len(plan.gone),
    )
    if plan.changed:
        collection.bump_revision()
    collection.delete(plan.gone)
    report = IndexReport(
        total=total,
        skipped=total - len(todo),
        added=len(plan.new),
        seconds=0.0,
        updated=len(plan.changed),
        removed=len(plan.gone),
    )
    if progress is not None:
        progress(0, len(todo))
    started = time.perf_counter()
    if not todo:
        return report
    ray = connect(address)
    if gpus_per_actor is None:
        gpus_per_actor = 1.0 if ray.cluster_resources().get("GPU", 0) >= 1 and spec.device != "cpu" else 0.0
    # reading is not the work: no CPU reserved, so a pool that fills the cluster cannot starve it
    lines = ray.data.read_text(str(corpus), drop_empty_lines=True, num_cpus=0)
    embedded = lines.map_batches(
        EmbedWorker,
        fn_constructor_kwargs={
            "spec": spec,
            "todo": todo,
            "corpus": str(corpus),
            "threads": int(cpus_per_actor),
            "server": server,
        },
        batch_size=batch_size,
        compute=ray.data.ActorPoolStrategy(size=actors),
        num_cpus=cpus_per_actor,
        num_gpus=gpus_per_actor,
        batch_format="numpy",
    )
    _quiet(ray)
    done = 0
    try:
        for batch in embedded.iter_batches(batch_size=None, batch_format="numpy"):
            ids_done = [str(i) for i in batch["id"]]
            if not ids_done:
                continue
            if server is None:
                collection.upsert(
                    ids_done,
                    np.asarray(batch["embedding"], dtype=np.float32),
                    [str(t) for t in batch["text"]],
                    [json.loads(str(m)) for m in batch["metadata"]],
                )
            done += len(ids_done)
            if progress is not None:
                progress(done, len(todo))
    except (O1RagError, KeyboardInterrupt):
        raise
    except Exception as exc:  # a worker's error arrives wrapped by Ray; show its own message
        cause = getattr(exc, "cause", None) or exc
        if isinstance(cause, O1RagError):
            raise cause from None
        raise StoreError(f"indexing on Ray failed: {cause}") from None
    seconds = time.perf_counter() - started
    logger.info("indexed %d documents on Ray in %.1fs", done, seconds)
    report.seconds = seconds
    return report
