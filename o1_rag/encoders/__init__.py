"""Encoders: documents, queries and query + thought to L2-normalised vectors.

An ``Encoder`` embeds documents (no thinking), queries alone (``v_q``) and query + thought pairs (``v_t``).
Its ``fingerprint_fields`` decide the embedding space: the store records their hash, and only the encoder
enters it (documents depend on nothing else), so one index serves every thinker. Implementations:

- ``JointEncoder``: the O1 decoder LM, last-token pooling at ``<emb>``; one forward over
  ``<query>q</query><emb><thought>t{eos}<emb>`` yields ``v_q`` (first ``<emb>``) and ``v_t`` (last).
- ``SentenceTransformerEncoder``: any sentence-transformers model (the bundled all-MiniLM-L6-v2, a local
  folder, a Hugging Face id, or a fine-tuned copy); ``v_t`` embeds the text ``query + sep + thought``.
"""

from o1_rag.encoders.base import Encoder, Progress, check_texts, normalise_rows
from o1_rag.encoders.joint import JointEncoder, backbone
from o1_rag.encoders.sentence import (
    BUNDLED_ENCODER,
    SentenceTransformerEncoder,
    adapter_base,
    replace_backbone,
    resolve_encoder_path,
)

__all__ = [
    "BUNDLED_ENCODER",
    "Encoder",
    "JointEncoder",
    "Progress",
    "SentenceTransformerEncoder",
    "adapter_base",
    "backbone",
    "check_texts",
    "normalise_rows",
    "replace_backbone",
    "resolve_encoder_path",
]
