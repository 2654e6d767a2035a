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

from o1_rag.encoders import backbone as _backbone
from o1_rag.pooling import gather_positions, marker_positions
from o1_rag.training.losses import (
    JointLoss,
    gather_with_grad,
    info_nce,
    joint_loss,
    teacher_kl,
    thought_lm_loss,
)


@dataclass
class O1LossConfig:
    """The objective's settings (paper defaults)."""

    emb_id: int
    group_size: int = 8
    temperature: float = 0.02
    lam: float = 0.8
    kl_weight: float = 0.0


def _lm_head(model: Any) -> Any:
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return base.get_output_embeddings()


def _embed(
    model: Any, ids: torch.Tensor, mask: torch.Tensor, emb_id: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Final hidden states ``(B, L, H)`` and the ``(B, 2)`` first/last ``<emb>`` positions."""
    hidden = _backbone(model)(input_ids=ids, attention_mask=mask).last_hidden_state
    return hidden, marker_positions(ids, mask, emb_id)


def o1_loss(
    model: Any, inputs: dict[str, torch.Tensor], cfg: O1LossConfig
) -> tuple[JointLoss, dict[str, Any]]:
    """The joint O1 objective for one collated batch (see ``training.data.O1Collator``).

    Returns the weighted loss with its parts, and ``{"v_q", "v_t"}`` from the single query-side forward.
    """
    ids, mask, labels = inputs["input_ids"], inputs["attention_mask"], inputs["labels"]
    hidden, where = _embed(model, ids, mask, cfg.emb_id)  # one forward for both losses
    targets = labels[:, 1:]
    selected = targets != -100
    logits = _lm_head(model)(hidden[:, :-1][selected])  # (n_thought_tokens, vocab)
    lm = thought_lm_loss(logits, targets[selected])
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
    return joint_loss(contrastive, lm, cfg.lam, kl, cfg.kl_weight), {"v_q": v_q, "v_t": v_t}


class O1Trainer(Trainer):
    """Trainer for the joint LM + contrastive objective; each loss part is logged on its own."""

    def __init__(self, *args: Any, loss_config: O1LossConfig, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.loss_config = loss_config
        self._parts: dict[str, list[float]] = defaultdict(list)

    def compute_loss(
        self,
        model: Any,
        inputs: dict[str, torch.Tensor],
        return_outputs: bool = False,
        num_items_in_batch: Any = None,
    ) -> Any:
        loss, outputs = o1_loss(model, inputs, self.loss_config)
        self._parts["loss_contrastive"].append(float(loss.contrastive.detach()))
        self._parts["loss_lm"].append(float(loss.lm.detach()))
        if loss.kl is not None:
            self._parts["loss_kl"].append(float(loss.kl.detach()))
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
        for name, values in self._parts.items():
            if values:
                logs[name] = round(sum(values) / len(values), 4)
        self._parts.clear()
        super().log(logs, *args, **kwargs)
