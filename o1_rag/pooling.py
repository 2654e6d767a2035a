"""The one home of pooling: pick the hidden state at an ``<emb>`` position, for left and right padding."""

from __future__ import annotations

import torch

POOLING = "last-emb-token"


def last_token_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Hidden state of each row's last real token, whichever side the padding is on.

    Args:
        hidden: ``(batch, seq, dim)`` final hidden states.
        attention_mask: ``(batch, seq)`` with 1 on real tokens.

    Returns:
        ``(batch, dim)``.
    """
    positions = torch.arange(attention_mask.shape[1], device=attention_mask.device)
    last = (attention_mask.long() * (positions + 1)).argmax(dim=1)  # (batch,)
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]


def marker_positions(input_ids: torch.Tensor, attention_mask: torch.Tensor, marker_id: int) -> torch.Tensor:
    """Positions of the first and the last ``marker_id`` among real tokens, ``(batch, 2)``.

    Raises:
        ValueError: a row holds no marker.
    """
    hits = (input_ids == marker_id) & attention_mask.bool()  # (batch, seq)
    if not bool(hits.any(dim=1).all()):
        raise ValueError("a sequence holds no <emb> marker: it was truncated away or never added")
    positions = torch.arange(input_ids.shape[1], device=input_ids.device).expand_as(input_ids)
    big = input_ids.shape[1]
    first = torch.where(hits, positions, big).min(dim=1).values
    last = torch.where(hits, positions, -1).max(dim=1).values
    return torch.stack([first, last], dim=1)


def gather_positions(hidden: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """``hidden[b, positions[b]]`` for ``(batch, seq, dim)`` and ``(batch,)`` -> ``(batch, dim)``."""
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), positions]
