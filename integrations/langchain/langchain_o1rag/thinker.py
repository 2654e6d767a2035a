"""A LangChain chat model, LLM or Runnable as an o1-rag thinker, so a RAG chain's own LLM can think."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from o1_rag.thinkers import CallableThinker, ThinkParams

THOUGHTS_EVENT = "o1_thoughts"  # the custom callback event that carries a query's thoughts


def _text(output: Any) -> str:
    content = getattr(output, "content", output)
    if isinstance(content, list):  # content blocks
        return "".join(b.get("text", "") if isinstance(b, dict) else str(b) for b in content)
    return str(content)


def llm_identity(llm: Any) -> str:
    """A stable name for a LangChain model: its class and identifying parameters (model name, sampling)."""
    params = getattr(llm, "_identifying_params", None)
    if params is None:
        raise ValueError(
            f"cannot tell which model {type(llm).__name__} is (it keys the thought cache): pass thinker_name="
        )
    raw = json.dumps(params, sort_keys=True, default=str)
    return f"langchain:{type(llm).__name__}:{hashlib.sha256(raw.encode()).hexdigest()[:12]}"


def langchain_thinker(
    llm: Any, name: str | None = None, max_concurrency: int | None = None
) -> CallableThinker:
    """Wrap ``llm`` (anything with ``batch(list[str])`` returning messages or strings) as a thinker.

    Each query is sent ``num_thoughts`` times with the paper's prompt through ``llm.batch``; the model's
    own sampling settings apply (a model at temperature 0 writes the same thought each time: use
    ``num_thoughts=1`` with it). ``name`` keys the thought cache (default: derived from the model's
    identifying parameters).
    """
    if not hasattr(llm, "batch"):
        raise TypeError(f"llm must be a LangChain chat model, LLM or Runnable, not {type(llm).__name__}")
    config = {"max_concurrency": max_concurrency} if max_concurrency else None

    def generate(prompts: list[str], params: ThinkParams) -> list[str]:
        return [_text(out) for out in llm.batch(prompts, config=config)]

    return CallableThinker(generate, name or llm_identity(llm))
