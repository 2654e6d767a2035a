"""What both trainers share: a recipe's training arguments, one resumable run, the saved adapter's base."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from o1_rag.files import atomic_write
from o1_rag.training.recipe import TrainingRecipe

logger = logging.getLogger(__name__)


def training_arguments(recipe: TrainingRecipe, args_cls: type, **extra: Any) -> Any:
    """``args_cls`` (transformers' ``TrainingArguments`` or a subclass) holding the recipe's ``[training]``
    schedule; ``extra`` adds the trainer's own arguments. Creating them joins the process group when
    launched by ``torchrun`` or ``accelerate launch``."""
    import inspect

    from o1_rag.causal_lm import pick_device

    accepted = inspect.signature(args_cls).parameters
    warmup = (  # transformers 5 reads a float < 1 in warmup_steps as a ratio
        {"warmup_ratio": recipe.warmup_ratio}
        if "warmup_ratio" in accepted
        else {"warmup_steps": recipe.warmup_ratio}
    )
    return args_cls(
        output_dir=str(recipe.output_dir),
        learning_rate=recipe.learning_rate,
        num_train_epochs=recipe.epochs,
        max_steps=recipe.max_steps,
        per_device_train_batch_size=recipe.batch_size,
        **warmup,
        logging_steps=recipe.logging_steps,
        save_steps=recipe.save_steps,
        save_total_limit=recipe.save_total_limit,
        seed=recipe.seed,
        use_cpu=pick_device(recipe.device) == "cpu",
        report_to="none",
        **extra,
    )


def run_training(trainer: Any, output: Path, resume: bool, save: Callable[[float], Any]) -> None:
    """Train (from the last checkpoint under ``output`` when ``resume``), then ``save(seconds)`` on the
    main process only; every process returns once the result is on disk."""
    from transformers.trainer_utils import get_last_checkpoint

    checkpoint = get_last_checkpoint(str(output)) if resume and output.is_dir() else None
    if resume and checkpoint is None:
        logger.warning("no checkpoint in %s: starting from scratch", output)
    if checkpoint is not None:
        logger.info("process %d resumes from %s", trainer.args.process_index, checkpoint)
    started = time.perf_counter()
    trainer.train(resume_from_checkpoint=checkpoint)
    if trainer.is_world_process_zero():  # one writer; the other processes only trained
        save(time.perf_counter() - started)
        logger.info(
            "process %d of %d wrote the adapter at step %d",
            trainer.args.process_index,
            trainer.args.world_size,
            trainer.state.global_step,
        )
    trainer.accelerator.wait_for_everyone()


def record_base(folder: str | Path, base: str) -> None:
    """Make a saved peft adapter name its base as given (an alias or hub id), never this machine's path."""
    config_path = Path(folder) / "adapter_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["base_model_name_or_path"] = base
    atomic_write(config_path, json.dumps(config, indent=2) + "\n")
