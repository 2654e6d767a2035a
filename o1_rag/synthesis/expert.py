"""Expert LLMs that draft candidate thoughts: a local model or an OpenAI-compatible endpoint.

Prompt shape (the paper's): an instruction to think about a plausible response, three random in-context
examples (query -> its first positive passage), then the query. The examples are sent as earlier chat
turns (user: query, assistant: passage): small instruct models follow that far better than examples
pasted into one message, which they tend to continue ("Example 4 ...") instead of answering.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any, Protocol

EXPERT_INSTRUCTION = (
    "Think about a plausible response to address the query. Write a short passage (2-4 sentences) that "
    "could answer it, with the facts and terms such a passage would contain."
)


Messages = list[dict[str, str]]


def expert_prompt(query: str, examples: Sequence[tuple[str, str]], example_chars: int = 600) -> Messages:
    """The chat for one query: the instruction, in-context examples as earlier turns, then the query."""
    messages = [{"role": "system", "content": EXPERT_INSTRUCTION}]
    for q, passage in examples:
        messages += [
            {"role": "user", "content": f"Query: {q}"},
            {"role": "assistant", "content": passage[:example_chars].strip()},
        ]
    messages.append({"role": "user", "content": f"Query: {query}"})
    return messages


def pick_examples(
    pool: Sequence[tuple[str, str]], query: str, n: int, rng: random.Random
) -> list[tuple[str, str]]:
    """``n`` random examples from ``pool`` that are not the query itself."""
    candidates = [ex for ex in pool if ex[0] != query]
    return rng.sample(candidates, min(n, len(candidates)))


class Expert(Protocol):
    """Drafts ``k`` candidate thoughts for each prompt."""

    name: str

    def draft(self, prompts: Sequence[Messages], k: int, seed: int | None) -> list[list[str]]: ...


class LocalExpert:
    """Any causal LM ``o1_rag.models`` resolves (loaded as a writer: no O1 markers), sampling through its
    chat template in batches; the generation is ``LMThinker.write``."""

    def __init__(
        self,
        model: str,
        device: str = "auto",
        max_new_tokens: int = 128,
        temperature: float = 0.7,
        top_p: float = 0.9,
        batch_size: int = 32,
    ) -> None:
        from o1_rag.thinkers import LMThinker

        self.name = model
        self.writer = LMThinker.from_pretrained(
            model, mode="chat", device=device, generation_batch_size=batch_size
        )
        self.max_new_tokens, self.temperature, self.top_p = max_new_tokens, temperature, top_p

    def draft(self, prompts: Sequence[Messages], k: int, seed: int | None) -> list[list[str]]:
        return _draft(self.writer, self, prompts, k, seed)


class EndpointExpert:
    """A model behind an OpenAI-compatible chat endpoint (e.g. a vLLM server); the requests are
    ``EndpointThinker.write`` (time-outs, retries, concurrency)."""

    def __init__(
        self,
        base_url: str,
        model: str,
        max_new_tokens: int = 128,
        temperature: float = 0.7,
        top_p: float = 0.9,
        api_key: str | None = None,
        workers: int = 8,
    ) -> None:
        from o1_rag.thinkers import EndpointThinker

        self.name = f"{model}@{base_url}"
        self.writer = EndpointThinker(base_url, model, api_key=api_key, concurrency=workers)
        self.max_new_tokens, self.temperature, self.top_p = max_new_tokens, temperature, top_p

    def draft(self, prompts: Sequence[Messages], k: int, seed: int | None) -> list[list[str]]:
        return _draft(self.writer, self, prompts, k, seed)


def _draft(
    writer: Any, expert: Any, prompts: Sequence[Messages], k: int, seed: int | None
) -> list[list[str]]:
    """``k`` samples per prompt from ``writer.write``, grouped per prompt."""
    from o1_rag.thinkers import ThinkParams

    params = ThinkParams(1, expert.max_new_tokens, expert.temperature, expert.top_p, seed)
    texts = writer.write([p for p in prompts for _ in range(k)], params)
    return [texts[i * k : (i + 1) * k] for i in range(len(prompts))]


def make_expert(
    model: str,
    url: str | None = None,
    served_model: str | None = None,
    max_new_tokens: int = 128,
    temperature: float = 0.7,
    device: str = "auto",
    batch_size: int = 32,
    api_key: str | None = None,
    concurrency: int = 8,
) -> Expert:
    """The drafting expert: ``served_model`` behind the OpenAI-compatible ``url`` when one is given (with
    ``concurrency`` requests in flight), else the local causal LM ``model``."""
    if url:
        return EndpointExpert(
            url, served_model or model, max_new_tokens, temperature, api_key=api_key, workers=concurrency
        )
    return LocalExpert(model, device, max_new_tokens, temperature, batch_size=batch_size)
