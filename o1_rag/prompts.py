"""The one home of the O1 markers and of the query, thought and document formats.

Query side, one sequence::

    <query>{q}</query><emb><thought>{t}{eos}<emb>

With causal attention the first ``<emb>`` sees only the query (``v_q``) and the last one sees query and
thought (``v_t``). Document side: ``{d}<emb>``. Sequences are assembled from token ids, never by
re-tokenising a formatted string, so a marker can never be split or truncated away.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

PROMPT_FORMAT_VERSION = "o1-v1"

QUERY_START = "<query>"
QUERY_END = "</query>"
THOUGHT = "<thought>"
EMB = "<emb>"
O1_TOKENS = (QUERY_START, QUERY_END, THOUGHT, EMB)

#: Instruction used when a backbone that was never trained on the O1 format writes a thought through its
#: chat template (the paper's synthesis prompt, shortened).
THINK_INSTRUCTION = (
    "Think about a plausible response to address the query. Write a short passage that could answer it, "
    "with the facts and terms such a passage would contain."
)
INSTRUCTION_DIGEST = hashlib.sha256(THINK_INSTRUCTION.encode()).hexdigest()[:8]
"""Names the instruction in a thinker's identity (the thought cache key): a new wording, new thoughts."""

#: ``native``: the model continues ``<query>q</query><emb><thought>`` (an O1-trained adapter).
#: ``chat``: the model answers a chat-template prompt with THINK_INSTRUCTION (an untrained backbone).
THINK_MODES = ("native", "chat")


def add_o1_tokens(tokenizer: Any, model: Any | None = None) -> int:
    """Add the O1 markers as special tokens (and resize ``model``'s embeddings); return how many were new."""
    missing = [t for t in O1_TOKENS if t not in tokenizer.get_vocab()]
    if missing:
        try:  # transformers 5
            tokenizer.add_special_tokens(
                {"extra_special_tokens": missing}, replace_extra_special_tokens=False
            )
        except TypeError:  # transformers 4
            tokenizer.add_special_tokens(
                {"additional_special_tokens": missing}, replace_additional_special_tokens=False
            )
    if model is not None and model.get_input_embeddings().weight.shape[0] < len(tokenizer):
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    return len(missing)


@dataclass(frozen=True)
class O1Format:
    """Token-level builder of O1 sequences for one tokenizer.

    Args:
        tokenizer: a tokenizer that already holds the O1 markers (see ``add_o1_tokens``).
        max_query_tokens: query text tokens kept (the paper uses 32).
        max_thought_tokens: thought text tokens kept inside the query+thought sequence.
        max_document_tokens: document text tokens kept (the ``<emb>`` marker comes on top).
    """

    tokenizer: Any
    max_query_tokens: int = 64
    max_thought_tokens: int = 192
    max_document_tokens: int = 256

    def __post_init__(self) -> None:
        vocab = self.tokenizer.get_vocab()
        absent = [t for t in O1_TOKENS if t not in vocab]
        if absent:
            raise ValueError(f"tokenizer lacks the O1 markers {absent}; call add_o1_tokens() first")
        if self.tokenizer.eos_token_id is None:
            raise ValueError("tokenizer has no eos token; the thought format needs one")

    def token_id(self, marker: str) -> int:
        """Id of one O1 marker."""
        return int(self.tokenizer.convert_tokens_to_ids(marker))

    @property
    def emb_id(self) -> int:
        return self.token_id(EMB)

    def _ids(self, text: str, limit: int) -> list[int]:
        ids = self.tokenizer(text, add_special_tokens=False, truncation=True, max_length=limit)["input_ids"]
        return list(ids)

    def query_prefix(self, query: str) -> list[int]:
        """``<query>q</query><emb>``: the query-only sequence whose last token gives ``v_q``."""
        return [
            self.token_id(QUERY_START),
            *self._ids(query, self.max_query_tokens),
            self.token_id(QUERY_END),
            self.emb_id,
        ]

    def thought_prompt(self, query: str) -> list[int]:
        """``<query>q</query><emb><thought>``: what an O1 model continues with its thought."""
        return [*self.query_prefix(query), self.token_id(THOUGHT)]

    def query_with_thought(self, query: str, thought: str) -> list[int]:
        """``<query>q</query><emb><thought>t{eos}<emb>``: first ``<emb>`` -> ``v_q``, last -> ``v_t``."""
        return [
            *self.thought_prompt(query),
            *self._ids(thought, self.max_thought_tokens),
            int(self.tokenizer.eos_token_id),
            self.emb_id,
        ]

    def document(self, text: str) -> list[int]:
        """``{d}<emb>``."""
        return [*self._ids(text, self.max_document_tokens), self.emb_id]

    def chat_think_prompt(self, query: str) -> list[int]:
        """A chat-template prompt asking a general instruct model for a thought about ``query``."""
        query_ids = self._ids(query, self.max_query_tokens)
        clipped = self.tokenizer.decode(query_ids, skip_special_tokens=True)
        from o1_rag.generation import chat_prompt_ids

        return chat_prompt_ids(self.tokenizer, f"{THINK_INSTRUCTION}\n\nQuery: {clipped}")
