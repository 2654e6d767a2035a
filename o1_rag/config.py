"""``o1_config.json``: the one validated settings type of a trained O1 model or adapter.

Loaded with ``O1Config.load`` (every key checked for type and range, unknown keys refused, the file named
in every error) and written with ``O1Config.save`` (atomically). Fields left unset (None) fall back to the
embedder's defaults.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from o1_rag.errors import ModelNotFoundError
from o1_rag.files import read_structured
from o1_rag.prompts import THINK_MODES

O1_CONFIG_NAME = "o1_config.json"


class ConfigError(ModelNotFoundError):
    """An ``o1_config.json`` that cannot be used (bad JSON, a wrong type or range, an unknown key)."""


_LENGTHS = ("max_query_tokens", "max_thought_tokens", "max_document_tokens")


@dataclass(frozen=True)
class O1Config:
    """Settings that travel with a trained model.

    Args:
        prompt_format / pooling: the format version and pooling the model was trained with.
        think_mode: default way of writing thoughts (``native`` or ``chat``).
        max_query_tokens / max_thought_tokens / max_document_tokens: truncation lengths (>= 1).
        query_weight: default share of the query-only vector in the query vector, in [0, 1].
        repetition_penalty: default repetition penalty of thoughts (> 0; 1 = none).
        num_thoughts / max_new_tokens: default thinking budget.
        temperature: default sampling temperature of thoughts (>= 0; unset: 0.1).
        base_model: the base the adapter was trained on.
        recipe: the training recipe, as recorded (free-form).
    """

    prompt_format: str | None = None
    pooling: str | None = None
    think_mode: str | None = None
    max_query_tokens: int = 64
    max_thought_tokens: int = 192
    max_document_tokens: int = 256
    query_weight: float | None = None
    repetition_penalty: float = 1.0
    num_thoughts: int | None = None
    max_new_tokens: int | None = None
    temperature: float | None = None
    base_model: str | None = None
    recipe: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in (*_LENGTHS, "num_thoughts", "max_new_tokens"):
            value = getattr(self, name)
            if value is None and name not in _LENGTHS:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be an integer >= 1, got {value!r}")
        if self.think_mode is not None and self.think_mode not in THINK_MODES:
            raise ConfigError(f"think_mode must be one of {', '.join(THINK_MODES)}, got {self.think_mode!r}")
        weight = self.query_weight
        if weight is not None and (
            isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0.0 <= weight <= 1.0
        ):
            raise ConfigError(f"query_weight must be a number in [0, 1], got {weight!r}")
        temp = self.temperature
        if temp is not None and (isinstance(temp, bool) or not isinstance(temp, (int, float)) or temp < 0):
            raise ConfigError(f"temperature must be a number >= 0, got {temp!r}")
        penalty = self.repetition_penalty
        if isinstance(penalty, bool) or not isinstance(penalty, (int, float)) or not penalty > 0:
            raise ConfigError(f"repetition_penalty must be a number > 0, got {penalty!r}")
        for name in ("prompt_format", "pooling", "base_model"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise ConfigError(f"{name} must be a string, got {value!r}")
        if not isinstance(self.recipe, dict):
            raise ConfigError(f"recipe must be an object, got {self.recipe!r}")

    @classmethod
    def from_dict(cls, raw: Any, source: str = O1_CONFIG_NAME) -> O1Config:
        """Validate a parsed config; errors name ``source``."""
        if not isinstance(raw, dict):
            raise ConfigError(f"{source}: expected a JSON object, got {type(raw).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ConfigError(
                f"{source}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        try:
            return cls(**raw)
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from None

    @classmethod
    def load(cls, path: str | Path) -> O1Config:
        """Read and validate one file."""
        return cls.from_dict(read_structured(path, ConfigError), str(path))

    @classmethod
    def find(cls, *folders: Path | str | None) -> O1Config:
        """The config of the first folder that has one, else the defaults."""
        for folder in folders:
            if folder is not None and (Path(folder) / O1_CONFIG_NAME).is_file():
                return cls.load(Path(folder) / O1_CONFIG_NAME)
        return cls()

    def to_dict(self) -> dict[str, Any]:
        """The set fields (None left out), in declaration order."""
        return {k: v for k, v in asdict(self).items() if v is not None and v != {}}

    def save(self, folder: str | Path) -> Path:
        """Write ``folder/o1_config.json`` atomically."""
        from o1_rag.files import atomic_write

        path = Path(folder) / O1_CONFIG_NAME
        atomic_write(path, (json.dumps(self.to_dict(), indent=2) + "\n").encode())
        return path
