"""``LMThinker``: a local causal LM writes the thoughts (native O1 continuation or a chat template)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from o1_rag.prompts import INSTRUCTION_DIGEST, THINK_MODES
from o1_rag.thinkers.base import Messages, Thinker, ThinkParams, check_penalty, think_prompt


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
        if tokenizer.eos_token_id is None:
            name = getattr(getattr(model, "config", None), "_name_or_path", "") or type(model).__name__
            raise ValueError(
                f"{name} cannot write thoughts: its tokenizer has no end-of-sequence token (is it an "
                "encoder? give a causal LM as the thinker, e.g. --model o1-minilm with --encoder ENCODER)"
            )
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
        precision: str = "auto",
        revision: str | None = None,
        trust_remote_code: bool = False,
        **settings: Any,
    ) -> LMThinker:
        """Load a writer by name. A chat-mode model is loaded as it is (no O1 markers, no resized
        vocabulary); ``native`` (the default for an O1-trained adapter) adds the markers. ``dtype="auto"``
        loads bfloat16 weights where ``precision`` asks for bfloat16 (``auto``: where the device computes
        it natively), else float32 (see ``causal_lm.writer_dtype``)."""
        from o1_rag.causal_lm import load_model, read_o1_config, writer_dtype
        from o1_rag.models import split_trained

        mode = mode or read_o1_config(split_trained(model, adapter)[1]).think_mode or "chat"
        loaded = load_model(
            model,
            adapter=adapter,
            revision=revision,
            device=device,
            dtype=writer_dtype(dtype, device, precision),
            trust_remote_code=trust_remote_code,
            o1_tokens=mode == "native",
        )
        settings.setdefault("max_query_tokens", loaded.o1_config.max_query_tokens)
        settings.setdefault("repetition_penalty", loaded.o1_config.repetition_penalty)
        return cls(loaded.model, loaded.tokenizer, loaded.identity(model), mode=mode, **settings)

    @property
    def identity(self) -> dict[str, Any]:
        out = {**self._weights, "kind": "lm", "mode": self.mode, "max_query_tokens": self.max_query_tokens}
        dtype = str(getattr(self.model, "dtype", "torch.float32")).removeprefix("torch.")
        if dtype != "float32":  # rounded weights write other thoughts (float32 keeps the older cache keys)
            out["dtype"] = dtype
        if self.mode == "chat":
            out["instruction"] = INSTRUCTION_DIGEST
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
