"""Packing a trained adapter for shipping: weights cast to a smaller dtype, query-side defaults recorded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from o1_rag.training.recipe import RecipeError


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
