"""Run by ``torchrun`` from ``tests/test_distributed.py``: one training run of a recipe, with test hooks.

    torchrun --standalone --nproc_per_node 2 tests/distributed_train.py RECIPE.toml
        [--dump-grads FILE]   # rank 0 saves the synchronised gradients of the first step (safetensors)
        [--crash-after-save N]  # rank 1 dies right after checkpoint N is written (a killed worker)

Not a test module itself (pytest does not collect it).
"""

from __future__ import annotations

import argparse
import os

from accelerate import PartialState
from transformers import TrainerCallback

from o1_rag.training.encoder import load_encoder_recipe, train_encoder
from o1_rag.training.joint import train
from o1_rag.training.recipe import load_recipe


class DumpGrads(TrainerCallback):
    """Saves the trainable parameters' gradients before the first optimizer step (after DDP's all-reduce)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
        from safetensors.torch import save_file

        if state.global_step == 0 and args.process_index == 0:
            grads = {
                name: p.grad.detach().clone().contiguous()
                for name, p in model.named_parameters()
                if p.requires_grad and p.grad is not None
            }
            save_file(grads, self.path)


class CrashAfterSave(TrainerCallback):
    """Kills the process of rank 1 (as an out-of-memory kill would) once checkpoint ``step`` is on disk."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_save(self, args, state, control, **kwargs):
        if state.global_step == self.step and args.process_index == 1:
            os._exit(3)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("recipe")
    parser.add_argument("--encoder", action="store_true", help="an encoder recipe (train-encoder)")
    parser.add_argument("--dump-grads")
    parser.add_argument("--crash-after-save", type=int)
    args = parser.parse_args()
    callbacks: list[TrainerCallback] = []
    if args.dump_grads:
        callbacks.append(DumpGrads(args.dump_grads))
    if args.crash_after_save:
        callbacks.append(CrashAfterSave(args.crash_after_save))
    if args.encoder:
        train_encoder(load_encoder_recipe(args.recipe), callbacks=callbacks)
    else:
        train(load_recipe(args.recipe), callbacks=callbacks)
    PartialState().destroy_process_group()  # as o1rag train does: a clean exit of every process


if __name__ == "__main__":
    main()
