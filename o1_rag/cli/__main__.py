"""``python -m o1_rag.cli`` (as ``torchrun -m o1_rag.cli`` and ``accelerate launch -m o1_rag.cli`` run it)."""

from o1_rag.cli import main

main()
