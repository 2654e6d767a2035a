"""``EndpointThinker``: any OpenAI-compatible chat-completions server writes the thoughts."""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from o1_rag.prompts import INSTRUCTION_DIGEST
from o1_rag.thinkers.base import Messages, Thinker, ThinkerError, ThinkParams, think_prompt


class EndpointThinker(Thinker):
    """Any OpenAI-compatible chat-completions server writes the thoughts.

    Args:
        base_url: e.g. ``http://localhost:8000/v1`` (``/chat/completions`` is appended).
        model: the model name the server knows.
        api_key: sent as a bearer token; none is sent unless given here or through ``api_key_env``.
        api_key_env: the name of an environment variable holding the key (e.g. ``OPENAI_API_KEY``); a key
            is never read from the environment unless asked, so it cannot leak to an unintended server.
        timeout: seconds per request.
        retries: further tries after a failed request (connection errors, 429 and 5xx), with backoff.
        concurrency: requests in flight at once.
        instruction_id: a label for the prompt; change it if you change the server-side prompt.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        api_key_env: str | None = None,
        timeout: float = 60.0,
        retries: int = 2,
        concurrency: int = 8,
        backoff: float = 0.5,
    ) -> None:
        super().__init__()
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"thinker URL must start with http:// or https://, got '{base_url}'")
        if not model:
            raise ValueError("an endpoint thinker needs a model name")
        if timeout <= 0 or retries < 0 or concurrency < 1:
            raise ValueError("timeout must be > 0, retries >= 0 and concurrency >= 1")
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        if api_key_env is not None and not os.environ.get(api_key_env):
            raise ValueError(f"the environment variable {api_key_env} (the thinker's API key) is not set")
        self.api_key = api_key or (os.environ[api_key_env] if api_key_env else None)
        self.timeout = timeout
        self.retries = retries
        self.concurrency = concurrency
        self.backoff = backoff

    @property
    def identity(self) -> dict[str, Any]:
        return {"kind": "endpoint", "name": self.model, "url": self.url, "instruction": INSTRUCTION_DIGEST}

    def _request(self, messages: Messages, params: ThinkParams, index: int) -> str:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": list(messages),
            "max_tokens": params.max_new_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
        }
        if params.seed is not None:
            body["seed"] = params.seed + index
        if params.repetition_penalty not in (None, 1.0):
            body["repetition_penalty"] = params.repetition_penalty  # vLLM's extension; others ignore it
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(self.url, json.dumps(body).encode(), headers, method="POST")
        last = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    payload = json.loads(response.read().decode("utf-8"))
                return str(payload["choices"][0]["message"]["content"] or "").strip()
            except urllib.error.HTTPError as exc:
                last = f"HTTP {exc.code} {exc.reason}"
                if exc.code != 429 and exc.code < 500:
                    break  # a client error will not change on retry
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                last = str(getattr(exc, "reason", exc))
            except (ValueError, KeyError, IndexError, TypeError):
                raise ThinkerError(
                    f"thinker endpoint {self.url} answered something that is not a chat completion"
                ) from None
        raise ThinkerError(f"thinker endpoint {self.url} failed ({last}) after {self.retries + 1} tries")

    def _think(self, queries: list[str], params: ThinkParams) -> list[str]:
        return self.write([[{"role": "user", "content": think_prompt(q)}] for q in queries], params)

    def write(self, chats: Sequence[Messages], params: ThinkParams) -> list[str]:
        """One reply per chat, ``concurrency`` requests at a time. The k-th repeat of the same chat is
        sent with ``seed + k``, so repeats are distinct samples that reproduce."""
        params = self.resolve(params)
        self.generate_calls += 1
        counts: dict[str, int] = {}
        jobs = []
        for chat in chats:
            key = json.dumps(chat, sort_keys=True)
            jobs.append((chat, counts.get(key, 0)))
            counts[key] = counts.get(key, 0) + 1
        if not jobs:
            return []
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(jobs))) as pool:
            return list(pool.map(lambda job: self._request(job[0], params, job[1]), jobs))
