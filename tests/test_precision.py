"""Encoder precision: bfloat16 autocast where the hardware computes it natively, float32 otherwise; the
vectors of the two agree, so one index serves both."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from o1_rag import causal_lm
from o1_rag.causal_lm import pick_precision
from o1_rag.cli import app
from o1_rag.embedder import O1Embedder
from o1_rag.encoders import SentenceTransformerEncoder
from o1_rag.evaluation.bench import precision_row

DOCS = [
    "Aspirin lowers the risk of blood clots after surgery.",
    "Sleep consolidates memory in the hippocampus.",
    "Coffee intake and the risk of type 2 diabetes: a cohort study of 40,000 adults over ten years.",
]


def test_pick_precision(monkeypatch: pytest.MonkeyPatch) -> None:
    assert pick_precision("float32", "cpu") is None
    assert pick_precision("bfloat16", "cpu") is torch.bfloat16
    monkeypatch.setattr(causal_lm, "native_bf16", lambda device: True)
    assert pick_precision("auto", "cpu") is torch.bfloat16
    monkeypatch.setattr(causal_lm, "native_bf16", lambda device: False)
    assert pick_precision("auto", "cpu") is None
    with pytest.raises(ValueError, match="unknown precision 'fp16': use auto, float32, bfloat16"):
        pick_precision("fp16", "cpu")


def test_native_bf16_follows_the_cpu_probes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False, raising=False)
    assert not causal_lm.native_bf16("cpu")
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True, raising=False)
    assert causal_lm.native_bf16("cpu")
    assert not causal_lm.native_bf16("mps")


def test_sentence_transformer_bfloat16_agrees_with_float32(tiny_encoder_dir: Path) -> None:
    fp = SentenceTransformerEncoder(str(tiny_encoder_dir), device="cpu", precision="float32")
    bf = SentenceTransformerEncoder(str(tiny_encoder_dir), device="cpu", precision="bfloat16")
    assert fp.compute_dtype is None and bf.compute_dtype is torch.bfloat16
    a, b = fp.embed_documents(DOCS), bf.embed_documents(DOCS)
    assert b.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(b, axis=1), 1.0, rtol=1e-5)
    assert not np.array_equal(a, b)  # computed in bfloat16 ...
    assert np.min(np.sum(a * b, axis=1)) > 0.99  # ... in the same space
    v_q, v_t = bf.embed_pairs(["aspirin"], ["clots"])
    assert np.min(np.sum(v_q * fp.embed_queries(["aspirin"]), axis=1)) > 0.99
    assert np.min(np.sum(v_t * fp.embed_documents(["aspirin clots"]), axis=1)) > 0.99
    assert fp.fingerprint_fields == bf.fingerprint_fields  # one index serves both


def test_joint_model_bfloat16_agrees_with_float32(tiny_model_dir: Path) -> None:
    def load(precision: str) -> O1Embedder:
        return O1Embedder.from_pretrained(
            str(tiny_model_dir), thinker=False, device="cpu", precision=precision, cache=False
        )

    fp, bf = load("float32"), load("bfloat16")
    a, b = fp.embed_documents(DOCS), bf.embed_documents(DOCS)
    assert not np.array_equal(a, b)
    assert np.min(np.sum(a * b, axis=1)) > 0.99
    assert fp.fingerprint == bf.fingerprint


def test_unknown_precision_is_a_one_line_error() -> None:
    with pytest.raises(ValueError, match="unknown precision 'half'"):
        O1Embedder.from_pretrained("o1-minilm", precision="half", cache=False)
    result = CliRunner().invoke(app, ["search", "aspirin", "--precision", "half"])
    assert result.exit_code == 2 and "half" in result.output and "Traceback" not in result.output


def test_bench_precision_row(tiny_encoder_dir: Path) -> None:
    def load(precision: str) -> O1Embedder:
        return O1Embedder.from_pretrained(
            "o1-minilm",
            encoder=str(tiny_encoder_dir),
            thinker=False,
            device="cpu",
            precision=precision,
            cache=False,
        )

    emb = load("bfloat16")
    row = precision_row(emb, DOCS * 4)
    assert re.fullmatch(r"encode docs/s: bfloat16 vs float32 \(least cosine (0\.99|1\.00)\d+\)", row.measure)
    assert float(row.value) > 0 and float(row.baseline) > 0 and row.ratio.endswith("x")
    assert emb.encoder.compute_dtype is torch.bfloat16  # the float32 run leaves the encoder as it was
    assert precision_row(load("float32"), DOCS).ratio == "1.00"


def test_reports_say_whether_auto_encodes_in_bfloat16(monkeypatch: pytest.MonkeyPatch) -> None:
    from o1_rag.evaluation.report import environment, provenance

    monkeypatch.setattr(causal_lm, "native_bf16", lambda device: True)
    env = environment()
    assert env["native_bfloat16"] is True
    assert "(`--precision auto` encodes in bfloat16)" in provenance("o1rag eval ir x", env)
    monkeypatch.setattr(causal_lm, "native_bf16", lambda device: False)
    assert "(`--precision auto` encodes in float32)" in provenance("o1rag eval ir x", environment())
    del env["native_bfloat16"]  # a report written before the field existed
    assert "bfloat16" not in provenance("o1rag eval ir x", env)


def test_a_model_without_bfloat16_kernels_falls_back_to_float32(
    tiny_encoder_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    class NoBf16:
        """Stands in for a model with an operation that has no bfloat16 kernel on this device."""

        device = torch.device("cpu")
        max_seq_length = 16
        calls = 0

        def get_sentence_embedding_dimension(self) -> int:
            return 4

        def encode(self, texts: list[str], **kwargs: object) -> np.ndarray:
            NoBf16.calls += 1
            if torch.is_autocast_enabled("cpu"):
                raise RuntimeError("\"addmm_impl_cpu_\" not implemented for 'BFloat16'")
            return np.tile(np.array([1.0, 0.0, 0.0, 0.0], dtype=np.float32), (len(texts), 1))

    enc = SentenceTransformerEncoder(str(tiny_encoder_dir), model=NoBf16(), precision="bfloat16")
    with caplog.at_level("WARNING"):
        vectors = enc.embed_documents(["a", "b"])
    assert vectors.shape == (2, 4) and enc.compute_dtype is None and NoBf16.calls == 2
    assert "cannot compute in bfloat16" in caplog.text
    assert enc.embed_documents(["c"]).shape == (1, 4) and NoBf16.calls == 3  # float32 from then on
    other = RuntimeError("CUDA out of memory")  # any other error is the caller's to see

    def boom() -> None:
        raise other

    enc.compute_dtype = torch.bfloat16
    with pytest.raises(RuntimeError, match="out of memory"):
        enc.forward(boom)


def test_bench_thinker_precision_row(tiny_encoder_dir: Path, tiny_model_dir: Path) -> None:
    from o1_rag.evaluation.bench import thinker_precision_row
    from o1_rag.thinkers import LMThinker, ThinkParams

    encoder = SentenceTransformerEncoder(str(tiny_encoder_dir), device="cpu")
    params = ThinkParams(num_thoughts=2, max_new_tokens=3, seed=0, temperature=0.1, top_p=0.9)
    fast = O1Embedder(encoder, LMThinker.from_pretrained(str(tiny_model_dir), precision="bfloat16"))
    row = thinker_precision_row(fast, ["aspirin", "sleep"], params)
    assert row.measure == "think 1 query x 2 thoughts: bfloat16 vs float32 weights"
    assert row.value.endswith(" s") and row.baseline.endswith(" s") and row.ratio.endswith("x faster")
    assert fast.thinker.model.dtype == torch.bfloat16  # the float32 run leaves the thinker as it was
    slow = O1Embedder(encoder, LMThinker.from_pretrained(str(tiny_model_dir), precision="float32"))
    assert thinker_precision_row(slow, ["aspirin"], params).ratio == "1.00"
