"""The one definition of the thinking and loading settings the integrations expose (pydantic fields).

``O1Retriever``, ``O1Embeddings`` (LangChain) and ``O1Embedding`` (LlamaIndex) inherit ``O1Settings``
(``ThinkSettings`` + ``LoadSettings``) so they share names, defaults, ranges and documentation with each
other and with the CLI options (``--num-thoughts``, ``--max-new-tokens``, ``--temperature``, ``--top-p``,
``--seed``, ``--repetition-penalty``, ``--agree``, ``--query-weight``, ``--think-mode``, ``--think``,
``--no-cache``; ``--adapter``, ``--device``, ``--encoder``, ``--precision``).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, Field

from o1_rag.thinkers import ThinkParams

# names other libraries use for a setting that has another name here
_SYNONYMS = {
    "top_k": "k",
    "similarity_top_k": "k",
    "n_results": "k",
    "where": "filter",
    "model_name": "model",
}


def reject_unknown(owner: type[BaseModel], kwargs: Mapping[str, Any], extra: tuple[str, ...] = ()) -> None:
    """Raise a one-line ``ValueError`` for a keyword argument that is not a field of ``owner`` (pydantic
    would drop it silently), suggesting the closest field."""
    known = set(extra)
    for name, info in owner.model_fields.items():
        known.add(name)
        if info.alias:
            known.add(info.alias)
    unknown = sorted(set(kwargs) - known)
    if unknown:
        synonym = _SYNONYMS.get(unknown[0])
        close = [synonym] if synonym in known else difflib.get_close_matches(unknown[0], sorted(known), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise ValueError(f"{owner.__name__} got an unknown argument '{unknown[0]}'{hint}")


class ThinkSettings(BaseModel):
    """How a query is thought about before it is embedded. None means: the model's default."""

    think: bool | Literal["auto", "always", "never"] = Field(
        default="auto",
        description=(
            "Think before embedding a query: always (True), never (False) or auto: the retriever thinks only "
            "where the model's gate expects it to help, judged from the query-only hits; an embeddings "
            "model has no hits to judge from and thinks on every query."
        ),
    )
    num_thoughts: int | None = Field(default=None, gt=0, description="Thoughts per query [model's, else 3].")
    max_new_tokens: int | None = Field(
        default=None, gt=0, description="Tokens per thought at most [model's, else 64]."
    )
    temperature: float | None = Field(
        default=None, ge=0, description="Sampling temperature, 0 = greedy [model's, else 0.1]."
    )
    top_p: float = Field(default=0.9, gt=0, le=1, description="Nucleus sampling mass.")
    seed: int | None = Field(default=None, description="Make sampling reproducible.")
    repetition_penalty: float | None = Field(default=None, gt=0, description="1 = none [model's].")
    agree: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description="Early stop: stop sampling a query's thoughts once two agree (cosine of their vectors).",
    )
    query_weight: float | None = Field(
        default=None, ge=0, le=1, description="Share of the query-only vector in the query vector [model's]."
    )
    think_mode: Literal["native", "chat"] | None = Field(
        default=None, description="How a local LM thinker is prompted [model's]."
    )
    use_cache: bool = Field(default=True, description="Use the persistent thought cache.")

    # Pickling and deep copies (one protocol for the three integration classes): the fields travel, the
    # private handles (Chroma, batchers) do not; ``_pickled_private`` names private values to carry along
    # (e.g. an embedder held privately) and ``_restore`` rebuilds the rest after unpickling.
    def _pickled_private(self) -> dict[str, Any]:
        return {}

    def _restore(self, carried: dict[str, Any]) -> None:
        raise NotImplementedError

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["__pydantic_private__"] = {}
        state["o1rag_private"] = self._pickled_private()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        carried = state.pop("o1rag_private", {})
        super().__setstate__(state)
        self._restore(carried)

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        """A copy through the pickled state (the model is shared, the handles are made again)."""
        import copy

        clone = type(self).__new__(type(self))
        clone.__setstate__(copy.deepcopy(self.__getstate__(), memo))
        return clone

    def think_choice(self) -> str:
        """``"auto"``, ``"always"`` or ``"never"``."""
        from o1_rag.gate import think_choice

        return think_choice(self.think)

    def think_params(self) -> ThinkParams:
        """The generation settings as ``ThinkParams``."""
        return ThinkParams(
            self.num_thoughts,
            self.max_new_tokens,
            self.temperature,
            self.top_p,
            self.seed,
            self.repetition_penalty,
            self.agree,
        )


class LoadSettings(BaseModel):
    """How the integrations load their model besides its name (the CLI's ``--adapter``, ``--device``,
    ``--encoder``, ``--precision``, ``--long-documents``)."""

    adapter: str | None = Field(default=None, description="Folder of a peft LoRA adapter.")
    device: str = Field(default="auto", description="auto, cpu, cuda, cuda:1 ...")
    encoder: str | None = Field(
        default=None,
        description="A sentence-transformers encoder replacing the model's (all-minilm-l6-v2, folder, HF "
        "id): the one that built the collection, e.g. one adopted with `o1rag adopt --encoder`.",
    )
    precision: Literal["auto", "float32", "bfloat16"] = Field(
        default="auto", description="How the encoder computes (auto: bfloat16 where the hardware does it)."
    )
    long_documents: Literal["truncate", "windows"] | None = Field(
        default=None,
        description="How a sentence-transformers encoder embeds a document longer than its input: windows "
        "(all of it) or truncate (its start). None: the model's own (windows for o1-minilm); with encoder=, "
        "that encoder's own (truncate unless it names an alias).",
    )


class O1Settings(ThinkSettings, LoadSettings):
    """Thinking + loading settings: what the integration classes inherit."""

    def load_embedder(self, model: str, thinker: Any = None, cache: bool = True) -> Any:
        """An ``O1Embedder`` for ``model`` with these settings (``thinker`` replaces the model's own)."""
        from o1_rag.embedder import O1Embedder

        # not model_dump: LlamaIndex's adds its class name to every dump
        named = {
            name: getattr(self, name)
            for name in ("encoder", "device", "precision", "long_documents", "think_mode", "query_weight")
        }
        return O1Embedder.from_pretrained(model, self.adapter, thinker=thinker, cache=cache, **named)
