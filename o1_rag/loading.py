"""Building an ``O1Embedder`` from names: the joint O1 model or a thinker + encoder alias.

``O1Embedder.from_pretrained`` and ``O1Embedder.from_loaded`` delegate here and pass their class: this
module resolves the parts and builds that class, without importing ``o1_rag.embedder`` back. An embedder
loaded by names only remembers them, which is what makes it picklable: unpickling loads the same names
again, once per process (a process-wide registry, keyed by class and names, shares the loaded models).
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from o1_rag.cache import ThoughtCache
from o1_rag.causal_lm import LoadedModel, check_precision, load_model
from o1_rag.config import O1Config
from o1_rag.encoders import Encoder, JointEncoder, SentenceTransformerEncoder
from o1_rag.encoders.windows import check_long_documents
from o1_rag.gate import GATE_FILE, ThinkGate
from o1_rag.models import ADAPTERS_DIR, COMPOSED_MODELS, DEFAULT_MODEL, JOINT_MODEL
from o1_rag.thinkers import (
    DEFAULT_MAX_NEW_TOKENS,
    DEFAULT_NUM_THOUGHTS,
    DEFAULT_TEMPERATURE,
    LMThinker,
    Thinker,
    check_penalty,
)
from o1_rag.thinkers.lazy import LazyThinker

if TYPE_CHECKING:
    from o1_rag.embedder import O1Embedder

logger = logging.getLogger(__name__)

_REGISTRY: dict[str, O1Embedder] = {}
_REGISTRY_LOCK = threading.Lock()


def open_cache(cache: ThoughtCache | str | Path | bool | None) -> ThoughtCache | None:
    """The thought cache asked for; an unwritable default location degrades to no cache with a warning."""
    if isinstance(cache, (str, Path)):
        return ThoughtCache(cache)
    if cache is True:
        try:
            return ThoughtCache()
        except (OSError, sqlite3.Error) as exc:
            logger.warning("thought cache unavailable (%s); thinking without a cache", exc)
            return None
    return cache if isinstance(cache, ThoughtCache) else None  # not ``cache or None``: an empty one is falsy


def with_defaults(
    cls: type[O1Embedder],
    encoder: Encoder,
    thinker: Thinker | None,
    config: O1Config,
    query_weight: float | None,
    cache: ThoughtCache | None,
    name: str,
    gate: ThinkGate | None = None,
) -> O1Embedder:
    """An embedder (of class ``cls``) whose query-side defaults come from ``config`` (``query_weight``
    overrides)."""
    return cls(
        encoder,
        thinker,
        cache=cache,
        query_weight=(config.query_weight or 0.0) if query_weight is None else query_weight,
        num_thoughts=config.num_thoughts or DEFAULT_NUM_THOUGHTS,
        max_new_tokens=config.max_new_tokens or DEFAULT_MAX_NEW_TOKENS,
        temperature=DEFAULT_TEMPERATURE if config.temperature is None else config.temperature,
        name=name,
        gate=gate,
    )


def embedder_from_loaded(
    cls: type[O1Embedder],
    loaded: LoadedModel,
    *,
    model_name: str = JOINT_MODEL,
    think_mode: str | None = None,
    max_query_tokens: int | None = None,
    max_thought_tokens: int | None = None,
    max_document_tokens: int | None = None,
    batch_size: int = 16,
    generation_batch_size: int = 32,
    repetition_penalty: float | None = None,
    query_weight: float | None = None,
    cache: ThoughtCache | None = None,
    thinker: Thinker | bool | None = None,
    precision: str = "auto",
) -> O1Embedder:
    """The joint O1 model: one loaded causal LM thinks (unless ``thinker`` is given, or False for no
    thinking) and embeds."""
    from o1_rag.prompts import O1Format

    cfg = loaded.o1_config
    fmt = O1Format(
        loaded.tokenizer,
        max_query_tokens=max_query_tokens or cfg.max_query_tokens,
        max_thought_tokens=max_thought_tokens or cfg.max_thought_tokens,
        max_document_tokens=max_document_tokens or cfg.max_document_tokens,
    )
    lock = threading.RLock()
    identity = loaded.identity(model_name)
    encoder = JointEncoder(
        loaded.model,
        loaded.tokenizer,
        identity,
        fmt,
        batch_size=batch_size,
        lock=lock,
        name=model_name,
        precision=precision,
    )
    own_thinker = thinker is None or thinker is True
    if thinker is False:
        thinker = None
    elif thinker is None or thinker is True:
        mode = think_mode or cfg.think_mode or ("chat" if loaded.tokenizer.chat_template else "native")
        thinker = LMThinker(
            loaded.model,
            loaded.tokenizer,
            identity,
            mode=mode,
            max_query_tokens=fmt.max_query_tokens,
            generation_batch_size=generation_batch_size,
            repetition_penalty=cfg.repetition_penalty if repetition_penalty is None else repetition_penalty,
            lock=lock,
        )
    name = model_name + (f" + adapter {loaded.adapter_path}" if loaded.adapter_path else "")
    gate = None
    if own_thinker and loaded.adapter_path and (Path(loaded.adapter_path) / GATE_FILE).is_file():
        gate = ThinkGate.load(Path(loaded.adapter_path) / GATE_FILE)
    return with_defaults(cls, encoder, thinker, cfg, query_weight, cache, name, gate)


def load_embedder(cls: type[O1Embedder], spec: dict[str, Any]) -> O1Embedder:
    """Load an embedder of class ``cls`` from the keyword arguments of ``O1Embedder.from_pretrained`` (see
    there)."""
    names = dict(spec)
    settings = dict(spec)
    model = settings.pop("model", DEFAULT_MODEL)
    adapter = settings.pop("adapter", None)
    thinker = settings.pop("thinker", None)
    encoder = settings.pop("encoder", None)
    cache = settings.pop("cache", True)
    think_mode = settings.pop("think_mode", None)
    query_weight = settings.pop("query_weight", None)
    repetition_penalty = settings.pop("repetition_penalty", None)
    device = settings.pop("device", "auto")
    trust_remote_code = settings.pop("trust_remote_code", False)
    precision = check_precision(settings.pop("precision", "auto"))  # before any model loads
    long_documents = settings.pop("long_documents", None)
    if long_documents is not None:
        check_long_documents(long_documents)
    common = {
        "device": device,
        "dtype": settings.pop("dtype", "auto"),
        "revision": settings.pop("revision", None),
        "trust_remote_code": trust_remote_code,
    }
    writing = {**common, "precision": precision}  # a thinker of its own: its dtype follows the precision
    cache_obj = open_cache(cache)
    composed = COMPOSED_MODELS.get(model)
    if composed is not None and adapter:
        raise ValueError(f"'{model}' is a thinker + encoder alias: it takes no --adapter")
    if long_documents is not None and not (encoder is None or isinstance(encoder, str)):
        raise ValueError(
            "long_documents is a setting of a named encoder; set it on the Encoder object itself"
        )
    if composed is None and encoder is None:  # the joint model, optionally with another thinker
        if long_documents not in (None, "truncate"):
            raise ValueError(
                f"'{model}' is a joint model, which truncates documents; long_documents='{long_documents}' "
                "needs a sentence-transformers encoder (--encoder, or a thinker + encoder alias)"
            )
        loaded = load_model(model, adapter=adapter, **common)
        if isinstance(thinker, str):
            thinker = _load_thinker(thinker, None, think_mode, repetition_penalty, settings, writing)
        return _remember(
            names,
            embedder_from_loaded(
                cls,
                loaded,
                model_name=model,
                think_mode=think_mode,
                repetition_penalty=repetition_penalty,
                query_weight=query_weight,
                cache=cache_obj,
                thinker=thinker,
                precision=precision,
                **settings,
            ),
        )
    config = composed.config() if composed is not None else O1Config()
    if encoder is None or isinstance(encoder, str):
        encoder_name, encoder_adapter = (
            (encoder, None) if encoder else (composed.encoder, composed.encoder_adapter())
        )
        if long_documents is None and not encoder:  # the alias's own (a named encoder: see the encoder)
            long_documents = composed.long_documents
        encoder = SentenceTransformerEncoder(
            encoder_name,
            adapter=encoder_adapter,
            device=device,
            trust_remote_code=trust_remote_code,
            batch_size=settings.pop("batch_size", 32),
            precision=precision,
            long_documents=long_documents,
        )
    own_thinker = thinker is None or thinker is True
    if thinker is False:
        thinker = None
    elif isinstance(thinker, str):  # a name the user typed: loaded now, so a mistake shows at once
        thinker = _load_thinker(thinker, None, think_mode, repetition_penalty, settings, writing)
    elif thinker is None or thinker is True:
        # the model's own thinker: loaded when a query first thinks (think="auto" skips most)
        own_name, own_adapter = (composed.thinker, None) if composed is not None else (model, adapter)
        extra = dict(settings)

        def load_own() -> LMThinker:
            return _load_thinker(own_name, own_adapter, think_mode, repetition_penalty, extra, writing)

        thinker = LazyThinker(load_own, own_name)
    elif repetition_penalty is not None:
        thinker.repetition_penalty = check_penalty(repetition_penalty)
    unused = sorted(set(settings) - {"generation_batch_size", "max_query_tokens"})
    if unused:
        raise ValueError(f"{', '.join(unused)}: not a setting of a sentence-transformers encoder")
    name = model if composed is not None else encoder.describe()
    gate = None
    if composed is not None and own_thinker:  # the shipped gate judges the shipped thinker's thoughts
        gate_path = ADAPTERS_DIR / composed.folder / GATE_FILE
        gate = ThinkGate.load(gate_path) if gate_path.is_file() else None
    return _remember(names, with_defaults(cls, encoder, thinker, config, query_weight, cache_obj, name, gate))


def _load_thinker(
    name: str,
    adapter: str | None,
    think_mode: str | None,
    repetition_penalty: float | None,
    settings: dict[str, Any],
    common: dict[str, Any],
) -> LMThinker:
    extra = {k: settings[k] for k in ("generation_batch_size", "max_query_tokens") if settings.get(k)}
    if repetition_penalty is not None:
        extra["repetition_penalty"] = repetition_penalty
    return LMThinker.from_pretrained(name, adapter, mode=think_mode, **common, **extra)


# ---------------------------------------------------------------------- pickling by names
def _remember(spec: dict[str, Any], embedder: O1Embedder) -> O1Embedder:
    """Keep how an embedder was loaded when that was by names only (what makes it picklable)."""
    if all(v is None or isinstance(v, str | bool | int | float) for v in spec.values()):
        embedder._spec = spec
        embedder._spec_thinker = embedder.thinker
    return embedder


def _spec_key(cls: type, spec: dict[str, Any]) -> str:
    return f"{cls.__module__}.{cls.__qualname__} " + json.dumps(spec, sort_keys=True, default=str)


def reduce_embedder(embedder: O1Embedder) -> tuple[Any, ...]:
    """``__reduce__`` of an embedder loaded by names: the names and its query weight."""
    if embedder._spec is None:
        raise TypeError(
            "this O1Embedder was built from objects (a Thinker, Encoder or ThoughtCache), which are not "
            "pickled; build it with O1Embedder.from_pretrained(...) using names to pickle it"
        )
    if embedder.thinker is not embedder._spec_thinker:
        raise TypeError(
            "this O1Embedder's thinker was replaced after loading (e.g. by an llm=): it cannot be "
            "pickled; pickle the retriever or embeddings object that set it instead"
        )
    key = _spec_key(type(embedder), embedder._spec)
    with _REGISTRY_LOCK:
        _REGISTRY.setdefault(key, embedder)
    return (_embedder_from_spec, (type(embedder), embedder._spec, embedder.query_weight))


def _embedder_from_spec(cls: type[O1Embedder], spec: dict[str, Any], query_weight: float) -> O1Embedder:
    """Unpickling: the embedder loaded with these names in this process, else a newly loaded one."""
    key = _spec_key(cls, spec)
    with _REGISTRY_LOCK:
        embedder = _REGISTRY.get(key)
        if embedder is None:
            embedder = load_embedder(cls, spec)
            _REGISTRY[key] = embedder
    if embedder.query_weight != query_weight:
        logger.warning(
            "unpickled embedder keeps its query weight %s (pickled: %s)", embedder.query_weight, query_weight
        )
    return embedder
