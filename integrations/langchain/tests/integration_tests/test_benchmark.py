"""The integration's concurrency benchmark runs end to end on a tiny model (its numbers are for idle
machines and are not asserted)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from o1_rag.testing import shared_tiny_model

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "concurrency.py"


def test_concurrency_benchmark_prints_its_row() -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--model",
            str(shared_tiny_model()),
            "--docs",
            "8",
            "--max-new-tokens",
            "2",
            "--device",
            "cpu",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "16 concurrent ainvoke" in done.stdout and "sequential invoke" in done.stdout
    assert "batch of 16, threads" in done.stdout
