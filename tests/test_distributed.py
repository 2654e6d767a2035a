"""Training on several processes (``torchrun``, gloo backend on a CPU), checked against one process.

Both ranks train on their half of each global batch; queries and documents are gathered across ranks, so
the gradient of one optimizer step equals that of a single process over the same global batch. Rank 0
alone writes the adapter; a run whose rank 1 dies after a checkpoint resumes (through the CLI, as the README
tells a user to) and ends with the same weights as an uninterrupted run.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from o1_rag.testing import build_tiny_encoder

pytestmark = pytest.mark.distributed

HELPER = Path(__file__).with_name("distributed_train.py")
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]


@pytest.fixture(scope="module")
def train_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    topics = ["aspirin", "insulin", "coffee", "sleep", "statins", "smoking", "exercise", "vitamin"]
    rows = [
        {
            "query": f"what does {t} do?",
            "thought": f"{t} affects health and {t} matters",
            "positives": [f"A study of {t}."],
            "negatives": [f"Unrelated text {t} {j}." for j in range(2)],
        }
        for t in topics
    ]
    path = tmp_path_factory.mktemp("data") / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="module")
def deterministic_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny encoder without dropout, so two runs over the same batches compute the same gradients."""
    return build_tiny_encoder(tmp_path_factory.mktemp("encoder"), dropout=0.0)


def _recipe(
    kind: str,
    folder: Path,
    model: Path,
    encoder: Path,
    data: Path,
    batch: int,
    steps: int,
    save: int,
    accumulation: int = 1,
) -> Path:
    """A recipe file of either trainer; 8 examples, no dropout, no randomly replaced samples."""
    training = (
        f'[training]\noutput_dir = "{folder / "out"}"\nlearning_rate = 0.005\nmax_steps = {steps}\n'
        f"batch_size = {batch}\nwarmup_ratio = 0.0\nlogging_steps = 1\nsave_steps = {save}\n"
        'device = "cpu"\n'
    )
    if accumulation > 1:
        training += f"gradient_accumulation = {accumulation}\n"
    lora = "[lora]\nr = 4\nalpha = 8\ndropout = 0.0\n"
    if kind == "joint":
        head = (
            f'[model]\nbase = "{model}"\n[data]\ntrain_files = ["{data}"]\ngroup_size = 3\n'
            "[loss]\nvq_share = 0.0\n"
        )
    else:
        head = (
            f'[encoder]\nbase = "{encoder}"\n[thinker]\nthinker = "{model}"\nmax_new_tokens = 8\n'
            f'[data]\ntrain_files = ["{data}"]\nquery_only_share = 0.25\n'
        )
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "recipe.toml"
    path.write_text(head + lora + training)
    return path


def _launch(args: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(args, capture_output=True, text=True, timeout=600)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return done


def _helper(kind: str, recipe: Path, *extra: str) -> list[str]:
    return [str(HELPER), str(recipe), *(["--encoder"] if kind == "encoder" else []), *extra]


def _adapter(kind: str, folder: Path) -> dict[str, torch.Tensor]:
    out = folder / "out" / ("final" if kind == "encoder" else "")
    return load_file(out / "adapter_model.safetensors")


def _first_log(folder: Path) -> dict[str, float]:
    state = json.loads((folder / "out" / "checkpoint-1" / "trainer_state.json").read_text())
    return next(h for h in state["log_history"] if "loss" in h)


@pytest.mark.parametrize("kind", ["joint", "encoder"])
def test_two_ranks_give_the_gradient_of_one_process(
    kind: str, tmp_path: Path, tiny_model_dir: Path, deterministic_encoder: Path, train_file: Path
) -> None:
    paths = (tiny_model_dir, deterministic_encoder, train_file)
    one = _recipe(kind, tmp_path / "one", *paths, batch=4, steps=1, save=1)
    two = _recipe(kind, tmp_path / "two", *paths, batch=2, steps=1, save=1)  # 2 ranks x 2 = the same 4
    _launch([sys.executable, *_helper(kind, one, "--dump-grads", str(tmp_path / "one.safetensors"))])
    _launch([*TORCHRUN, *_helper(kind, two, "--dump-grads", str(tmp_path / "two.safetensors"))])
    single, ranks = load_file(tmp_path / "one.safetensors"), load_file(tmp_path / "two.safetensors")
    assert single.keys() == ranks.keys() and len(single) > 4
    assert any(float(g.abs().max()) > 0 for g in single.values())
    for name, grad in single.items():
        torch.testing.assert_close(ranks[name], grad, rtol=1e-4, atol=1e-7, msg=name)
    logged_one, logged_two = _first_log(tmp_path / "one"), _first_log(tmp_path / "two")
    for key in ("loss", "grad_norm", "loss_contrastive", "loss_lm"):  # the LM part: mean over all tokens
        if key in logged_one:
            assert logged_two[key] == pytest.approx(logged_one[key], rel=1e-4), key


def test_gradient_accumulation_gives_the_gradient_of_the_whole_batch(
    tmp_path: Path, tiny_model_dir: Path, deterministic_encoder: Path, train_file: Path
) -> None:
    """Two micro-batches of 2 accumulate to the gradient of one batch of 4 (InfoNCE within each micro-batch
    differs, so only the LM part is compared: lambda 0)."""
    paths = (tiny_model_dir, deterministic_encoder, train_file)
    whole = _recipe("joint", tmp_path / "whole", *paths, batch=4, steps=1, save=1)
    parts = _recipe("joint", tmp_path / "parts", *paths, batch=2, steps=1, save=1, accumulation=2)
    for recipe in (whole, parts):
        recipe.write_text(recipe.read_text().replace("[loss]\n", "[loss]\nlam = 0.0\n"))
        _launch([sys.executable, *_helper("joint", recipe, "--dump-grads", str(recipe.with_suffix(".st")))])
    a, b = load_file(whole.with_suffix(".st")), load_file(parts.with_suffix(".st"))
    for name, grad in a.items():
        torch.testing.assert_close(b[name], grad, rtol=1e-4, atol=1e-7, msg=name)
    logged_whole = _first_log(tmp_path / "whole")
    logged_parts = _first_log(tmp_path / "parts")
    for key in ("loss", "loss_lm", "grad_norm"):  # grad_norm is taken before clipping
        assert logged_parts[key] == pytest.approx(logged_whole[key], rel=1e-4), key


@pytest.mark.parametrize("kind", ["joint", "encoder"])
def test_killed_rank_resumes_to_the_same_weights(
    kind: str, tmp_path: Path, tiny_model_dir: Path, deterministic_encoder: Path, train_file: Path
) -> None:
    paths = (tiny_model_dir, deterministic_encoder, train_file)
    whole = _recipe(kind, tmp_path / "whole", *paths, batch=2, steps=4, save=2)
    killed = _recipe(kind, tmp_path / "killed", *paths, batch=2, steps=4, save=2)
    _launch([*TORCHRUN, *_helper(kind, whole)])
    crashed = _launch([*TORCHRUN, *_helper(kind, killed, "--crash-after-save", "2")], check=False)
    assert crashed.returncode != 0
    out = tmp_path / "killed" / "out"
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-2"]
    assert not (out / ("final" if kind == "encoder" else "adapter_model.safetensors")).exists()
    command = "train" if kind == "joint" else "train-encoder"
    resumed = _launch([*TORCHRUN, "-m", "o1_rag.cli", command, "--config", str(killed), "--resume", "-v"])
    log = resumed.stdout + resumed.stderr
    assert "process 0 resumes" in log and "process 1 resumes" in log
    assert log.count("wrote the adapter at step 4") == 1 and "process 0 of 2 wrote" in log
    state = json.loads((out / "checkpoint-4" / "trainer_state.json").read_text())
    assert [h["step"] for h in state["log_history"] if "loss" in h] == [1, 2, 3, 4]
    a, b = _adapter(kind, tmp_path / "whole"), _adapter(kind, tmp_path / "killed")
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(b[name], a[name], rtol=1e-5, atol=1e-7, msg=name)
