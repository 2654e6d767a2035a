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
    """Any model ``o1_rag.models`` resolves, with batched, sampled generation through its chat template."""

    def __init__(
        self,
        model: str,
        device: str = "auto",
        max_new_tokens: int = 128,
        temperature: float = 0.7,
        top_p: float = 0.9,
        batch_size: int = 32,
    ) -> None:
        from o1_rag.models import load_model

        loaded = load_model(model, device=device)
        self.name = model
        self.model, self.tokenizer = loaded.model, loaded.tokenizer
        self.max_new_tokens, self.temperature, self.top_p, self.batch_size = (
            max_new_tokens,
            temperature,
            top_p,
            batch_size,
        )
        self.pad_id = (
            self.tokenizer.pad_token_id
            if self.tokenizer.pad_token_id is not None
            else (self.tokenizer.eos_token_id)
        )

    def draft(self, prompts: Sequence[Messages], k: int, seed: int | None) -> list[list[str]]:
        from o1_rag.generation import chat_prompt_ids, generate_texts

        ids = [chat_prompt_ids(self.tokenizer, p) for p in prompts for _ in range(k)]
        texts = generate_texts(
            self.model,
            self.tokenizer,
            ids,
            max_new_tokens=self.max_new_tokens,
            temperature=self.temperature,
            top_p=self.top_p,
            seed=seed,
            batch_size=self.batch_size,
            stop_ids=[int(self.tokenizer.eos_token_id)],
            pad_id=self.pad_id,
        )
        return [texts[i * k : (i + 1) * k] for i in range(len(prompts))]


class EndpointExpert:
    """A model behind an OpenAI-compatible chat endpoint (e.g. a vLLM server), ``n=k`` samples per prompt."""

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
        import os

        from openai import OpenAI

        self.name = f"{model}@{base_url}"
        self.client = OpenAI(base_url=base_url, api_key=api_key or os.environ.get("OPENAI_API_KEY") or "none")
        self.model, self.max_new_tokens, self.temperature, self.top_p, self.workers = (
            model,
            max_new_tokens,
            temperature,
            top_p,
            workers,
        )

    def _one(self, prompt: Messages, k: int, seed: int | None) -> list[str]:
        reply: Any = self.client.chat.completions.create(
            model=self.model,
            messages=prompt,
            n=k,
            max_tokens=self.max_new_tokens,
            temperature=self.temperature,
            top_p=self.top_p,
            seed=seed,
        )
        texts = [(c.message.content or "").strip() for c in reply.choices]
        return (texts + [""] * k)[:k]

    def draft(self, prompts: Sequence[Messages], k: int, seed: int | None) -> list[list[str]]:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(self.workers) as pool:
            return list(pool.map(lambda p: self._one(p, k, seed), prompts))
