"""The one home of batched generation: left-padded ``generate`` calls over token-id prompts."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch


def pad_sequences(
    sequences: Sequence[Sequence[int]], pad_id: int, side: str, device: torch.device | str = "cpu"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad token-id lists to one width: ``(ids, attention_mask)``, both ``(batch, width)``."""
    if side not in ("left", "right"):
        raise ValueError(f"side must be 'left' or 'right', got '{side}'")
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        span = slice(width - len(seq), width) if side == "left" else slice(0, len(seq))
        ids[row, span] = torch.tensor(list(seq), dtype=torch.long)
        mask[row, span] = 1
    return ids.to(device), mask.to(device)


def chat_prompt_ids(tokenizer: Any, user: str | Sequence[dict[str, str]]) -> list[int]:
    """Token ids of a chat (one user turn, or a list of ``{role, content}`` messages) plus the generation
    prompt; without a chat template the turns' contents are joined as plain text."""
    messages = [{"role": "user", "content": user}] if isinstance(user, str) else list(user)
    if not getattr(tokenizer, "chat_template", None):
        return list(tokenizer("\n\n".join(m["content"] for m in messages))["input_ids"])
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
    return list(ids["input_ids"] if hasattr(ids, "keys") else ids)


def generate_texts(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[Sequence[int]],
    *,
    max_new_tokens: int,
    temperature: float,
    top_p: float,
    seed: int | None,
    batch_size: int,
    repetition_penalty: float = 1.0,
    stop_ids: Sequence[int],
    pad_id: int,
    on_call: Callable[[], None] | None = None,
) -> list[str]:
    """Continue every prompt; return the decoded new text of each, in input order.

    Prompts are sorted by length and sent in left-padded batches of ``batch_size``; with a ``seed`` the
    sampling is reproducible (the global RNG state is restored afterwards). ``repetition_penalty`` is
    ``generate``'s (1 = none).
    """
    device = next(model.parameters()).device
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    outputs = [""] * len(prompts)
    sample = temperature > 0
    extra: dict[str, Any] = {"temperature": temperature, "top_p": top_p} if sample else {}
    if repetition_penalty != 1.0:
        extra["repetition_penalty"] = repetition_penalty
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), torch.inference_mode():
        if seed is not None:
            torch.manual_seed(seed)
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            input_ids, mask = pad_sequences([prompts[i] for i in chunk], pad_id, "left", device)
            out = model.generate(
                input_ids=input_ids,
                attention_mask=mask,
                do_sample=sample,
                max_new_tokens=max_new_tokens,
                eos_token_id=list(stop_ids),
                pad_token_id=pad_id,
                **extra,
            )
            if on_call is not None:
                on_call()
            new = out[:, input_ids.shape[1] :]
            for row, idx in enumerate(chunk):
                outputs[idx] = tokenizer.decode(new[row], skip_special_tokens=True).strip()
    return outputs
