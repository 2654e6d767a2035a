"""Training recipes: the TOML files behind ``o1rag train`` and ``o1rag train-encoder``, read and checked.

``TrainingRecipe`` holds what both trainers share (``[data]`` files, ``[lora]``, the ``[training]``
schedule); ``Recipe`` adds the joint model's settings, ``training.encoder.EncoderRecipe`` the encoder's.
Every value is checked when the file is read, before any model loads.
"""

from __future__ import annotations

import logging
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from o1_rag.errors import O1RagError
from o1_rag.files import read_structured

logger = logging.getLogger(__name__)


class RecipeError(O1RagError):
    """A recipe file is missing, malformed or names unknown settings."""


def setting(section: str, default: Any) -> Any:
    """A recipe field read from the TOML section ``[section]`` (a list default is copied for each recipe)."""
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata={"section": section})
    return field(default=default, metadata={"section": section})


LLAMA_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@dataclass
class TrainingRecipe:
    """The settings both recipes have; a subclass redeclares a field to change its default. Each field is
    read from the TOML section its ``setting`` names, and from no other."""

    COUNTS: ClassVar[tuple[str, ...]] = ()  # the subclass's settings that must be >= 1

    train_files: list[str] = setting("data", [])
    data_root: str = setting("data", "")  # folder of BEIR collections that ids-only training files name
    r: int = setting("lora", 32)
    alpha: int = setting("lora", 64)
    dropout: float = setting("lora", 0.1)
    target_modules: list[str] = setting("lora", LLAMA_MODULES)
    output_dir: str = setting("training", "runs/o1")
    learning_rate: float = setting("training", 1e-4)
    epochs: float = setting("training", 1.0)
    max_steps: int = setting("training", -1)
    batch_size: int = setting("training", 8)
    warmup_ratio: float = setting("training", 0.05)
    logging_steps: int = setting("training", 10)
    save_steps: int = setting("training", 100)
    save_total_limit: int = setting("training", 2)
    seed: int = setting("training", 0)
    device: str = setting("training", "auto")

    @classmethod
    def sections(cls) -> dict[str, str]:
        """Each setting and the TOML section it is read from."""
        return {f.name: f.metadata["section"] for f in fields(cls)}

    def own_checks(self) -> list[tuple[bool, str]]:
        """The subclass's own ranges, as ``(ok, message)`` pairs."""
        return []

    def check(self, where: str) -> None:
        """Every range: the shared ones, ``COUNTS``, then ``own_checks``. The first value out of range is a
        one-line ``RecipeError`` naming ``where`` (the file)."""
        checks = [(bool(self.train_files), "[data] train_files is empty")]
        counts = ("batch_size", "r", "alpha", "logging_steps", "save_steps", "save_total_limit", *self.COUNTS)
        checks += [
            (getattr(self, name) >= 1, f"{name} must be >= 1, got {getattr(self, name)}") for name in counts
        ]
        checks += [
            (0.0 <= self.dropout < 1.0, f"dropout must be in [0, 1), got {self.dropout}"),
            (self.learning_rate > 0, f"learning_rate must be > 0, got {self.learning_rate}"),
            (0.0 <= self.warmup_ratio <= 1.0, f"warmup_ratio must be in [0, 1], got {self.warmup_ratio}"),
            (
                self.max_steps > 0 or self.epochs > 0,
                f"epochs must be > 0 (or set max_steps), got {self.epochs}",
            ),
            *self.own_checks(),
        ]
        problem = next((message for ok, message in checks if not ok), None)
        if problem is not None:
            raise RecipeError(f"{where}: {problem}")


BF16_CHOICES = ("auto", "true", "false", "yes", "no")


@dataclass
class Recipe(TrainingRecipe):
    """A joint O1 model's training run (``o1rag train``)."""

    COUNTS: ClassVar[tuple[str, ...]] = (
        "group_size",
        "gradient_accumulation",
        "max_query_tokens",
        "max_thought_tokens",
        "max_document_tokens",
    )

    base: str = setting("model", "smollm2-135m-instruct")
    group_size: int = setting("data", 8)
    max_query_tokens: int = setting("data", 32)
    max_thought_tokens: int = setting("data", 224)
    max_document_tokens: int = setting("data", 192)
    temperature: float = setting("loss", 0.02)
    lam: float = setting("loss", 0.8)
    vq_share: float = setting("loss", 0.1)
    kl_weight: float = setting("loss", 0.0)
    gradient_accumulation: int = setting("training", 1)
    gradient_checkpointing: bool = setting("training", True)
    bf16: str = setting("training", "auto")
    deepspeed: str = setting("training", "")  # a DeepSpeed config json (ZeRO) for multi-GPU runs

    def own_checks(self) -> list[tuple[bool, str]]:
        """The loss weights and the bf16 choice."""
        return [
            (self.temperature > 0, f"[loss] temperature must be > 0, got {self.temperature}"),
            (0.0 <= self.lam <= 1.0, f"[loss] lam must be in [0, 1], got {self.lam}"),
            (0.0 <= self.vq_share <= 1.0, f"[loss] vq_share must be in [0, 1], got {self.vq_share}"),
            (self.kl_weight >= 0, f"[loss] kl_weight must be >= 0, got {self.kl_weight}"),
            (self.bf16 in BF16_CHOICES, f"bf16 must be one of {', '.join(BF16_CHOICES)}, got '{self.bf16}'"),
        ]


R = TypeVar("R", bound=TrainingRecipe)


def read_recipe(path: str | Path, cls: type[R], overrides: dict[str, Any] | None = None) -> R:
    """A ``cls`` recipe from a TOML file whose sections group its fields (``cls.sections()``), checked.

    Unknown sections and keys and wrong types are errors (a typo must not be silently ignored), and so is
    a value out of range; ``train_files`` and ``data_root`` are made relative to the file.
    """
    path = Path(path)
    if not path.is_file():
        raise RecipeError(f"{path}: recipe not found")
    raw = read_structured(path, RecipeError, toml=True)
    section_of = cls.sections()
    sections = list(dict.fromkeys(section_of.values()))
    values: dict[str, Any] = {}
    for section, table in raw.items():
        if section not in sections or not isinstance(table, dict):
            raise RecipeError(f"{path}: unknown section [{section}] (use {', '.join(sections)})")
        for key, value in table.items():
            if section_of.get(key) != section:
                where = f" (it belongs in [{section_of[key]}])" if key in section_of else ""
                raise RecipeError(f"{path}: unknown setting '{key}' in [{section}]{where}")
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
    recipe.check(str(path))
    return recipe


def load_recipe(path: str | Path, overrides: dict[str, Any] | None = None) -> Recipe:
    """Read a TOML recipe of the joint model; unknown sections and keys, wrong types and values out of
    range are errors."""
    return read_recipe(path, Recipe, overrides)


MOVED = {  # names this module held before the training code was split by role, and where they live now
    **dict.fromkeys(
        ("build_model", "model_card", "prepare", "save_artifact", "train"), "o1_rag.training.joint"
    ),
    "pack_adapter": "o1_rag.training.pack",
    "record_base": "o1_rag.training.runner",
}


def __getattr__(name: str) -> Any:
    """The joint run, packing and ``record_base`` moved to their own modules; still importable from here."""
    if name in MOVED:
        import importlib

        return getattr(importlib.import_module(MOVED[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
