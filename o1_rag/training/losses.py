"""Losses as small functions that return their parts, so each part is logged."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


def info_nce(
    queries: torch.Tensor, documents: torch.Tensor, group_size: int, temperature: float
) -> torch.Tensor:
    """InfoNCE with in-batch and hard negatives.

    Args:
        queries: ``(B, dim)`` normalised query embeddings.
        documents: ``(B * group_size, dim)`` normalised; rows ``i*group_size`` is query ``i``'s positive, the
            rest of its group are its hard negatives; every other query's documents are in-batch negatives.
        temperature: the softmax temperature (0.02 in the paper).
    """
    if documents.shape[0] != queries.shape[0] * group_size:
        raise ValueError(
            f"{documents.shape[0]} documents for {queries.shape[0]} queries x group {group_size}"
        )
    scores = queries @ documents.T / temperature  # (B, B * group_size)
    targets = torch.arange(queries.shape[0], device=queries.device) * group_size
    return F.cross_entropy(scores.float(), targets)


def thought_lm_loss(logits: torch.Tensor, labels: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Next-token cross-entropy where ``labels`` (already aligned to ``logits``) is not -100."""
    return F.cross_entropy(logits.float(), labels, ignore_index=-100, reduction=reduction)


def teacher_kl(candidate_scores: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """KL(teacher || softmax(scores / temperature)) over each query's candidate thoughts, ``(B, k)`` each."""
    log_student = F.log_softmax(candidate_scores.float() / temperature, dim=-1)
    return F.kl_div(log_student, teacher.float(), reduction="batchmean")


@dataclass
class JointLoss:
    """``total = lam * contrastive + (1 - lam) * lm + kl_weight * kl``, with the parts kept for logging."""

    total: torch.Tensor
    contrastive: torch.Tensor
    lm: torch.Tensor
    kl: torch.Tensor | None = None


def joint_loss(
    contrastive: torch.Tensor,
    lm: torch.Tensor,
    lam: float = 0.8,
    kl: torch.Tensor | None = None,
    kl_weight: float = 0.0,
) -> JointLoss:
    """Weight the parts of the O1 objective."""
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"lambda must be in [0, 1], got {lam}")
    total = lam * contrastive + (1.0 - lam) * lm
    if kl is not None and kl_weight:
        total = total + kl_weight * kl
    return JointLoss(total, contrastive, lm, kl)


def world_size() -> int:
    """Processes in the default process group (1 when not distributed)."""
    import torch.distributed as dist

    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def gather_with_grad(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate ``tensor`` from every process; the local slice keeps its gradient (for more negatives)."""
    import torch.distributed as dist

    if world_size() == 1:
        return tensor
    parts = [torch.zeros_like(tensor) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, tensor.contiguous())
    parts[dist.get_rank()] = tensor
    return torch.cat(parts, dim=0)
