"""The scale-out suites of ``o1rag bench`` (see ``o1_rag.evaluation.bench_run``): ``train`` (the cost of one
training step of the joint objective, and of its single forward against separate forwards), ``ray``
(indexing with Ray actors against one process) and ``lexical`` (the BM25 side's rebuild after a change)."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from pathlib import Path

import torch

from o1_rag.data import Document
from o1_rag.embedder import O1Embedder
from o1_rag.evaluation.bench import Row, timed
from o1_rag.indexing import index_documents
from o1_rag.store import O1Collection, open_client


def _saved_bytes(step: Callable[[], torch.Tensor]) -> tuple[torch.Tensor, int]:
    """Run ``step`` (a forward returning a loss) and count the bytes autograd keeps for backward."""
    seen: dict[tuple[int, int], int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        key = (t.untyped_storage().data_ptr(), t.untyped_storage().nbytes())
        seen[key] = key[1]
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = step()
    return loss, sum(seen.values())


def bench_training(
    model: str, queries: list[str], docs: list[Document], device: str, reps: int = 3
) -> list[Row]:
    """Training-step throughput and the joint-forward saving (time and activation memory)."""
    from o1_rag.encoders import backbone as _backbone
    from o1_rag.generation import pad_sequences
    from o1_rag.pooling import gather_positions, marker_positions
    from o1_rag.prompts import O1Format
    from o1_rag.training.data import O1Collator
    from o1_rag.training.joint import build_model
    from o1_rag.training.losses import thought_lm_loss
    from o1_rag.training.recipe import Recipe
    from o1_rag.training.trainer import O1LossConfig, lm_head, o1_loss

    recipe = Recipe(base=model, device=device, dropout=0.0)
    peft_model, tokenizer = build_model(recipe)
    fmt = O1Format(tokenizer, recipe.max_query_tokens, 64, 128)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    n = 8
    examples = [
        {
            "query": q,
            "thought": docs[i % len(docs)].text[:300],
            "positives": [docs[i % len(docs)].full_text()],
            "negatives": [docs[(i + 1) % len(docs)].full_text()],
        }
        for i, q in enumerate(queries[:n])
    ]
    batch = O1Collator(fmt, pad, group_size=2, vq_share=0.1)(examples)
    dev = next(peft_model.parameters()).device
    batch = {k: v.to(dev) for k, v in batch.items()}
    loss_config = O1LossConfig(fmt.emb_id, group_size=2)
    tokens = int(batch["attention_mask"].sum() + batch["doc_attention_mask"].sum())

    def full_step() -> None:
        peft_model.zero_grad(set_to_none=True)
        o1_loss(peft_model, batch, loss_config)[0].total.backward()

    full_step()  # warm-up
    step_s = min(timed(full_step) for _ in range(reps))

    ids, mask, labels = batch["input_ids"], batch["attention_mask"], batch["labels"]
    q_only = [fmt.query_prefix(e["query"]) for e in examples]
    q_ids, q_mask = pad_sequences(q_only, pad, "right", dev)
    backbone, head = _backbone(peft_model), lm_head(peft_model)

    def lm_of(hidden: torch.Tensor) -> torch.Tensor:
        targets = labels[:, 1:]
        keep = targets != -100
        return thought_lm_loss(head(hidden[:, :-1][keep]), targets[keep])

    def joint() -> torch.Tensor:
        hidden = backbone(input_ids=ids, attention_mask=mask).last_hidden_state
        where = marker_positions(ids, mask, fmt.emb_id)
        v = gather_positions(hidden, where[:, 0]) + gather_positions(hidden, where[:, 1])
        return lm_of(hidden) + v.float().pow(2).mean()

    def separate() -> torch.Tensor:
        lm = lm_of(backbone(input_ids=ids, attention_mask=mask).last_hidden_state)
        hidden = backbone(input_ids=ids, attention_mask=mask).last_hidden_state
        v_t = gather_positions(hidden, marker_positions(ids, mask, fmt.emb_id)[:, 1])
        q_hidden = backbone(input_ids=q_ids, attention_mask=q_mask).last_hidden_state
        v_q = gather_positions(q_hidden, marker_positions(q_ids, q_mask, fmt.emb_id)[:, 0])
        return lm + (v_q + v_t).float().pow(2).mean()

    def measure(fn: Callable[[], torch.Tensor]) -> tuple[float, int]:
        def once() -> int:
            peft_model.zero_grad(set_to_none=True)
            loss, saved = _saved_bytes(fn)
            loss.backward()
            return saved

        saved = once()
        return min(timed(once) for _ in range(reps)), saved

    joint_s, joint_mem = measure(joint)
    sep_s, sep_mem = measure(separate)
    mib = 1024 * 1024
    return [
        Row(
            f"training step, {n} queries + {2 * n} docs (fwd+bwd, tokens/s)",
            f"{tokens / step_s:.0f}",
            "",
            "",
        ),
        Row(
            f"query side fwd+bwd: joint single forward vs separate (s, {n} queries)",
            f"{joint_s:.2f}",
            f"{sep_s:.2f}",
            f"{joint_s / sep_s:.2f}",
            "< 1",
        ),
        Row(
            "query side activation memory saved for backward (MiB): joint vs separate",
            f"{joint_mem / mib:.1f}",
            f"{sep_mem / mib:.1f}",
            f"{joint_mem / sep_mem:.2f}",
            "< 1",
        ),
    ]


def bench_ray(
    emb: O1Embedder,
    docs: list[Document],
    workdir: Path,
    model: str,
    adapter: str | None,
    device: str,
    precision: str = "auto",
    long_documents: str | None = None,
) -> list[Row]:
    """The ray suite (see the module docstring)."""
    import json

    from o1_rag.ray_index import EncoderSpec, connect, index_on_ray

    folder = workdir / "ray-corpus"
    folder.mkdir(exist_ok=True)
    with open(folder / "corpus.jsonl", "w", encoding="utf-8") as handle:
        for d in docs:
            handle.write(json.dumps({"_id": d.id, "title": d.title, "text": d.text}) + "\n")
    client = open_client(workdir / "ray-db")

    def fresh(name: str) -> O1Collection:
        return O1Collection.create_or_open(client, name, emb.fingerprint, emb.dim)

    emb.embed_documents([d.full_text() for d in docs[: emb.batch_size]])  # warm-up
    single = index_documents(emb, fresh("single"), docs, batch_size=32).docs_per_second
    connect("local")
    spec = EncoderSpec(model, adapter, None, device, emb.fingerprint, precision, long_documents)
    rows = [Row("index docs/s, one process (embed + upsert)", f"{single:.2f}", "", "")]
    for actors in (1, 2):
        report = index_on_ray(spec, fresh(f"ray{actors}"), folder, actors=actors, batch_size=32)
        rows.append(
            Row(
                f"index docs/s, Ray {actors} actor(s) (actor start-up included)",
                f"{report.docs_per_second:.2f}",
                f"{single:.2f}",
                f"{report.docs_per_second / single:.2f}x",
                "~1x on 2 cores; scales with nodes",
            )
        )
    return rows


def bench_lexical(docs: list[Document], workdir: Path, repeats: int = 3) -> list[Row]:
    """The BM25 side rebuilt after one document was added to the collection: reusing the saved tokens of
    the unchanged texts against tokenizing every text again (the saved tokens removed first); the median of
    ``repeats`` each, and the first build. Needs no model (the vectors are placeholders)."""
    import numpy as np

    from o1_rag.lexical import sync_lexical
    from o1_rag.lexical_tokens import TOKENS_FILE

    col = O1Collection.create_or_open(open_client(workdir / "lexical-db"), "bench-lexical", "bench", 2)
    for start in range(0, len(docs), 1000):
        part = docs[start : start + 1000]
        vectors = np.ones((len(part), 2), dtype=np.float32)
        col.upsert([d.id for d in part], vectors, [d.full_text() for d in part], [{"title": ""}] * len(part))
    folder = workdir / "lexical"
    first = timed(lambda: sync_lexical(col, folder))
    times: dict[bool, list[float]] = {True: [], False: []}
    for i in range(repeats):
        for reuse in (True, False):
            added = f"An added document, number {i}, {'kept' if reuse else 'dropped'} tokens."
            col.upsert(
                [f"bench-added-{i}-{reuse}"], np.ones((1, 2), dtype=np.float32), [added], [{"title": ""}]
            )
            if not reuse:
                (folder / TOKENS_FILE).unlink()
            times[reuse].append(timed(lambda: sync_lexical(col, folder)))
    kept, every = statistics.median(times[True]), statistics.median(times[False])
    return [
        Row(f"BM25 side: first build, s ({len(docs)} docs)", f"{first:.3f}", "", ""),
        Row(
            "BM25 side rebuilt after 1 added document, s: saved tokens vs tokenizing every text",
            f"{kept:.3f}",
            f"{every:.3f}",
            f"{every / kept:.2f}x faster",
        ),
    ]
