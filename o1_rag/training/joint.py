"""The joint O1 model's training run behind ``o1rag train``: one LoRA-wrapped causal LM learns to write
thoughts (behaviour cloning, LM loss) and to embed (InfoNCE) in one forward."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from o1_rag.compat import peft_quietly
from o1_rag.training.recipe import Recipe
from o1_rag.training.runner import record_base, run_training, training_arguments


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
    import torch
    from transformers import TrainingArguments, set_seed

    from o1_rag.causal_lm import pick_device
    from o1_rag.prompts import O1Format
    from o1_rag.training.data import O1Collator, load_examples
    from o1_rag.training.trainer import O1LossConfig, O1Trainer

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
    args = training_arguments(
        recipe,
        TrainingArguments,
        gradient_accumulation_steps=recipe.gradient_accumulation,
        bf16=bf16,
        gradient_checkpointing=gradient_checkpointing,
        gradient_checkpointing_kwargs={"use_reentrant": False} if gradient_checkpointing else None,
        remove_unused_columns=False,
        dataloader_drop_last=True,
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
    trainer, tokenizer, n_examples = prepare(recipe)
    for callback in callbacks or []:
        trainer.add_callback(callback)

    def save(seconds: float) -> None:
        save_artifact(trainer, tokenizer, recipe, n_examples, seconds)

    output = Path(recipe.output_dir)
    run_training(trainer, output, resume, save)
    return output


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
