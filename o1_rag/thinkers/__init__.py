"""Thinkers: text in, thoughts out. The one home of text generation.

A ``Thinker`` writes ``num_thoughts`` short thoughts ("a plausible response") per query. It knows nothing of
embeddings: the seam to the encoder is plain text. Implementations:

- ``LMThinker``: a local causal LM, either ``native`` (an O1-trained model continues
  ``<query>q</query><emb><thought>``) or ``chat`` (any instruct model answers a chat-template prompt).
- ``EndpointThinker``: any OpenAI-compatible ``/chat/completions`` server (vLLM, llama.cpp, a hosted API),
  with time-outs, retries and a clear error when it is down.
- ``LazyThinker``: stands for another thinker and loads it on first use (the own thinker of a thinker +
  encoder alias: ``think="auto"`` skips most queries, so most searches never load it).
- ``CallableThinker``: a function from prompts to texts (the integrations wrap a LangChain chat model or a
  LlamaIndex ``LLM`` with it, so a RAG chain's own LLM can think).

Each thinker has an ``identity`` (a dict of what decides its thoughts); thoughts are cached under that
identity plus the generation settings, never under the encoder's fingerprint, so one index serves every
thinker.
"""

from __future__ import annotations

from o1_rag.thinkers.base import (
    DEFAULT_MAX_NEW_TOKENS,
    DEFAULT_NUM_THOUGHTS,
    DEFAULT_TEMPERATURE,
    CallableThinker,
    Thinker,
    ThinkerError,
    ThinkParams,
    check_penalty,
    think_cached,
    think_prompt,
)
from o1_rag.thinkers.endpoint import EndpointThinker
from o1_rag.thinkers.lazy import LazyThinker
from o1_rag.thinkers.local import LMThinker

__all__ = [
    "DEFAULT_MAX_NEW_TOKENS",
    "DEFAULT_NUM_THOUGHTS",
    "DEFAULT_TEMPERATURE",
    "CallableThinker",
    "EndpointThinker",
    "LMThinker",
    "LazyThinker",
    "ThinkParams",
    "Thinker",
    "ThinkerError",
    "check_penalty",
    "think_cached",
    "think_prompt",
    "thinker_from_options",
]


def thinker_from_options(
    name: str | None, url: str | None, api_key_env: str | None = None, concurrency: int = 8
) -> Thinker | str | None:
    """What ``--thinker`` / ``--thinker-url`` / ``--api-key-env`` / ``--concurrency`` ask for: an
    ``EndpointThinker`` when a URL is given (``name`` is the model there), else the local model name (or
    None for the model's own)."""
    if url:
        if not name:
            raise ValueError("--thinker-url needs --thinker: the model name the server serves")
        return EndpointThinker(url, name, api_key_env=api_key_env, concurrency=concurrency)
    return name
