"""Check think gates on held-out judged queries: how much of always-thinking's gain each keeps, against a
random choice of the same share of queries.

    python train/gate_check.py runs/scifact-val --limit-queries 150 \
        --gate old_gate.json --gate o1_rag/adapters/o1-minilm/o1_gate.json

For every query it measures what thinking does to the relevant documents (the drop in their mean log rank,
as ``o1rag train-gate`` labels it; positive: thinking helped), then for each gate: the share of queries it
thinks on, the mean gain per query when only those think, the mean gain a random choice of the same share
keeps on average (share x always-thinking's gain), and the AUC of its probability on the queries thinking
moved. A gate earns its place when it keeps clearly more than the random choice. Use queries the gate was
not fitted on (``train/heldout.py`` writes such a folder).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from o1_rag.errors import O1RagError
from o1_rag.evaluation.context import EvalSettings
from o1_rag.gate import ThinkGate
from o1_rag.training.gate import thinking_effect


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path, help="BEIR folder of judged queries the gates did not see")
    parser.add_argument("--gate", type=Path, action="append", required=True, help="a gate file (repeatable)")
    parser.add_argument("--limit-queries", type=int, default=None, help="the first N judged queries")
    parser.add_argument("--model", default=None, help="the O1 model [default: o1-minilm]")
    args = parser.parse_args(argv)
    try:
        gates = {str(path): ThinkGate.load(path) for path in args.gate}
        settings = EvalSettings(exact=True, **({"model": args.model} if args.model else {}))
        effect = thinking_effect(args.data_dir, settings, args.limit_queries)
    except (O1RagError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    gain = effect.gains
    moved = gain != 0
    print(
        f"{args.data_dir}: {len(gain)} queries; thinking moved {moved.sum()} (helped {(gain > 0).sum()}); "
        f"always thinking: mean gain {gain.mean():.4f} per query"
    )
    print("| gate | thinks on | mean gain kept | random, same share | AUC (moved queries) |")
    print("|---|---|---|---|---|")
    for name, gate in gates.items():
        p = np.array([gate.probability(t, top) for t, top in zip(effect.texts, effect.tops, strict=True)])
        on = p >= gate.threshold
        auc = _auc(p[moved], gain[moved] > 0)
        print(
            f"| {name} | {on.mean():.0%} | {gain[on].sum() / len(gain):.4f} | {gain.mean() * on.mean():.4f} "
            f"| {auc:.3f} |"
        )
    return 0


def _auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve (nan when one class is missing)."""
    from sklearn.metrics import roc_auc_score

    if positive.all() or not positive.any():
        return float("nan")
    return float(roc_auc_score(positive, scores))


if __name__ == "__main__":
    raise SystemExit(main())
