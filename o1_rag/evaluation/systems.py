"""Retrieval systems compared by ``o1rag eval ir``, behind one small interface.

Spec strings: ``bm25``, ``dense`` or ``dense:<sentence-transformers model>``, ``hyde`` (the generator writes
one hypothetical passage; its dense embedding is averaged with the query's; the generator defaults to the
O1 model's own thinker, so HyDE and O1 are measured with the same writer), ``o1-nothink`` and ``o1``
(the O1 embedder with the query-only ``v_q`` or with thinking, searched through Chroma), and ``o1-mix`` or
``o1-mix:<w>`` (thinking, with ``v_q`` mixed in at weight ``w`` in [0, 1], default 0.5; ``o1-mix:0`` is the
paper's pure thought average; same thoughts as ``o1``); ``o1-native`` and ``o1-chat`` think with the given
prompt. ``o1`` uses the model's own defaults: its think mode (``native`` for O1-trained models, the chat
template otherwise) and its query weight (0 unless the adapter sets one). Documents are embedded the same
way in every mode. Hybrid systems fuse a dense ranking with BM25's (``o1_rag.lexical.fuse``):
``bm25+dense`` (the bundled MiniLM), ``o1-hybrid`` and ``o1-nothink-hybrid`` (the O1 embedder with and
without thinking). ``o1-auto`` (and ``o1-auto-hybrid``) think only where the model's gate expects thinking to
help (``think="auto"``); the report says on how many queries they thought.
"""

from __future__ import annotations

from o1_rag.evaluation.baselines import DEFAULT_DENSE, BM25System, DenseSystem, HybridSystem, HydeSystem
from o1_rag.evaluation.context import EvalContext, EvalSettings, System, UnknownSystemError
from o1_rag.evaluation.o1_system import O1System

__all__ = [
    "SYSTEM_NAMES",
    "BM25System",
    "DenseSystem",
    "EvalContext",
    "EvalSettings",
    "HybridSystem",
    "HydeSystem",
    "O1System",
    "System",
    "UnknownSystemError",
    "build_system",
    "parse_systems",
]

SYSTEM_NAMES = (
    "bm25",
    "bm25+dense",
    "o1-hybrid",
    "o1-nothink-hybrid",
    "o1-auto",
    "o1-auto-hybrid",
    "dense",
    "hyde",
    "o1-nothink",
    "o1",
    "o1-mix",
    "o1-native",
    "o1-chat",
)


def build_system(spec: str, context: EvalContext | EvalSettings | None = None) -> System:
    """A system from its spec string (see the module docstring); systems built with one context share its
    models."""
    context = EvalContext.of(context)
    name, _, arg = spec.strip().partition(":")
    name = name.lower()
    if name == "bm25" and not arg:
        return BM25System()
    if name == "bm25+dense" and not arg:
        return HybridSystem("bm25+dense", DenseSystem(DEFAULT_DENSE, context), context.settings.feedback)
    if name in {"o1-hybrid", "o1-nothink-hybrid", "o1-auto-hybrid"} and not arg:
        think = {"o1-hybrid": True, "o1-nothink-hybrid": False}.get(name, "auto")
        return HybridSystem(name, O1System(think, context), context.settings.feedback)
    if name in {"dense", "hyde"}:
        cls = DenseSystem if name == "dense" else HydeSystem
        return cls(arg or DEFAULT_DENSE, context)
    if name in {"o1", "o1-nothink"} and not arg:
        return O1System(name == "o1", context)
    if name == "o1-auto" and not arg:
        return O1System("auto", context)
    if name in {"o1-native", "o1-chat"} and not arg:
        return O1System(True, context, think_mode=name.removeprefix("o1-"))
    if name == "o1-mix":
        try:
            weight = float(arg) if arg else 0.5
        except ValueError:
            weight = -1.0
        if not 0.0 <= weight <= 1.0:
            raise UnknownSystemError(f"'{spec}': the o1-mix weight must be a number in [0, 1]")
        return O1System(True, context, weight)
    raise UnknownSystemError(
        f"unknown system '{spec}': choose from bm25, bm25+dense, o1-hybrid, o1-nothink-hybrid, o1-auto, "
        "o1-auto-hybrid, "
        "dense[:MODEL], hyde[:MODEL], o1-nothink, o1, "
        "o1-mix[:W], o1-native, o1-chat"
    )


def parse_systems(specs: str) -> list[str]:
    """Split a comma-separated spec list, rejecting empties and unknown names before any work starts."""
    items = [s.strip() for s in specs.split(",") if s.strip()]
    if not items:
        raise UnknownSystemError("no systems given: e.g. --systems bm25,dense,hyde,o1-nothink,o1")
    for item in items:
        base = item.partition(":")[0].lower()
        if (
            base not in SYSTEM_NAMES
            or base == "o1-mix"
            or (
                base in {"bm25", "o1", "o1-nothink", "o1-auto", "o1-native", "o1-chat", "bm25+dense"}
                and ":" in item
            )
            or (base.endswith("-hybrid") and ":" in item)
        ):
            build_system(item)  # raises the clear error
    if len(set(items)) != len(items):
        raise UnknownSystemError(f"a system is named twice in '{specs}'")
    return items
