"""Thinkers: text in, thoughts out. The one home of text generation.

A ``Thinker`` writes ``num_thoughts`` short thoughts ("a plausible response") per query. It knows nothing of
embeddings: the seam to the encoder is plain text. Implementations:

- ``LMThinker``: a local causal LM, either ``native`` (an O1-trained model continues
  ``<query>q</query><emb><thought>``) or ``chat`` (any instruct model answers a chat-template prompt).
- ``EndpointThinker``: any OpenAI-compatible ``/chat/completions`` server (vLLM, llama.cpp, a hosted API),
  with time-outs, retries and a clear error when it is down.
- ``CallableThinker``: a function from prompts to texts (the integrations wrap a LangChain chat model or a
  LlamaIndex ``LLM`` with it, so a RAG chain's own LLM can think).

Each thinker has an ``identity`` (a dict of what decides its thoughts); thoughts are cached under that
identity plus the generation settings, never under the encoder's fingerprint, so one index serves every
thinker.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
import urllib.error
import urllib.request
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from typing import Any

from o1_rag.errors import O1RagError
from o1_rag.prompts import THINK_INSTRUCTION, THINK_MODES

logger = logging.getLogger(__name__)


#: Thinking budget when neither the call nor the model's config sets it.
DEFAULT_NUM_THOUGHTS = 3
DEFAULT_MAX_NEW_TOKENS = 64


Messages = list[dict[str, str]]


class ThinkerError(O1RagError):
    """A thinker could not produce thoughts (an endpoint down or answering nonsense)."""


@dataclass(frozen=True)
class ThinkParams:
    """Generation settings of one ``think`` call; they are part of the thought-cache key.

    Fields left None take the model's defaults (its ``o1_config.json``), else 3 thoughts of at most 64 new
    tokens (the paper samples 3 of up to 128 tokens; 64 keeps CPU latency reasonable). Temperature 0.1 and
    top-p 0.9 follow the paper. ``repetition_penalty`` (the ``generate`` option; 1 = none) defaults to the
    thinker's own default when None.
    """

    num_thoughts: int | None = None
    max_new_tokens: int | None = None
    temperature: float = 0.1
    top_p: float = 0.9
    seed: int | None = None
    repetition_penalty: float | None = None

    def __post_init__(self) -> None:
        if self.num_thoughts is not None and self.num_thoughts < 1:
            raise ValueError(f"num_thoughts must be >= 1, got {self.num_thoughts}")
        if self.max_new_tokens is not None and self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.repetition_penalty is not None:
            check_penalty(self.repetition_penalty)


def check_penalty(penalty: float) -> float:
    """A repetition penalty must be > 0 (1 = none)."""
    if not penalty > 0:
        raise ValueError(f"repetition_penalty must be > 0, got {penalty}")
    return float(penalty)


def think_prompt(query: str) -> str:
    """The user turn that asks a general model for a thought about ``query`` (the paper's prompt)."""
    return f"{THINK_INSTRUCTION}\n\nQuery: {query}"


class Thinker(ABC):
    """Writes thoughts for queries. Subclasses implement ``_think`` and ``identity``."""

    #: Default repetition penalty, used when ``ThinkParams`` leaves it unset.
    repetition_penalty: float = 1.0

    def __init__(self) -> None:
        self.generate_calls = 0  # counts batched generation calls (benchmarks, tests)

    @property
    @abstractmethod
    def identity(self) -> dict[str, Any]:
        """What decides this thinker's thoughts (model, adapter, prompt); JSON-serialisable."""

    def _cache_identity(self) -> dict[str, Any]:
        return self.identity

    @property
    def cache_id(self) -> str:
        """Short hash of what decides the thoughts: the thinker's part of a thought-cache key."""
        raw = json.dumps(self._cache_identity(), sort_keys=True, default=str).encode()
        return "thinker:" + hashlib.sha256(raw).hexdigest()[:16]

    def describe(self) -> str:
        """Human-readable name."""
        return str(self.identity.get("name", type(self).__name__))

    def resolve(self, params: ThinkParams) -> ThinkParams:
        """``params`` with what it leaves unset filled from this thinker's defaults."""
        return replace(
            params,
            num_thoughts=params.num_thoughts or DEFAULT_NUM_THOUGHTS,
            max_new_tokens=params.max_new_tokens or DEFAULT_MAX_NEW_TOKENS,
            repetition_penalty=(
                self.repetition_penalty if params.repetition_penalty is None else params.repetition_penalty
            ),
        )

    def cache_params(self, params: ThinkParams) -> dict[str, Any]:
        """The generation settings as they enter the cache key (a penalty of 1 is left out)."""
        fields = asdict(self.resolve(params))
        if fields["repetition_penalty"] == 1.0:
            del fields["repetition_penalty"]
        return fields

    def think(self, queries: Sequence[str], params: ThinkParams | None = None) -> list[list[str]]:
        """``params.num_thoughts`` thoughts per query, in input order (duplicates generated once)."""
        params = self.resolve(params or ThinkParams())
        queries = list(queries)
        unique = list(dict.fromkeys(queries))
        if not unique:
            return []
        owners = [q for q in unique for _ in range(params.num_thoughts)]
        texts = self._think(owners, params)
        if len(texts) != len(owners):
            raise ThinkerError(f"{self.describe()} returned {len(texts)} thoughts for {len(owners)} prompts")
        by_query: dict[str, list[str]] = {q: [] for q in unique}
        for query, text in zip(owners, texts, strict=True):
            by_query[query].append(text if isinstance(text, str) else str(text))
        return [list(by_query[q]) for q in queries]

    @abstractmethod
    def _think(self, queries: list[str], params: ThinkParams) -> list[str]:
        """One thought per entry of ``queries`` (a query repeated ``num_thoughts`` times)."""


def think_cached(
    thinker: Thinker,
    queries: list[str],
    params: ThinkParams,
    cache: Any = None,
    progress: Callable[[int, int], None] | None = None,
    chunk: int = 64,
) -> list[list[str]]:
    """``thinker.think`` through a ``ThoughtCache`` (None: no cache): cached queries are looked up, the
    others generated and stored, keyed by the thinker's identity and the resolved settings.

    Missing queries are generated ``chunk`` at a time, each chunk stored as soon as it is written (an
    interrupted run keeps what it wrote); ``progress(done, to_generate)`` is told after each chunk."""
    params = thinker.resolve(params)
    key = thinker.cache_params(params)
    unique = list(dict.fromkeys(queries))
    found = cache.get_many(thinker.cache_id, key, unique) if cache is not None else {}
    missing = [q for q in unique if q not in found]
    if progress is not None and missing:
        progress(0, len(missing))
    for start in range(0, len(missing), chunk):
        part = missing[start : start + chunk]
        generated = dict(zip(part, thinker.think(part, params), strict=True))
        if cache is not None:
            cache.put_many(thinker.cache_id, key, generated)
        found.update(generated)
        if progress is not None:
            progress(start + len(part), len(missing))
    return [list(found[q]) for q in queries]


class LMThinker(Thinker):
    """A local causal LM writing thoughts in batched, left-padded ``generate`` calls.

    Args:
        model / tokenizer: a loaded causal LM (it may be shared with a ``JointEncoder``).
        identity: what identifies the weights (base and adapter), merged into ``identity``.
        mode: ``native`` (continue ``<query>q</query><emb><thought>``; needs the O1 markers) or ``chat``
            (the chat template with the paper's instruction).
        max_query_tokens: query tokens kept in the prompt.
        generation_batch_size: sequences per ``generate`` call.
        repetition_penalty: default when ``ThinkParams`` leaves it unset (1 = none).
        lock: held around ``generate`` (share the encoder's lock when the model is shared).
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        identity: dict[str, Any],
        *,
        mode: str = "chat",
        max_query_tokens: int = 64,
        generation_batch_size: int = 32,
        repetition_penalty: float = 1.0,
        lock: threading.RLock | None = None,
    ) -> None:
        super().__init__()
        if mode not in THINK_MODES:
            raise ValueError(f"think_mode must be one of {THINK_MODES}, got '{mode}'")
        if generation_batch_size < 1:
            raise ValueError("batch sizes must be >= 1")
        if max_query_tokens < 1:
            raise ValueError(f"max_query_tokens must be >= 1, got {max_query_tokens}")
        self.model = model
        self.tokenizer = tokenizer
        self.mode = mode
        self.max_query_tokens = max_query_tokens
        self.generation_batch_size = generation_batch_size
        self.repetition_penalty = check_penalty(repetition_penalty)
        self._weights = dict(identity)
        self._lock = lock or threading.RLock()
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self._format = None
        if mode == "native":
            from o1_rag.prompts import O1Format

            self._format = O1Format(tokenizer, max_query_tokens=max_query_tokens)

    @classmethod
    def from_pretrained(
        cls,
        model: str,
        adapter: str | None = None,
        *,
        mode: str | None = None,
        device: str = "auto",
        dtype: str = "auto",
        revision: str | None = None,
        trust_remote_code: bool = False,
        **settings: Any,
    ) -> LMThinker:
        """Load a writer by name. A chat-mode model is loaded as it is (no O1 markers, no resized
        vocabulary); ``native`` (the default for an O1-trained adapter) adds the markers."""
        from o1_rag.models import load_model, read_o1_config, split_trained

        mode = mode or read_o1_config(split_trained(model, adapter)[1]).think_mode or "chat"
        loaded = load_model(
            model,
            adapter=adapter,
            revision=revision,
            device=device,
            dtype=dtype,
            trust_remote_code=trust_remote_code,
            o1_tokens=mode == "native",
        )
        settings.setdefault("max_query_tokens", loaded.o1_config.max_query_tokens)
        settings.setdefault("repetition_penalty", loaded.o1_config.repetition_penalty)
        return cls(loaded.model, loaded.tokenizer, loaded.identity(model), mode=mode, **settings)

    @property
    def identity(self) -> dict[str, Any]:
        out = {**self._weights, "kind": "lm", "mode": self.mode, "max_query_tokens": self.max_query_tokens}
        if self.mode == "chat":
            out["instruction"] = hashlib.sha256(THINK_INSTRUCTION.encode()).hexdigest()[:8]
        return out

    def _cache_identity(self) -> dict[str, Any]:
        # the weights (base + adapter), not the name they were loaded by, decide the thoughts
        return {k: v for k, v in self.identity.items() if k != "name"}

    def prompt_ids(self, query: str) -> list[int]:
        """The token ids the model continues with a thought about ``query``."""
        if self._format is not None:
            return self._format.thought_prompt(query)
        from o1_rag.generation import chat_prompt_ids

        ids = self.tokenizer(
            query, add_special_tokens=False, truncation=True, max_length=self.max_query_tokens
        )
        clipped = self.tokenizer.decode(ids["input_ids"], skip_special_tokens=True)
        return chat_prompt_ids(self.tokenizer, think_prompt(clipped))

    def _think(self, queries: list[str], params: ThinkParams) -> list[str]:
        return self._generate([self.prompt_ids(q) for q in queries], params)

    def write(self, chats: Sequence[Messages], params: ThinkParams) -> list[str]:
        """One sampled reply per chat (a list of ``{role, content}`` messages) through the chat template:
        the generation behind synthesis experts and HyDE-style writers."""
        from o1_rag.generation import chat_prompt_ids

        return self._generate([chat_prompt_ids(self.tokenizer, chat) for chat in chats], self.resolve(params))

    def _generate(self, prompts: list[list[int]], params: ThinkParams) -> list[str]:
        from o1_rag.generation import generate_texts

        stop = [int(self.tokenizer.eos_token_id)]
        if self._format is not None:
            stop.append(self._format.emb_id)

        def counted() -> None:
            self.generate_calls += 1

        with self._lock:
            return generate_texts(
                self.model,
                self.tokenizer,
                prompts,
                max_new_tokens=params.max_new_tokens,
                temperature=params.temperature,
                top_p=params.top_p,
                seed=params.seed,
                repetition_penalty=float(params.repetition_penalty or 1.0),
                batch_size=self.generation_batch_size,
                stop_ids=list(dict.fromkeys(stop)),
                pad_id=self.pad_id,
                on_call=counted,
            )


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
        return {
            "kind": "endpoint",
            "name": self.model,
            "url": self.url,
            "instruction": hashlib.sha256(THINK_INSTRUCTION.encode()).hexdigest()[:8],
        }

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


class CallableThinker(Thinker):
    """Thoughts from a function ``prompts -> texts`` (one text per prompt, in order).

    The integrations use it to let a LangChain chat model or a LlamaIndex ``LLM`` think. ``name``
    identifies the writer in cache keys: give each different LLM its own name.
    """

    def __init__(self, generate: Callable[[list[str], ThinkParams], Sequence[str]], name: str) -> None:
        super().__init__()
        if not name:
            raise ValueError("a CallableThinker needs a name (it keys the thought cache)")
        self._generate = generate
        self.name = name

    @property
    def identity(self) -> dict[str, Any]:
        return {
            "kind": "callable",
            "name": self.name,
            "instruction": hashlib.sha256(THINK_INSTRUCTION.encode()).hexdigest()[:8],
        }

    def _think(self, queries: list[str], params: ThinkParams) -> list[str]:
        self.generate_calls += 1
        return [str(t).strip() for t in self._generate([think_prompt(q) for q in queries], params)]


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
