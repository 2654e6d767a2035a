"""Training recipes (TOML) and the training run behind ``o1rag train``."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from o1_rag.compat import peft_quietly
from o1_rag.errors import O1RagError
from o1_rag.files import atomic_write, read_structured

logger = logging.getLogger(__name__)


class RecipeError(O1RagError):
    """A recipe file is missing, malformed or names unknown settings."""


@dataclass
class Recipe:
    """Everything a training run needs; each TOML section maps to a group of these fields."""

    # [model]
    base: str = "smollm2-135m-instruct"
    # [data]
    train_files: list[str] = field(default_factory=list)
    data_root: str = ""  # folder of BEIR collections that ids-only training files name
    group_size: int = 8
    max_query_tokens: int = 32
    max_thought_tokens: int = 224
    max_document_tokens: int = 192
    # [lora]
    r: int = 32
    alpha: int = 64
    dropout: float = 0.1
    target_modules: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    )
    # [loss]
    temperature: float = 0.02
    lam: float = 0.8
    vq_share: float = 0.1
    kl_weight: float = 0.0
    # [training]
    output_dir: str = "runs/o1"
    learning_rate: float = 1e-4
    epochs: float = 1.0
    max_steps: int = -1
    batch_size: int = 8
    gradient_accumulation: int = 1
    warmup_ratio: float = 0.05
    logging_steps: int = 10
    save_steps: int = 100
    save_total_limit: int = 2
    gradient_checkpointing: bool = True
    bf16: str = "auto"
    seed: int = 0
    device: str = "auto"
    deepspeed: str = ""  # a DeepSpeed config json (ZeRO) for multi-GPU runs


SECTIONS = ("model", "data", "lora", "loss", "training")


def read_recipe(
    path: str | Path, cls: type, sections: tuple[str, ...], overrides: dict[str, Any] | None = None
) -> Any:
    """A ``cls`` dataclass from a TOML file whose sections group its fields; unknown sections and keys
    are errors (a typo must not be silently ignored); ``train_files`` and ``data_root`` are made relative
    to the file."""
    path = Path(path)
    if not path.is_file():
        raise RecipeError(f"{path}: recipe not found")
    raw = read_structured(path, RecipeError, toml=True)
    known = {f.name for f in fields(cls)}
    values: dict[str, Any] = {}
    for section, table in raw.items():
        if section not in sections or not isinstance(table, dict):
            raise RecipeError(f"{path}: unknown section [{section}] (use {', '.join(sections)})")
        for key, value in table.items():
            if key not in known:
                raise RecipeError(f"{path}: unknown setting '{key}' in [{section}]")
            values[key] = value
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    for f in fields(cls):
        if f.name not in values:
            continue
        default = f.default if f.default is not MISSING else f.default_factory()  # type: ignore[misc]
        expected = float if isinstance(default, float) else type(default)
        value = values[f.name]
        ok = isinstance(value, (int, float)) if expected is float else isinstance(value, expected)
        if isinstance(value, bool) and expected is not bool:
            ok = False
        if not ok:
            raise RecipeError(
                f"{path}: setting '{f.name}' must be {expected.__name__}, "
                f"got {type(value).__name__} {value!r}"
            )
    try:
        recipe = cls(**values)
    except TypeError as exc:
        raise RecipeError(f"{path}: {exc}") from None
    base_dir = path.parent
    recipe.train_files = [str(p if Path(p).is_absolute() else (base_dir / p)) for p in recipe.train_files]
    if recipe.data_root and not Path(recipe.data_root).is_absolute():
        recipe.data_root = str(base_dir / recipe.data_root)
    return recipe


SHARED_COUNTS = ("batch_size", "r", "alpha", "logging_steps", "save_steps", "save_total_limit")


def check_shared(
    recipe: Any, where: str, counts: tuple[str, ...] = (), more: list[tuple[bool, str]] | None = None
) -> None:
    """The ranges of what both recipes have (``[data] train_files``, ``[lora]``, ``[training]``), then the
    recipe's own: ``counts`` (settings that must be >= 1) and ``more`` (``(ok, message)`` pairs). The first
    value out of range is a one-line ``RecipeError`` naming ``where`` (the file), before any model loads.
    """
    checks = [(bool(recipe.train_files), "[data] train_files is empty")]
    checks += [
        (getattr(recipe, name) >= 1, f"{name} must be >= 1, got {getattr(recipe, name)}")
        for name in SHARED_COUNTS + counts
    ]
    checks += [
        (0.0 <= recipe.dropout < 1.0, f"dropout must be in [0, 1), got {recipe.dropout}"),
        (recipe.learning_rate > 0, f"learning_rate must be > 0, got {recipe.learning_rate}"),
        (0.0 <= recipe.warmup_ratio <= 1.0, f"warmup_ratio must be in [0, 1], got {recipe.warmup_ratio}"),
        (
            recipe.max_steps > 0 or recipe.epochs > 0,
            f"epochs must be > 0 (or set max_steps), got {recipe.epochs}",
        ),
        *(more or []),
    ]
    problem = next((message for ok, message in checks if not ok), None)
    if problem is not None:
        raise RecipeError(f"{where}: {problem}")


BF16_CHOICES = ("auto", "true", "false", "yes", "no")


def load_recipe(path: str | Path, overrides: dict[str, Any] | None = None) -> Recipe:
    """Read a TOML recipe of the joint model; unknown sections and keys, wrong types and values out of
    range are errors."""
    recipe = read_recipe(path, Recipe, SECTIONS, overrides)
    counts = (
        "group_size",
        "gradient_accumulation",
        "max_query_tokens",
        "max_thought_tokens",
        "max_document_tokens",
    )
    loss = [
        (recipe.temperature > 0, f"[loss] temperature must be > 0, got {recipe.temperature}"),
        (0.0 <= recipe.lam <= 1.0, f"[loss] lam must be in [0, 1], got {recipe.lam}"),
        (0.0 <= recipe.vq_share <= 1.0, f"[loss] vq_share must be in [0, 1], got {recipe.vq_share}"),
        (recipe.kl_weight >= 0, f"[loss] kl_weight must be >= 0, got {recipe.kl_weight}"),
        (recipe.bf16 in BF16_CHOICES, f"bf16 must be one of {', '.join(BF16_CHOICES)}, got '{recipe.bf16}'"),
    ]
    check_shared(recipe, str(path), counts, loss)
    return recipe


def build_model(recipe: Recipe) -> tuple[Any, Any]:
    """Base model with the O1 markers, wrapped with LoRA; only LoRA weights and the marker rows train."""
    from peft import LoraConfig, get_peft_model

    from o1_rag.causal_lm import load_model
    from o1_rag.prompts import O1_TOKENS

    loaded = load_model(recipe.base, device=recipe.device, dtype="float32")
    model, tokenizer = loaded.model, loaded.tokenizer
    marker_ids = [int(tokenizer.convert_tokens_to_ids(t)) for t in O1_TOKENS]
    config = LoraConfig(
        r=recipe.r,
        lora_alpha=recipe.alpha,
        lora_dropout=recipe.dropout,
        target_modules=recipe.target_modules,
        trainable_token_indices=marker_ids,
        task_type="CAUSAL_LM",
    )
    model.train()
    with peft_quietly():
        return get_peft_model(model, config), tokenizer


def model_card(recipe: Recipe, examples: int, history: list[dict[str, Any]], seconds: float) -> str:
    """README of a trained adapter: what it was trained on, with which losses, and how it went."""
    last = next((h for h in reversed(history) if "loss" in h), {})
    return (
        f"# O1 adapter for `{recipe.base}`\n\n"
        "Trained with o1-rag (`o1rag train`): joint behaviour cloning of thoughts (LM loss) and "
        f"contrastive embedding (InfoNCE, temperature {recipe.temperature}, lambda {recipe.lam}, "
        f"{recipe.vq_share:.0%} of samples contrast the query-only embedding, "
        f"KL weight {recipe.kl_weight}).\n\n"
        f"- training data: {', '.join(Path(p).name for p in recipe.train_files)} ({examples} examples), "
        f"group size {recipe.group_size}\n"
        f"- LoRA r={recipe.r}, alpha={recipe.alpha}, dropout={recipe.dropout} on "
        f"{', '.join(recipe.target_modules)}; "
        "the O1 marker embeddings are trained as trainable tokens\n"
        f"- {recipe.epochs} epoch(s), lr {recipe.learning_rate}, batch {recipe.batch_size} x "
        f"{recipe.gradient_accumulation}, {seconds / 60:.1f} minutes\n"
        f"- last logged losses: {json.dumps({k: v for k, v in last.items() if k.startswith('loss')})}\n\n"
        'Use: `o1rag search "..." --collection NAME --adapter THIS_FOLDER` (index with the same adapter).\n'
    )


def prepare(recipe: Recipe) -> tuple[Any, Any, int]:
    """The ``O1Trainer`` for a recipe, its tokenizer, and the number of training examples."""
    import inspect

    import torch
    from transformers import TrainingArguments, set_seed

    from o1_rag.causal_lm import pick_device
    from o1_rag.prompts import O1Format
    from o1_rag.training.data import O1Collator, load_examples
    from o1_rag.training.trainer import O1LossConfig, O1Trainer

    output = Path(recipe.output_dir)
    examples = load_examples(recipe.train_files, data_root=recipe.data_root or None)
    set_seed(recipe.seed)  # the LoRA initialisation: the same run on one or many processes, every time
    model, tokenizer = build_model(recipe)
    fmt = O1Format(tokenizer, recipe.max_query_tokens, recipe.max_thought_tokens, recipe.max_document_tokens)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    device = pick_device(recipe.device)
    bf16 = (
        device.startswith("cuda") and torch.cuda.is_bf16_supported()
        if recipe.bf16 == "auto"
        else (recipe.bf16 in ("true", "yes"))
    )
    gradient_checkpointing = recipe.gradient_checkpointing and device.startswith("cuda")
    accepted = inspect.signature(TrainingArguments).parameters
    warmup = (  # transformers 5 reads a float < 1 in warmup_steps as a ratio
        {"warmup_ratio": recipe.warmup_ratio}
        if "warmup_ratio" in accepted
        else {"warmup_steps": recipe.warmup_ratio}
    )
    args = TrainingArguments(
        output_dir=str(output),
        learning_rate=recipe.learning_rate,
        num_train_epochs=recipe.epochs,
        max_steps=recipe.max_steps,
        per_device_train_batch_size=recipe.batch_size,
        gradient_accumulation_steps=recipe.gradient_accumulation,
        **warmup,
        logging_steps=recipe.logging_steps,
        save_steps=recipe.save_steps,
        save_total_limit=recipe.save_total_limit,
        bf16=bf16,
        gradient_checkpointing=gradient_checkpointing,
        gradient_checkpointing_kwargs={"use_reentrant": False} if gradient_checkpointing else None,
        remove_unused_columns=False,
        report_to=[],
        seed=recipe.seed,
        dataloader_drop_last=True,
        use_cpu=device == "cpu",
        ddp_find_unused_parameters=False,
        deepspeed=recipe.deepspeed or None,
    )
    trainer = O1Trainer(
        model=model,
        args=args,
        train_dataset=examples,
        data_collator=O1Collator(fmt, pad_id, recipe.group_size, recipe.vq_share, recipe.seed),
        loss_config=O1LossConfig(
            fmt.emb_id, recipe.group_size, recipe.temperature, recipe.lam, recipe.kl_weight
        ),
    )
    return trainer, tokenizer, len(examples)


def train(recipe: Recipe, resume: bool = False, callbacks: list[Any] | None = None) -> Path:
    """Run (or resume from the last checkpoint) training and save the adapter folder to ``output_dir``.

    The folder holds the LoRA adapter (with the trained O1 marker rows), the tokenizer, ``o1_config.json``
    and a model card; checkpoints go to ``output_dir/checkpoint-*``.
    """
    from transformers.trainer_utils import get_last_checkpoint

    output = Path(recipe.output_dir)
    checkpoint = get_last_checkpoint(str(output)) if resume and output.is_dir() else None
    if resume and checkpoint is None:
        logger.warning("no checkpoint in %s: starting from scratch", output)
    trainer, tokenizer, n_examples = prepare(recipe)
    for callback in callbacks or []:
        trainer.add_callback(callback)
    if checkpoint is not None:
        logger.info("process %d resumes from %s", trainer.args.process_index, checkpoint)
    started = time.perf_counter()
    trainer.train(resume_from_checkpoint=checkpoint)
    if trainer.is_world_process_zero():  # one writer; the other processes only trained
        save_artifact(trainer, tokenizer, recipe, n_examples, time.perf_counter() - started)
        logger.info(
            "process %d of %d wrote the adapter at step %d",
            trainer.args.process_index,
            trainer.args.world_size,
            trainer.state.global_step,
        )
    trainer.accelerator.wait_for_everyone()  # every process returns once the adapter is on disk
    return output


def record_base(folder: str | Path, base: str) -> None:
    """Make a saved peft adapter name its base as given (an alias or hub id), never this machine's path."""
    config_path = Path(folder) / "adapter_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["base_model_name_or_path"] = base
    atomic_write(config_path, json.dumps(config, indent=2) + "\n")


def save_artifact(trainer: Any, tokenizer: Any, recipe: Recipe, n_examples: int, seconds: float) -> Path:
    """Adapter + tokenizer + o1 config + model card in ``recipe.output_dir``."""
    from o1_rag.config import O1Config
    from o1_rag.pooling import POOLING
    from o1_rag.prompts import PROMPT_FORMAT_VERSION

    output = Path(recipe.output_dir)
    trainer.save_model(str(output))
    record_base(output, recipe.base)
    tokenizer.save_pretrained(str(output))
    O1Config(
        prompt_format=PROMPT_FORMAT_VERSION,
        pooling=POOLING,
        think_mode="native",
        max_query_tokens=recipe.max_query_tokens,
        max_thought_tokens=recipe.max_thought_tokens,
        max_document_tokens=recipe.max_document_tokens,
        base_model=recipe.base,
        recipe=asdict(recipe),
    ).save(output)
    (output / "README.md").write_text(model_card(recipe, n_examples, trainer.state.log_history, seconds))
    return output


def _card_defaults(card: Path, config: dict[str, Any]) -> None:
    """State a packed adapter's query-side defaults at the end of its model card (replacing earlier ones)."""
    lines = []
    if "think_mode" in config:
        lines.append(f"Default think mode: `{config['think_mode']}`.")
    if "query_weight" in config:
        lines.append(
            f"Default query weight (share of `v_q` in the query vector): {config['query_weight']:g}."
        )
    if "repetition_penalty" in config:
        lines.append(f"Default repetition penalty of thoughts: {config['repetition_penalty']:g}.")
    kept = [
        line
        for line in card.read_text().splitlines()
        if not line.startswith(("Default think mode:", "Default query weight", "Default repetition"))
    ]
    card.write_text("\n".join(kept).rstrip("\n") + "\n\n" + "\n".join(lines) + "\n")


PACKED_FILES = ("adapter_config.json", "o1_config.json", "README.md")  # copied beside the cast weights


def pack_adapter(
    source: str | Path,
    target: str | Path,
    dtype: str = "float16",
    think_mode: str | None = None,
    query_weight: float | None = None,
    repetition_penalty: float | None = None,
) -> Path:
    """Copy a trained adapter folder for shipping: weights cast to ``dtype``, no tokenizer files.

    ``think_mode`` sets the default way the packed model writes thoughts (``native`` after training; pick
    ``chat`` where held-out queries retrieve better with it); ``query_weight`` the default weight of the
    query-only ``v_q`` in the thought average (choose it on held-out queries too). Neither changes a weight
    or a document vector. ``repetition_penalty`` sets the thoughts' default repetition penalty.

    The tokenizer is the base's plus the O1 markers, which loading adds back in the same order; a
    float16 copy halves the size and embeds the same within float16 rounding.
    """
    import shutil

    from safetensors.torch import load_file, save_file

    from o1_rag.causal_lm import pick_dtype
    from o1_rag.prompts import THINK_MODES

    defaults: dict[str, Any] = {}
    if think_mode is not None:
        if think_mode not in THINK_MODES:
            raise RecipeError(f"think_mode must be one of {THINK_MODES}, got '{think_mode}'")
        defaults["think_mode"] = think_mode
    if query_weight is not None:
        if not 0.0 <= query_weight <= 1.0:
            raise RecipeError(f"query_weight must be in [0, 1], got {query_weight}")
        defaults["query_weight"] = float(query_weight)
    if repetition_penalty is not None:
        if not repetition_penalty > 0:
            raise RecipeError(f"repetition_penalty must be > 0, got {repetition_penalty}")
        defaults["repetition_penalty"] = float(repetition_penalty)
    source, target = Path(source), Path(target)
    if not (source / "adapter_model.safetensors").is_file():
        raise RecipeError(f"{source}: no adapter_model.safetensors (not a trained adapter folder)")
    cast = pick_dtype(dtype, "cpu")
    tensors = {
        k: (v.to(cast) if v.is_floating_point() else v)
        for k, v in load_file(source / "adapter_model.safetensors").items()
    }
    from o1_rag.files import atomic_dir

    with atomic_dir(target) as tmp:
        save_file({k: t.contiguous() for k, t in tensors.items()}, tmp / "adapter_model.safetensors")
        for name in PACKED_FILES:
            if (source / name).is_file():
                shutil.copy2(source / name, tmp / name)
        if defaults:
            from o1_rag.config import O1Config

            config = O1Config.from_dict({**O1Config.find(tmp).to_dict(), **defaults}, str(source))
            config.save(tmp)
            config = config.to_dict()
            if (tmp / "README.md").is_file():
                _card_defaults(tmp / "README.md", config)
    return target
