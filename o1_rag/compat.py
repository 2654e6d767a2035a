"""Shims for known friction between the libraries the project builds on (one home for them)."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def peft_quietly() -> Iterator[None]:
    """Wrap a model with peft without transformers' ``is_gradient_checkpointing`` deprecation warning.

    peft reads that attribute whenever it wraps a model, and transformers 5 warns about it on every read:
    a ``FutureWarning`` about peft's code that a user of ``o1rag search`` cannot act on. Only that warning
    is silenced, only around the wrapping.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r"`is_gradient_checkpointing` is deprecated", category=FutureWarning
        )
        yield
