import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import TrainerCallback
from typer.testing import CliRunner

from o1_rag.causal_lm import LoadedModel, load_model
from o1_rag.cli import app
from o1_rag.embedder import O1Embedder
from o1_rag.prompts import EMB, O1Format
from o1_rag.training.data import O1Collator
from o1_rag.training.joint import prepare, save_artifact, train
from o1_rag.training.losses import info_nce, joint_loss
from o1_rag.training.pack import pack_adapter
from o1_rag.training.recipe import Recipe, RecipeError, load_recipe


@pytest.fixture
def train_file(tmp_path: Path) -> Path:
    topics = ["aspirin", "insulin", "coffee", "sleep", "statins", "smoking", "exercise", "vitamin"]
    rows = [
        {
            "query": f"what does {t} do?",
            "thought": f"{t} affects health",
            "positives": [f"A study of {t}."],
            "negatives": [f"Unrelated text {t} {j}." for j in range(2)],
            "candidates": ["x", "y", "z"],
            "teacher": [0.6, 0.3, 0.1],
        }
        for t in topics
    ]
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _recipe(tiny_model_dir: Path, train_file: Path, out: Path, **kw) -> Recipe:
    base = {
        "base": str(tiny_model_dir),
        "train_files": [str(train_file)],
        "group_size": 3,
        "batch_size": 4,
        "max_steps": 2,
        "output_dir": str(out),
        "logging_steps": 1,
        "save_steps": 1,
        "r": 4,
        "alpha": 8,
        "learning_rate": 5e-3,
        "warmup_ratio": 0.0,
        "device": "cpu",
    }
    return Recipe(**{**base, **kw})


def test_info_nce_matches_hand_computation() -> None:
    q = torch.nn.functional.normalize(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), dim=-1)
    d = torch.nn.functional.normalize(torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [1.0, -1.0]]), dim=-1)
    t = 0.5
    s = (q @ d.T / t).tolist()
    expected = (
        -(s[0][0] - math.log(sum(math.exp(x) for x in s[0])))
        - (s[1][2] - math.log(sum(math.exp(x) for x in s[1])))
    ) / 2
    assert float(info_nce(q, d, group_size=2, temperature=t)) == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError, match="documents for"):
        info_nce(q, d[:3], group_size=2, temperature=t)
    parts = joint_loss(torch.tensor(2.0), torch.tensor(4.0), lam=0.8)
    assert float(parts.total) == pytest.approx(0.8 * 2 + 0.2 * 4)


def test_labels_cover_only_the_thought(tiny_model_dir: Path) -> None:
    loaded = load_model(str(tiny_model_dir), device="cpu")
    fmt = O1Format(loaded.tokenizer)
    collator = O1Collator(fmt, loaded.tokenizer.eos_token_id, group_size=2, vq_share=0.0)
    batch = collator([{"query": "what is aspirin", "thought": "a drug", "positives": ["p"], "negatives": []}])
    ids, labels = batch["input_ids"][0].tolist(), batch["labels"][0].tolist()
    thought = loaded.tokenizer("a drug", add_special_tokens=False)["input_ids"]
    labelled = [tok for tok, lab in zip(ids, labels, strict=True) if lab != -100]
    assert labelled == [*thought, loaded.tokenizer.eos_token_id]
    assert labels[-1] == -100 and ids[-1] == fmt.emb_id
    assert batch["doc_input_ids"].shape[0] == 2 and not batch["use_vq"].any()


def test_two_steps_train_lora_and_markers_only(
    tiny_model_dir: Path, train_file: Path, tmp_path: Path
) -> None:
    recipe = _recipe(tiny_model_dir, train_file, tmp_path / "out", kl_weight=0.1)
    trainer, tokenizer, n = prepare(recipe)
    model = trainer.model
    emb_row = tokenizer.convert_tokens_to_ids(EMB)
    frozen = {k: v.detach().clone() for k, v in model.named_parameters() if "q_proj.base_layer" in k}
    lora = {k: v.detach().clone() for k, v in model.named_parameters() if "lora_B" in k}
    delta = {k: v.detach().clone() for k, v in model.named_parameters() if "trainable_tokens" in k}
    assert (
        frozen
        and lora
        and delta
        and all(not v.requires_grad for k, v in model.named_parameters() if k in frozen)
    )
    trainer.train()
    logs = [h for h in trainer.state.log_history if "loss_lm" in h]
    assert logs and all(
        math.isfinite(h[k]) for h in logs for k in ("loss", "loss_lm", "loss_contrastive", "loss_kl")
    )
    params = dict(model.named_parameters())
    assert all(torch.equal(params[k], v) for k, v in frozen.items())
    assert any(not torch.equal(params[k], v) for k, v in lora.items())
    assert any(not torch.equal(params[k], v) for k, v in delta.items())

    # save -> reload through the normal loading path gives the embeddings of the trained model
    model.eval()
    trained = O1Embedder.from_loaded(  # float32 on both sides: an exact reload check
        LoadedModel(model, tokenizer, "trained"), think_mode="native", precision="float32"
    )
    docs = ["A study of aspirin.", "Unrelated text."]
    before = trained.embed_documents(docs)
    queries = trained.embed_query_pair(["what does coffee do?"], ["coffee affects health"])[1]
    folder = save_artifact(trainer, tokenizer, recipe, n, 1.0)
    assert {"adapter_config.json", "adapter_model.safetensors", "o1_config.json", "README.md"} <= {
        p.name for p in folder.iterdir()
    }
    assert not (folder / "training_args.bin").exists()
    assert (folder / "adapter_model.safetensors").stat().st_size < 2_000_000  # no full embedding matrix
    reloaded = O1Embedder.from_pretrained(
        str(tiny_model_dir), str(folder), device="cpu", precision="float32", cache=False
    )
    assert reloaded.think_mode == "native" and emb_row == reloaded.encoder.format.emb_id
    np.testing.assert_allclose(reloaded.embed_documents(docs), before, atol=1e-5)
    np.testing.assert_allclose(
        reloaded.embed_query_pair(["what does coffee do?"], ["coffee affects health"])[1], queries, atol=1e-5
    )

    # the shipped form: float16 weights, no tokenizer files, same embeddings within float16 rounding
    packed = pack_adapter(folder, tmp_path / "packed")
    assert {p.name for p in packed.iterdir()} == {
        "adapter_config.json",
        "adapter_model.safetensors",
        "o1_config.json",
        "README.md",
    }
    assert packed.joinpath("adapter_model.safetensors").stat().st_size < 0.6 * (
        folder.joinpath("adapter_model.safetensors").stat().st_size
    )
    small = O1Embedder.from_pretrained(str(tiny_model_dir), str(packed), device="cpu", cache=False)
    assert small.encoder.format.emb_id == emb_row and small.think_mode == "native"
    np.testing.assert_allclose(small.embed_documents(docs), before, atol=2e-2)
    chat = O1Embedder.from_pretrained(
        str(tiny_model_dir), str(pack_adapter(folder, tmp_path / "chat", think_mode="chat")), device="cpu"
    )
    assert chat.think_mode == "chat" and chat.fingerprint == small.fingerprint  # same index serves both
    with pytest.raises(RecipeError, match="think_mode must be one of"):
        pack_adapter(folder, tmp_path / "bad", think_mode="loud")
    with pytest.raises(RecipeError, match="query_weight must be in"):
        pack_adapter(folder, tmp_path / "bad", query_weight=1.5)
    assert not (tmp_path / "bad").exists()

    # a default query weight: recorded in the config and the card (once, even when packed again)
    mixed_dir = pack_adapter(folder, tmp_path / "mixed", think_mode="native", query_weight=0.25)
    mixed_dir = pack_adapter(mixed_dir, mixed_dir, query_weight=0.3, repetition_penalty=1.2)
    card = mixed_dir.joinpath("README.md").read_text()
    assert card.count("Default query weight") == 1 and "0.3." in card
    assert card.count("Default think mode") == 1 and "Default repetition penalty of thoughts: 1.2." in card
    mixed = O1Embedder.from_pretrained(str(tiny_model_dir), str(mixed_dir), device="cpu", cache=False)
    assert (
        mixed.query_weight == 0.3 and mixed.think_mode == "native" and mixed.thinker.repetition_penalty == 1.2
    )
    assert mixed.fingerprint == small.fingerprint  # documents are embedded the same
    assert small.query_weight == 0.0 and small.thinker.repetition_penalty == 1.0
    with pytest.raises(RecipeError, match="repetition_penalty must be > 0"):
        pack_adapter(folder, tmp_path / "bad", repetition_penalty=0.0)
    assert (
        O1Embedder.from_pretrained(
            str(tiny_model_dir), str(mixed_dir), device="cpu", cache=False, query_weight=0.0
        ).query_weight
        == 0.0
    )
    with pytest.raises(RecipeError, match="no adapter_model.safetensors"):
        pack_adapter(tmp_path, tmp_path / "x")


class StopAfterFirstStep(TrainerCallback):
    def on_save(self, args, state, control, **kwargs):
        if state.global_step == 1:
            raise KeyboardInterrupt  # a kill right after the first checkpoint


def test_killed_run_resumes_from_checkpoint(tiny_model_dir: Path, train_file: Path, tmp_path: Path) -> None:
    recipe = _recipe(tiny_model_dir, train_file, tmp_path / "out", max_steps=3)
    with pytest.raises(KeyboardInterrupt):
        train(recipe, callbacks=[StopAfterFirstStep()])
    assert (tmp_path / "out" / "checkpoint-1").is_dir() and not (
        tmp_path / "out" / "adapter_config.json"
    ).exists()
    train(recipe, resume=True)
    state = json.loads((tmp_path / "out" / "checkpoint-3" / "trainer_state.json").read_text())
    assert state["global_step"] == 3
    steps = [h["step"] for h in state["log_history"] if "loss" in h]
    assert steps == [1, 2, 3]  # step 1 from the first run, then 2 and 3 after resuming
    assert (tmp_path / "out" / "adapter_config.json").is_file()


def test_recipe_errors_and_cli(tmp_path: Path, tiny_model_dir: Path, train_file: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[training]\nlearnig_rate = 1\n")
    with pytest.raises(RecipeError, match="unknown setting 'learnig_rate'"):
        load_recipe(bad)
    result = CliRunner().invoke(app, ["train", "--config", str(bad)])
    assert result.exit_code == 1 and "unknown setting 'learnig_rate' in [training]" in result.output
    bad.write_text('[lora]\nr = "eight"\n[data]\ntrain_files = ["x"]\n')
    with pytest.raises(RecipeError, match="setting 'r' must be int, got str 'eight'"):
        load_recipe(bad)
    bad.write_text('[training]\nlearning_rate = 1\n[data]\ntrain_files = ["x"]\n')
    assert load_recipe(bad).learning_rate == 1  # an integer is a fine float
    good = tmp_path / "good.toml"
    good.write_text(
        f'[model]\nbase = "{tiny_model_dir}"\n[data]\ntrain_files = ["{train_file.name}"]\n'
        "group_size = 3\n[lora]\nr = 4\nalpha = 8\n[training]\nbatch_size = 4\nsave_steps = 100\n"
        'device = "cpu"\n'
    )
    recipe = load_recipe(good, {"output_dir": str(tmp_path / "o"), "max_steps": 1})
    assert recipe.train_files == [str(train_file)] and recipe.max_steps == 1
    result = CliRunner().invoke(
        app, ["train", "--config", str(good), "--output-dir", str(tmp_path / "o"), "--max-steps", "1"]
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "o" / "o1_config.json").is_file()


@pytest.mark.parametrize(
    ("kind", "section", "setting", "message"),
    [
        ("joint", "lora", "r = 0", "r must be >= 1, got 0"),
        ("joint", "lora", "dropout = 1.0", "dropout must be in [0, 1), got 1.0"),
        ("joint", "training", "learning_rate = -0.001", "learning_rate must be > 0, got -0.001"),
        ("joint", "training", "warmup_ratio = 1.5", "warmup_ratio must be in [0, 1], got 1.5"),
        ("joint", "training", "epochs = 0.0", "epochs must be > 0 (or set max_steps), got 0.0"),
        ("joint", "training", "gradient_accumulation = 0", "gradient_accumulation must be >= 1, got 0"),
        ("joint", "training", 'bf16 = "ture"', "bf16 must be one of auto, true, false, yes, no, got 'ture'"),
        ("joint", "loss", "lam = 1.5", "[loss] lam must be in [0, 1], got 1.5"),
        ("joint", "loss", "temperature = 0.0", "[loss] temperature must be > 0, got 0.0"),
        ("joint", "loss", "vq_share = -0.1", "[loss] vq_share must be in [0, 1], got -0.1"),
        ("joint", "data", "max_document_tokens = 0", "max_document_tokens must be >= 1, got 0"),
        ("encoder", "lora", "alpha = 0", "alpha must be >= 1, got 0"),
        ("encoder", "training", "save_steps = 0", "save_steps must be >= 1, got 0"),
        ("encoder", "thinker", "num_thoughts = 0", "num_thoughts must be >= 1, got 0"),
        ("encoder", "thinker", "temperature = -1.0", "[thinker] temperature must be >= 0, got -1.0"),
        ("encoder", "data", "query_only_share = 2.0", "query_only_share must be in [0, 1], got 2.0"),
    ],
)
def test_recipe_values_out_of_range_are_one_line_errors(
    kind: str, section: str, setting: str, message: str, tmp_path: Path
) -> None:
    from o1_rag.training.encoder import load_encoder_recipe

    extra = f"{setting}\n" if section == "data" else f"[{section}]\n{setting}\n"
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(f'[data]\ntrain_files = ["x.jsonl"]\n{extra}')
    with pytest.raises(RecipeError, match=re.escape(f"{recipe}: {message}")):
        (load_recipe if kind == "joint" else load_encoder_recipe)(recipe)
    command = "train" if kind == "joint" else "train-encoder"
    result = CliRunner().invoke(app, [command, "--config", str(recipe)])
    assert result.exit_code == 1 and message in result.output and "Traceback" not in result.output


def test_each_recipe_keeps_its_own_defaults_and_sections(tmp_path: Path) -> None:
    from o1_rag.training.encoder import EncoderRecipe, load_encoder_recipe

    joint, encoder = Recipe(), EncoderRecipe()
    assert (joint.r, joint.batch_size, joint.output_dir) == (32, 8, "runs/o1")
    assert (encoder.r, encoder.batch_size, encoder.output_dir) == (16, 32, "runs/o1-minilm-encoder")
    assert "q_proj" in joint.target_modules and "query" in encoder.target_modules
    recipe = tmp_path / "recipe.toml"
    recipe.write_text('[data]\ntrain_files = ["x.jsonl"]\n[loss]\nlam = 0.5\n')
    assert load_recipe(recipe).lam == 0.5
    with pytest.raises(RecipeError, match=r"unknown section \[loss\]"):
        load_encoder_recipe(recipe)
    recipe.write_text('[data]\ntrain_files = ["x.jsonl"]\n[lora]\nbatch_size = 4\n')
    with pytest.raises(
        RecipeError, match=r"unknown setting 'batch_size' in \[lora\] \(it belongs in \[training\]\)"
    ):
        load_recipe(recipe)


@pytest.mark.parametrize("name", ["smollm2-cpu.toml", "qwen2.5-7b-msmarco.toml", "minilm-cpu.toml"])
def test_shipped_recipes_read(name: str) -> None:
    from o1_rag.training.encoder import load_encoder_recipe

    path = Path(__file__).parent.parent / "train" / name
    recipe = (load_encoder_recipe if name.startswith("minilm") else load_recipe)(path)
    assert recipe.train_files and all(Path(f).is_absolute() for f in recipe.train_files)


def test_names_moved_out_of_recipe_are_still_importable_from_it() -> None:
    import o1_rag.training.recipe as recipe_module
    from o1_rag.training.recipe import pack_adapter as moved_pack
    from o1_rag.training.recipe import train as moved_train

    assert moved_train is train and moved_pack is pack_adapter
    with pytest.raises(AttributeError, match="no attribute 'check_shared'"):
        recipe_module.check_shared  # noqa: B018 (replaced by TrainingRecipe.check)
