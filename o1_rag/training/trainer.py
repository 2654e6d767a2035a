"""``O1Trainer``: a ``transformers.Trainer`` whose ``compute_loss`` is the joint O1 objective.

One forward pass of ``<query>q</query><emb><thought>t{eos}<emb>`` through the decoder gives the hidden
states for the LM loss on the thought (the LM head runs only on the thought positions) and both query
embeddings (``v_q``, ``v_t``); documents give ``v_d``. Loss = ``lam * InfoNCE + (1 - lam) * LM`` (+ an
optional KL term toward the committee's teacher distribution over candidate thoughts).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from transformers import Trainer

from o1_rag.pooling import gather_positions, marker_positions
from o1_rag.training.losses import (
    JointLoss,
    gather_with_grad,
    info_nce,
    joint_loss,
    teacher_kl,
    thought_lm_loss,
    world_size,
)


@dataclass
class O1LossConfig:
    """The objective's settings (paper defaults)."""

    emb_id: int
    group_size: int = 8
    temperature: float = 0.02
    lam: float = 0.8
    kl_weight: float = 0.0


def _unwrap(model: Any) -> Any:
    """The model under data-parallel wrappers (DDP, DeepSpeed)."""
    while hasattr(model, "module") and isinstance(model.module, torch.nn.Module):
        model = model.module
    return model


def lm_head(model: Any) -> Any:
    """The output (LM head) layer of a causal LM, under any wrappers and LoRA."""
    base = _unwrap(model)
    base = base.get_base_model() if hasattr(base, "get_base_model") else base
    return base.get_output_embeddings()


def _embed(
    model: Any, ids: torch.Tensor, mask: torch.Tensor, emb_id: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Final hidden states ``(B, L, H)`` and the ``(B, 2)`` first/last ``<emb>`` positions.

    The call goes through the model's own forward, so a data-parallel wrapper (DDP, DeepSpeed) sees it
    and synchronises the gradients; the LM head runs on one position only (the thought's logits are
    computed by the caller on the thought positions alone).
    """
    out = model(
        input_ids=ids, attention_mask=mask, output_hidden_states=True, logits_to_keep=1, use_cache=False
    )
    return out.hidden_states[-1], marker_positions(ids, mask, emb_id)


@dataclass(frozen=True)
class LossScale:
    """How one micro-batch's loss is scaled so that the optimizer step sees the gradient of the whole
    global batch, as one process with all of it would.

    Attributes:
        accumulation: micro-batches per optimizer step (gradient accumulation).
        thought_tokens: thought tokens in the whole step (all micro-batches; all processes when
            ``tokens_across_devices``), so the LM loss is a mean over the step's tokens, not a mean of
            per-batch means; ``None`` falls back to the micro-batch mean.
        tokens_across_devices: ``thought_tokens`` counts every process's tokens.
    """

    accumulation: int = 1
    thought_tokens: float | None = None
    tokens_across_devices: bool = False


def o1_loss(
    model: Any, inputs: dict[str, torch.Tensor], cfg: O1LossConfig, scale: LossScale | None = None
) -> tuple[JointLoss, dict[str, Any]]:
    """The joint O1 objective for one collated batch (see ``training.data.O1Collator``).

    Returns the loss to back-propagate (``total``) with its parts as logged values (the InfoNCE over the
    global batch, the mean LM loss of this batch's thought tokens), and ``{"v_q", "v_t"}`` from the single
    query-side forward.

    Distributed: queries and documents are gathered from every process (more negatives), so each process
    computes the InfoNCE of the whole global batch, with gradients through its own rows only. Summed over
    the processes those are exactly the global gradient; data-parallel averaging divides by the number of
    processes, so the contrastive term's gradient (not its value) is multiplied by it. The LM term is a sum
    over this batch's tokens divided by the step's token count, so the averaged gradients equal one
    process's token mean over the global batch.
    """
    scale = scale or LossScale()
    ids, mask, labels = inputs["input_ids"], inputs["attention_mask"], inputs["labels"]
    hidden, where = _embed(model, ids, mask, cfg.emb_id)  # one forward for both losses
    targets = labels[:, 1:]
    selected = targets != -100
    logits = lm_head(model)(hidden[:, :-1][selected])  # (n_thought_tokens, vocab)
    lm_sum = thought_lm_loss(logits, targets[selected], reduction="sum")
    lm_mean = lm_sum / selected.sum().clamp(min=1)
    v_q = gather_positions(hidden, where[:, 0])
    v_t = gather_positions(hidden, where[:, 1])
    query = F.normalize(torch.where(inputs["use_vq"][:, None], v_q, v_t).float(), dim=-1)
    d_hidden, d_where = _embed(model, inputs["doc_input_ids"], inputs["doc_attention_mask"], cfg.emb_id)
    docs = F.normalize(gather_positions(d_hidden, d_where[:, 1]).float(), dim=-1)
    contrastive = info_nce(gather_with_grad(query), gather_with_grad(docs), cfg.group_size, cfg.temperature)
    kl = None
    if cfg.kl_weight and "teacher" in inputs:
        c_hidden, c_where = _embed(model, inputs["cand_input_ids"], inputs["cand_attention_mask"], cfg.emb_id)
        cands = F.normalize(gather_positions(c_hidden, c_where[:, 1]).float(), dim=-1)
        k = inputs["teacher"].shape[1]
        positives = docs[:: cfg.group_size].repeat_interleave(k, dim=0)  # (B*k, H)
        scores = (cands * positives).sum(-1).view(-1, k)
        kl = teacher_kl(scores, inputs["teacher"], cfg.temperature)
    processes = world_size()
    # the global InfoNCE's value, with its gradient scaled by the number of processes (see above)
    contrastive_objective = contrastive * processes - contrastive.detach() * (processes - 1)
    if scale.thought_tokens:
        lm_objective = lm_sum / scale.thought_tokens * (processes if scale.tokens_across_devices else 1)
    else:
        lm_objective = lm_mean / scale.accumulation
    objective = joint_loss(
        contrastive_objective / scale.accumulation,
        lm_objective,
        cfg.lam,
        None if kl is None else kl / scale.accumulation,
        cfg.kl_weight,
    )
    logged_kl = None if kl is None else kl.detach()
    parts = JointLoss(objective.total, contrastive.detach(), lm_mean.detach(), logged_kl)
    return parts, {"v_q": v_q, "v_t": v_t, "thought_tokens": int(selected.sum())}


class O1Trainer(Trainer):
    """Trainer for the joint LM + contrastive objective; each loss part is logged on its own.

    Single process, several processes (``torchrun``, ``accelerate launch``) and gradient accumulation
    give the same gradient for the same global batch (see ``o1_loss``).
    """

    loss_is_scaled_for_ga = True

    def __init__(self, *args: Any, loss_config: O1LossConfig, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.loss_config = loss_config
        # compute_loss normalises by the step's thought-token count and by gradient accumulation itself
        self.model_accepts_loss_kwargs = True
        self._sums: dict[str, float] = defaultdict(float)  # per logged part: weighted sum, weight
        self._weights: dict[str, float] = defaultdict(float)

    def compute_loss(
        self,
        model: Any,
        inputs: dict[str, torch.Tensor],
        return_outputs: bool = False,
        num_items_in_batch: Any = None,
    ) -> Any:
        scale = LossScale(
            accumulation=getattr(
                self, "current_gradient_accumulation_steps", self.args.gradient_accumulation_steps
            ),
            thought_tokens=None if num_items_in_batch is None else float(num_items_in_batch),
            tokens_across_devices=bool(getattr(self.args, "average_tokens_across_devices", False)),
        )
        loss, outputs = o1_loss(model, inputs, self.loss_config, scale)
        tokens = outputs["thought_tokens"]
        for name, value, weight in (
            ("loss_contrastive", loss.contrastive, 1.0),
            ("loss_lm", loss.lm, float(tokens)),
            ("loss_kl", loss.kl, 1.0),
        ):
            if value is not None:
                self._sums[name] += float(value) * weight
                self._weights[name] += weight
        return (loss.total, outputs) if return_outputs else loss.total

    def _save(self, output_dir: str | None = None, state_dict: Any = None) -> None:
        """Save the adapter only: never the whole (resized) embedding matrix.

        The O1 marker rows are trained as peft trainable tokens and saved with the adapter; the base rows
        are rebuilt identically at load time, so a 135M model's adapter stays a few MB.
        """
        import os

        output_dir = output_dir or self.args.output_dir
        os.makedirs(output_dir, exist_ok=True)
        self.model.save_pretrained(output_dir, save_embedding_layers=False)

    def log(self, logs: dict[str, float], *args: Any, **kwargs: Any) -> None:
        """Add each loss part's mean since the last log, over all processes (the LM part per token)."""
        names = sorted(self._sums)
        if names:
            totals = torch.tensor(
                [self._sums[n] for n in names] + [self._weights[n] for n in names],
                dtype=torch.float64,
                device=self.args.device,
            )
            if self.accelerator.num_processes > 1:  # every process logs at the same steps
                totals = self.accelerator.reduce(totals, reduction="sum")
            sums, weights = totals[: len(names)].tolist(), totals[len(names) :].tolist()
            for name, total, weight in zip(names, sums, weights, strict=True):
                if weight:
                    logs[name] = round(total / weight, 4)
        self._sums.clear()
        self._weights.clear()
        super().log(logs, *args, **kwargs)
