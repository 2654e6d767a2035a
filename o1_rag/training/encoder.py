"""Contrastive fine-tuning of a sentence-transformers encoder on query + thought (thinker + encoder form).

The encoder learns how far to trust the thinker's thoughts: each training query is embedded as
``query + separator + thought`` (a thought the *thinker* wrote for it, so training sees what inference
sees) or, for a share of samples, as the query alone; the positive passage is the target and in-batch
passages plus a BM25 hard negative are the negatives (``MultipleNegativesRankingLoss``). Training runs
through ``SentenceTransformerTrainer`` (checkpoints, ``--resume``, multi-device through ``accelerate``) on a
peft LoRA adapter, so the result ships as a small folder beside the bundled base encoder.

    o1rag train-encoder --config train/minilm-cpu.toml [--resume]
"""

from __future__ import annotations

import json
import logging
import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

from o1_rag.training.recipe import RecipeError, TrainingRecipe, read_recipe, setting
from o1_rag.training.runner import record_base, run_training, training_arguments

logger = logging.getLogger(__name__)


@dataclass
class EncoderRecipe(TrainingRecipe):
    """An encoder fine-tuning run (``o1rag train-encoder``)."""

    COUNTS: ClassVar[tuple[str, ...]] = ("num_thoughts", "max_new_tokens")

    base: str = setting("encoder", "all-minilm-l6-v2")
    separator: str = setting("encoder", " ")
    # the thinker writes the training queries' thoughts (cached in the thought cache, resumable)
    thinker: str = setting("thinker", "o1-smollm2-135m")
    num_thoughts: int = setting("thinker", 1)
    max_new_tokens: int = setting("thinker", 48)
    temperature: float = setting("thinker", 0.1)
    think_seed: int = setting("thinker", 0)
    query_only_share: float = setting("data", 0.2)
    # the encoder's own defaults of the shared settings
    r: int = setting("lora", 16)
    alpha: int = setting("lora", 32)
    dropout: float = setting("lora", 0.05)
    target_modules: list[str] = setting("lora", ["query", "key", "value", "dense"])
    output_dir: str = setting("training", "runs/o1-minilm-encoder")
    learning_rate: float = setting("training", 2e-4)
    batch_size: int = setting("training", 32)
    warmup_ratio: float = setting("training", 0.1)
    logging_steps: int = setting("training", 5)
    save_steps: int = setting("training", 20)

    def own_checks(self) -> list[tuple[bool, str]]:
        """The query-only share and the thinker's temperature."""
        share = self.query_only_share
        return [
            (0.0 <= share <= 1.0, f"query_only_share must be in [0, 1], got {share}"),
            (self.temperature >= 0, f"[thinker] temperature must be >= 0, got {self.temperature}"),
        ]


def load_encoder_recipe(path: str | Path, overrides: dict[str, Any] | None = None) -> EncoderRecipe:
    """Read a TOML encoder recipe; unknown sections and keys are errors. Paths are relative to the file."""
    return read_recipe(path, EncoderRecipe, overrides)


def thinker_thoughts(
    recipe: EncoderRecipe, queries: list[str], thinker: Any = None, chunk: int = 64
) -> dict[str, list[str]]:
    """The thinker's thoughts for each training query, written in chunks through the thought cache (a
    killed run resumes where the cache stops)."""
    from o1_rag.cache import ThoughtCache
    from o1_rag.thinkers import LMThinker, ThinkParams, think_cached

    if thinker is None:
        thinker = LMThinker.from_pretrained(recipe.thinker, device=recipe.device)
    cache = ThoughtCache()
    params = ThinkParams(
        recipe.num_thoughts, recipe.max_new_tokens, recipe.temperature, seed=recipe.think_seed
    )
    unique = list(dict.fromkeys(queries))

    def report(done: int, total: int) -> None:
        logger.info("thoughts written for %d / %d training queries not yet cached", done, total)

    thoughts = think_cached(thinker, unique, params, cache, progress=report, chunk=chunk)
    return dict(zip(unique, thoughts, strict=True))


def training_rows(
    examples: list[dict[str, Any]], thoughts: dict[str, list[str]], recipe: EncoderRecipe
) -> dict[str, list[str]]:
    """Columns ``anchor``, ``positive``, ``negative`` (one row per example)."""
    rng = random.Random(recipe.seed)
    rows: dict[str, list[str]] = {"anchor": [], "positive": [], "negative": []}
    for example in examples:
        query = example["query"]
        thought = rng.choice(thoughts.get(query) or [""])
        query_only = rng.random() < recipe.query_only_share or not thought.strip()
        rows["anchor"].append(query if query_only else f"{query}{recipe.separator}{thought}")
        rows["positive"].append(example["positives"][0])
        negatives = example.get("negatives") or []
        rows["negative"].append(negatives[0] if negatives else rng.choice(examples)["positives"][0])
    return rows


def encoder_training_args(recipe: EncoderRecipe) -> Any:
    """The trainer's arguments; creating them joins the process group when launched by ``torchrun`` or
    ``accelerate launch``."""
    from sentence_transformers import SentenceTransformerTrainingArguments

    try:  # sentence-transformers >= 6
        from sentence_transformers.sentence_transformer.training_args import BatchSamplers
    except ImportError:  # pragma: no cover - older releases
        from sentence_transformers.training_args import BatchSamplers

    return training_arguments(
        recipe,
        SentenceTransformerTrainingArguments,
        batch_sampler=BatchSamplers.NO_DUPLICATES,
        disable_tqdm=True,
    )


def build_encoder_trainer(
    recipe: EncoderRecipe,
    rows: dict[str, list[str]],
    model: Any = None,
    callbacks: list[Any] | None = None,
    args: Any = None,
) -> Any:
    """A ``SentenceTransformerTrainer`` over ``rows`` with a LoRA adapter on ``recipe.base``.

    Launched on several processes, the loss gathers every process's anchors, positives and negatives, so
    each anchor sees the whole global batch as negatives (as one process with all of it would).
    """
    from datasets import Dataset
    from peft import LoraConfig, TaskType
    from sentence_transformers import SentenceTransformerTrainer
    from transformers import set_seed

    try:  # sentence-transformers >= 6
        from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    except ImportError:  # pragma: no cover - older releases
        from sentence_transformers.losses import MultipleNegativesRankingLoss

    from o1_rag.causal_lm import pick_device
    from o1_rag.encoders import resolve_encoder_path
    from o1_rag.training.losses import world_size

    args = args or encoder_training_args(recipe)
    device = pick_device(recipe.device)
    if model is None:
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(
            resolve_encoder_path(recipe.base)[0], device=device, model_kwargs={"use_safetensors": True}
        )
    from peft import get_peft_model

    from o1_rag.compat import peft_quietly
    from o1_rag.encoders import replace_backbone

    module = model[0]
    set_seed(recipe.seed)  # the LoRA initialisation: the same run on one or many processes, every time
    with peft_quietly():
        wrapped = get_peft_model(
            module.auto_model,
            LoraConfig(
                task_type=TaskType.FEATURE_EXTRACTION,
                r=recipe.r,
                lora_alpha=recipe.alpha,
                lora_dropout=recipe.dropout,
                target_modules=list(recipe.target_modules),
            ),
        )
    replace_backbone(module, wrapped)

    class LoraTrainer(SentenceTransformerTrainer):
        """Checkpoints hold the LoRA adapter only: resume by loading it back into the live model."""

        def _load_from_checkpoint(self, checkpoint_path: str, model: Any = None) -> None:
            from peft import set_peft_model_state_dict
            from safetensors.torch import load_file

            weights = Path(checkpoint_path) / "adapter_model.safetensors"
            if not weights.is_file():
                raise RecipeError(f"{checkpoint_path}: no adapter_model.safetensors to resume from")
            set_peft_model_state_dict(self.model[0].auto_model, load_file(str(weights)))

    trainer = LoraTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_dict(rows),
        loss=MultipleNegativesRankingLoss(model, gather_across_devices=world_size() > 1),
        callbacks=callbacks,
    )
    return trainer


def train_encoder(
    recipe: EncoderRecipe, resume: bool = False, thinker: Any = None, callbacks: list[Any] | None = None
) -> Path:
    """Write thoughts (cached), fine-tune, and save the LoRA adapter folder to ``output_dir/final``.

    The folder holds ``adapter_config.json``, ``adapter_model.safetensors`` and ``o1_encoder.json`` (the base
    encoder and separator); load it with ``SentenceTransformerEncoder(base, adapter=folder)``.
    """
    from o1_rag.training.data import load_examples

    args = encoder_training_args(recipe)
    examples = load_examples(recipe.train_files, data_root=recipe.data_root or None)
    # one process writes the thoughts into the cache; the others wait, then read them from it
    with args.main_process_first(local=False, desc="thoughts of the training queries"):
        thoughts = thinker_thoughts(recipe, [e["query"] for e in examples], thinker)
    rows = training_rows(examples, thoughts, recipe)
    trainer = build_encoder_trainer(recipe, rows, callbacks=callbacks, args=args)
    final = Path(recipe.output_dir) / "final"

    def save(seconds: float) -> None:
        history = [h for h in trainer.state.log_history if "loss" in h]
        save_encoder_adapter(trainer.model, final, recipe, len(rows["anchor"]), seconds, history)

    run_training(trainer, Path(recipe.output_dir), resume, save)
    return final


ENCODER_CONFIG = "o1_encoder.json"


def encoder_card(recipe: EncoderRecipe, n_rows: int, seconds: float, history: list[dict[str, Any]]) -> str:
    """A model card for an encoder adapter (markdown)."""
    losses = [h["loss"] for h in history if "loss" in h]
    last = f"{losses[-1]:.3f}" if losses else "-"
    return (
        f"# O1 encoder adapter for `{recipe.base}`\n\n"
        "A LoRA adapter (peft) of a sentence-transformers encoder, fine-tuned by `o1rag train-encoder` to "
        "embed a query together with a thought written by a thinker (`query + separator + thought`) close "
        "to the query's relevant passage, and a query alone as well. Documents are embedded as they are.\n\n"
        f"- base encoder: `{recipe.base}`; separator: {json.dumps(recipe.separator)}\n"
        f"- thoughts: `{recipe.thinker}`, {recipe.num_thoughts} per training query, at most "
        f"{recipe.max_new_tokens} new tokens, temperature {recipe.temperature:g}\n"
        f"- data: {', '.join(Path(f).name for f in recipe.train_files)}; {n_rows} rows; "
        f"{recipe.query_only_share:.0%} of anchors are the query alone; one BM25 hard negative per row\n"
        f"- loss: MultipleNegativesRankingLoss (in-batch + hard negatives), batch {recipe.batch_size}\n"
        f"- LoRA r={recipe.r}, alpha={recipe.alpha}, dropout {recipe.dropout:g} on "
        f"{', '.join(recipe.target_modules)}; lr {recipe.learning_rate:g}, {recipe.epochs:g} epoch(s)\n"
        f"- training time: {seconds:.0f} s; last logged loss {last}\n\n"
        "Load: `SentenceTransformerEncoder(FOLDER)` in o1-rag, or `o1rag search ... --encoder FOLDER`.\n"
    )


def save_encoder_adapter(
    model: Any,
    folder: Path,
    recipe: EncoderRecipe,
    n_rows: int,
    seconds: float,
    history: list[dict[str, Any]] | None = None,
) -> Path:
    """The LoRA adapter of a fine-tuned sentence-transformers model, with the base it belongs to, a model
    card and the training log (written to a temporary folder, then renamed into place)."""

    from o1_rag.files import atomic_dir

    folder = Path(folder)
    with atomic_dir(folder) as tmp:
        model[0].auto_model.save_pretrained(str(tmp))  # a PeftModel saves its adapter only
        record_base(tmp, recipe.base)
        meta = {
            "base": recipe.base,
            "separator": recipe.separator,
            "recipe": asdict(recipe),
            "rows": n_rows,
            "seconds": round(seconds, 1),
        }
        (tmp / ENCODER_CONFIG).write_text(json.dumps(meta, indent=2))
        (tmp / "README.md").write_text(encoder_card(recipe, n_rows, seconds, history or []))
        (tmp / "log_history.json").write_text(json.dumps(history or [], indent=1))
    return folder
