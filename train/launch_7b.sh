#!/usr/bin/env bash
# Paper-scale run on one node with 8 GPUs (needs `pip install deepspeed`). Resumes when re-run.
set -euo pipefail
cd "$(dirname "$0")/.."
torchrun --nproc_per_node "${GPUS:-8}" -m o1_rag.cli train --config train/qwen2.5-7b-msmarco.toml --resume
# equivalently: accelerate launch --num_processes 8 -m o1_rag.cli train --config train/qwen2.5-7b-msmarco.toml
